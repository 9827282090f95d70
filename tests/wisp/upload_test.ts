/**
 * Regression: a 256 MiB upload (client → Wisp → TCP) with the real wisp-js client through a wasmnet server in
 * its own process (as the benchmark runs it) arrives whole. wisp-js handles several CONTINUEs in one go and
 * flushes its queue after each; wasmnet used to grant `window − buffered` every `window / 4` packets written,
 * so a fast uploader could pass `2 × window` packets and be closed with 0x49 (the benchmark's "no result").
 */

import assert from "node:assert/strict";
import { spawnCli } from "../helpers.ts";
import { WispJsClient } from "./wisp_client.ts";

const POLICY = `[network]
deny = []
allow = ["127.0.0.1"]
`;

/** A TCP sink that counts the bytes it reads. */
function startCountingSink(): { port: number; bytes: () => number; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let bytes = 0;
  const conns = new Set<Deno.Conn>();
  const reads: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      reads.push((async () => {
        const buf = new Uint8Array(256 * 1024);
        try {
          for (let n; (n = await conn.read(buf)) !== null;) bytes += n;
        } catch {
          // closed below
        }
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      })());
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    bytes: () => bytes,
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const c of conns) c.close();
      await Promise.all(reads);
    },
  };
}

Deno.test("wisp-js: 4 × 256 MiB uploads through a wasmnet server process arrive whole", async () => {
  const total = 256 * 1024 * 1024;
  const dir = Deno.makeTempDirSync({ prefix: "wasmnet-wisp-upload-" });
  Deno.writeTextFileSync(`${dir}/policy.toml`, POLICY);
  const sink = startCountingSink();
  const server = await spawnCli(["--policy", `${dir}/policy.toml`, "--quiet"]);
  let client: WispJsClient | undefined;
  try {
    client = await WispJsClient.connect(new URL("wisp/", server.url).href, { version: 2, timeoutMs: 10_000 });
    // The overrun depended on timing (about one 256 MiB upload in four): four uploads, one stream each.
    for (let round = 0; round < 4; round++) {
      const before = sink.bytes();
      const s = client.stream("127.0.0.1", sink.port);
      let reason: number | undefined;
      s.closeReason.then((r) => (reason = r));
      const ws = client.conn.ws as { bufferedAmount: number };
      const chunk = new Uint8Array(64 * 1024).fill(0x75);
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      // Sends like the benchmark: as fast as wisp-js takes it, pausing while its own queue is long.
      for (let sent = 0; sent < total && reason === undefined; sent += chunk.length) {
        s.send(chunk);
        if (s.raw.send_buffer.length > 8 || ws.bufferedAmount > 4 * 1024 * 1024) {
          while ((s.raw.send_buffer.length > 2 || ws.bufferedAmount > 1024 * 1024) && reason === undefined) {
            await sleep(1);
          }
        }
      }
      while (sink.bytes() - before < total && reason === undefined) await sleep(5);
      assert.equal(reason, undefined, `the server closed the stream (reason 0x${reason?.toString(16)})`);
      assert.equal(sink.bytes() - before, total, `round ${round}`);
      s.close();
    }
  } finally {
    await client?.close();
    await server.stop();
    await sink.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
