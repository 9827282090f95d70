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
