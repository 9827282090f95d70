/**
 * The Worker + Atomics fallback in Deno: the C programs run in a Worker that blocks in `Atomics.wait`
 * while the test's thread talks to the real wasmnet server.
 */
import assert from "node:assert/strict";
import { WasmnetClient } from "../../client/src/client.ts";
import { runWasixInWorker } from "../../client/wasi/worker.ts";
import { startServer } from "../helpers.ts";
import { buildExample } from "./build.ts";
import { startHttpServer } from "./peers.ts";

const WORKER = new URL("../../client/wasi/worker_main.ts", import.meta.url);

Deno.test("wasix (Worker + Atomics, Deno): C HTTP client fetches a page", async () => {
  const wasm = await Deno.readFile(await buildExample("http_client"));
  const server = await startServer();
  const http = startHttpServer("hello over atomics\n");
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    const code = await runWasixInWorker(wasm, {
      client,
      workerUrl: WORKER,
      args: ["http_client", "127.0.0.1", String(http.port), "/atomics"],
      stdout: (l) => lines.push(l),
      stderr: (l) => lines.push(l),
    });
    const out = lines.join("\n");
    assert.equal(code, 0, out);
    assert.match(out, /^HTTP\/1\.1 200 OK/m);
    assert.match(out, /hello over atomics/);
    assert.match(out, /path=\/atomics/);
  } finally {
    await client.disconnect();
    await http.close();
    await server.close();
  }
});

Deno.test("wasix (Worker + Atomics, Deno): poll_oneoff and non-blocking sockets across the bridge; name lookup", async () => {
  const { startTcpEchoServer } = await import("../helpers.ts");
  const poll = await Deno.readFile(await buildExample("poll_client", true));
  const http = await Deno.readFile(await buildExample("http_client"));
  const server = await startServer();
  const echo = startTcpEchoServer();
  const page = startHttpServer("found by name\n");
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    const code = await runWasixInWorker(poll, {
      client,
      workerUrl: WORKER,
      args: ["poll_client", String(echo.port), "across-the-bridge"],
      stdout: (l) => lines.push(l),
    });
    assert.equal(code, 0, lines.join("\n"));
    assert.deepEqual(lines.slice(1), [
      "connect -1 EINPROGRESS",
      "early recv -1 EAGAIN",
      "poll out 1 POLLOUT",
      "status 1",
      "echo across-the-bridge",
    ]);
    const out: string[] = [];
    const code2 = await runWasixInWorker(http, {
      client,
      workerUrl: WORKER,
      args: ["http_client", "localhost", String(page.port), "/named"],
      stdout: (l) => out.push(l),
    });
    assert.equal(code2, 0, out.join("\n"));
    assert.match(out.join("\n"), /found by name\npath=\/named/);
  } finally {
    await client.disconnect();
    await page.close();
    await echo.close();
    await server.close();
  }
});
