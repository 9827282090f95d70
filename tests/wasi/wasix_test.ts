/**
 * WASIX bridge in Deno (JSPI): real clang-built C programs against the real wasmnet server.
 */
import assert from "node:assert/strict";
import { WasmnetClient } from "../../client/src/client.ts";
import { runWasix } from "../../client/wasi/jspi.ts";
import { startServer } from "../helpers.ts";
import { buildExample } from "./build.ts";
import { startHttpServer } from "./peers.ts";

Deno.test("wasix (JSPI, Deno): C HTTP client fetches a page through wasmnet", async () => {
  const wasm = await Deno.readFile(await buildExample("http_client"));
  const server = await startServer();
  const http = startHttpServer("hello from the test server\n");
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    const code = await runWasix(wasm, {
      client,
      args: ["http_client", "127.0.0.1", String(http.port), "/page"],
      stdout: (l) => lines.push(l),
      stderr: (l) => lines.push(l),
    });
    const out = lines.join("\n");
    assert.equal(code, 0, out);
    assert.match(out, /^HTTP\/1\.1 200 OK/m);
    assert.match(out, /hello from the test server/);
    assert.match(out, /path=\/page/);
  } finally {
    await client.disconnect();
    await http.close();
    await server.close();
  }
});

Deno.test("wasix (JSPI, Deno): C echo server accepts a connection from outside", async () => {
  const wasm = await Deno.readFile(await buildExample("echo_server"));
  const server = await startServer();
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    let portSeen!: (port: number) => void;
    const listening = new Promise<number>((r) => portSeen = r);
    const run = runWasix(wasm, {
      client,
      args: ["echo_server", "127.0.0.1", "0", "1"],
      stdout: (l) => {
        lines.push(l);
        const m = /listening on port (\d+)/.exec(l);
        if (m) portSeen(Number(m[1]));
      },
    });
    const port = await Promise.race([listening, run.then(() => 0)]);
    assert.ok(port > 0, lines.join("\n"));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const message = new TextEncoder().encode("ping through the browser's socket\n");
    await conn.write(message);
    const got = new Uint8Array(message.length);
    let off = 0;
    while (off < got.length) {
      const n = await conn.read(got.subarray(off));
      assert.ok(n !== null, "echo closed early");
      off += n;
    }
    assert.deepEqual(got, message);
    conn.close();
    assert.equal(await run, 0, lines.join("\n"));
    assert.match(lines.join("\n"), /accepted 127\.0\.0\.1:\d+/);
    assert.match(lines.join("\n"), new RegExp(`echoed ${message.length} bytes`));
  } finally {
    await client.disconnect();
    await server.close();
  }
});

Deno.test("wasix (JSPI, Deno): connect denied by policy fails with EACCES", async () => {
  const { Policy } = await import("../../src/policy/mod.ts");
  const wasm = await Deno.readFile(await buildExample("http_client"));
  const server = await startServer(Policy.defaults());
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    const code = await runWasix(wasm, {
      client,
      args: ["http_client", "127.0.0.1", "9", "/"],
      stdout: (l) => lines.push(l),
    });
    assert.equal(code, 1);
    assert.match(lines.join("\n"), /connect failed: .* \(errno 2\)/);
  } finally {
    await client.disconnect();
    await server.close();
  }
});

Deno.test("wasix (JSPI, Deno): non-blocking connect, poll_oneoff on sockets and clocks, EAGAIN", async () => {
  const { startTcpEchoServer } = await import("../helpers.ts");
  const wasm = await Deno.readFile(await buildExample("poll_client", true));
  const server = await startServer();
  const echo = startTcpEchoServer();
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    const code = await runWasix(wasm, {
      client,
      args: ["poll_client", String(echo.port), "polled-bytes"],
      stdout: (l) => lines.push(l),
    });
    assert.equal(code, 0, lines.join("\n"));
    assert.deepEqual(lines, [
      "slept>=25ms yes",
      "connect -1 EINPROGRESS",
      "early recv -1 EAGAIN",
      "poll out 1 POLLOUT",
      "status 1",
      "echo polled-bytes",
    ]);
  } finally {
    await client.disconnect();
    await echo.close();
    await server.close();
  }
});

Deno.test("wasix (JSPI, Deno): UDP sendto/recvfrom, connect + send/recv, truncation", async () => {
  const { startUdpPeer } = await import("../network_helpers.ts");
  const wasm = await Deno.readFile(await buildExample("udp_client", true));
  const server = await startServer();
  const peer = await startUdpPeer(true);
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const lines: string[] = [];
    const code = await runWasix(wasm, {
      client,
      args: ["udp_client", String(peer.port)],
      stdout: (l) => lines.push(l),
    });
    assert.equal(code, 0, lines.join("\n"));
    assert.deepEqual(lines, [
      "sendto 14",
      "recvfrom first datagram from 127.0.0.1:1",
      "recv second",
      "short recv 4 a-lo",
    ]);
  } finally {
    await client.disconnect();
    await peer.close();
    await server.close();
  }
});
