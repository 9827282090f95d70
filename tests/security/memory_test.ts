/**
 * Bounded memory, measured. (a) A TCP peer offers 1 GiB to a client that reads nothing: the server (a real
 * `cli.ts` subprocess) stops reading the peer once the WebSocket's send buffer is full, the peer's writes
 * stall, and the server's resident memory stays flat. (b) A client sends to a TCP peer that reads nothing:
 * the server holds at most the socket's bounded write queue, then closes that socket with `error`
 * BUFFER_FULL (wasmnet v1 has no way to pause the browser).
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { DEFAULT_MAX_QUEUED_WRITE_BYTES } from "../../src/core/sockets/tcp.ts";
import { b64, spawnCli, startServer, startTcpServer, TestClient } from "../helpers.ts";
import { clientFrame, rawHandshake, write } from "./raw_ws.ts";
import { rss } from "./proc.ts";

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

Deno.test({
  name: "1 GiB offered by a TCP peer to a client that reads nothing leaves the server's memory flat",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    let offered = 0;
    let lastProgress = performance.now();
    const peer = startTcpServer(async (conn) => {
      const chunk = new Uint8Array(256 * 1024).fill(0x61);
      try {
        while (offered < GiB) {
          offered += await conn.write(chunk);
          lastProgress = performance.now();
        }
      } catch { /* closed at the end of the test */ }
    });
    const server = await spawnCli(["--no-policy", "--quiet"]);
    let client: Deno.TcpConn | undefined;
    try {
      const h = await rawHandshake(server.port);
      client = h.conn;
      assert.equal(h.status, 101);
      // Let the server settle, then take the baseline.
      await new Promise((r) => setTimeout(r, 300));
      const before = await rss(server.pid);
      const connect = JSON.stringify({ op: "connect", id: 1, addr: "127.0.0.1", port: peer.port });
      await write(client, clientFrame(1, new TextEncoder().encode(connect)));
      // From here on the client reads nothing. Wait until the peer's writes stall (backpressure reached it).
      const deadline = performance.now() + 20_000;
      while (performance.now() - lastProgress < 1000 || offered === 0) {
        assert.ok(performance.now() < deadline, `the peer never stalled (${offered} bytes taken)`);
        assert.ok(offered < GiB, "the server took the whole GiB");
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await rss(server.pid);
      const growth = after - before;
      console.log(
        `peer offered 1 GiB, server took ${(offered / MiB).toFixed(1)} MiB before pausing; ` +
          `server RSS ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`,
      );
      assert.ok(offered < 128 * MiB, `the server read ${offered} bytes from a peer nobody reads from`);
      assert.ok(growth < 48 * MiB, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
      // And it stays flat: the peer is still offering, nothing more is taken.
      const offeredBefore = offered;
      await new Promise((r) => setTimeout(r, 1000));
      const later = await rss(server.pid);
      assert.ok(offered - offeredBefore < MiB, "the peer stays stalled");
      assert.ok(
        later - after < 8 * MiB,
        `server RSS kept growing: ${(after / MiB).toFixed(1)} -> ${(later / MiB).toFixed(1)} MiB`,
      );
    } finally {
      client?.close();
      await peer.close();
      await server.stop();
    }
  },
});

Deno.test("a TCP peer that reads nothing: the write queue is bounded, then error BUFFER_FULL and closed", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const peer = startTcpServer(() => released); // accepts, never reads, until the test is over
  const srv = await startServer(Policy.allowAll());
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: peer.port });
    await c.event("connected", 1);
    const piece = b64(new Uint8Array(512 * 1024));
    let sent = 0;
    let error: Record<string, unknown> | undefined;
    const failed = c.event("error", 1, 30_000).then((e) => (error = e));
    while (!error && sent < 256 * MiB) {
      c.json({ op: "send", id: 1, data: piece });
      sent += 512 * 1024;
      if (sent % (4 * MiB) === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await failed;
    assert.equal(error!.code, "BUFFER_FULL");
    await c.event("closed", 1);
    // What was accepted before the error: at most the queue bound plus what the kernel buffers hold.
    assert.ok(sent < DEFAULT_MAX_QUEUED_WRITE_BYTES + 64 * MiB, `sent ${sent} bytes before BUFFER_FULL`);
    // The session is fine: other sockets still work.
    c.json({ op: "close", id: 1 });
    assert.equal((await c.event("error", 1)).code, "UNKNOWN_ID");
  } finally {
    await c.close();
    await srv.close();
    release();
    await peer.close();
  }
});
