/**
 * The server's own WebSocket (src/http/raw_websocket.ts) against a hostile or merely unusual client, end to
 * end on loopback with a real `cli.ts`: what RFC 6455 says a server must do, and what it must not hold.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { spawnCli, startServer } from "../helpers.ts";
import { rss } from "./proc.ts";
import { handshakeStatus, rawHandshake, serverFrames, settledSession, write } from "./raw_ws.ts";

const MiB = 1024 * 1024;

/** Reads from `conn` until a frame with `opcode` arrives; returns its payload (null: the connection ended). */
async function readFrame(
  conn: Deno.Conn,
  opcode: number,
  rest: Uint8Array = new Uint8Array(0),
): Promise<Uint8Array | null> {
  let got: Uint8Array = rest;
  const buf = new Uint8Array(65536);
  for (;;) {
    const parsed = serverFrames(got);
    const found = parsed.frames.find((f) => f.opcode === opcode);
    if (found) return found.payload;
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return null;
    got = new Uint8Array([...parsed.rest, ...buf.subarray(0, n)]);
  }
}

Deno.test({
  name:
    "fragments: a million empty continuation frames (6 MB on the wire) leave the server's RSS under +32 MiB",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const server = await spawnCli(["--no-policy", "--quiet"]);
    try {
      const h = await settledSession(server.port);
      const before = await rss(server.pid);
      // A text frame without FIN, then empty continuations (2 header bytes + a zero mask each), none with FIN:
      // the message stays at 0 bytes, far inside max_message_bytes, while its fragments pile up.
      const frames = 1_000_000;
      const batch = new Uint8Array(6 * 100_000);
      for (let i = 0; i < batch.length; i += 6) batch.set([0x00, 0x80], i);
      await write(h.conn, new Uint8Array([0x01, 0x80, 0, 0, 0, 0]));
      for (let sent = 0; sent < frames; sent += 100_000) await write(h.conn, batch);
      // A ping (allowed between fragments) is answered once every frame before it was handled.
      await write(h.conn, new Uint8Array([0x89, 0x80, 0, 0, 0, 0]));
      const pong = await readFrame(h.conn, 0xa, h.rest);
      assert.ok(pong !== null, "the server answers the ping after the fragments");
      const after = await rss(server.pid);
      console.log(
        `${frames} empty fragments: server RSS ${(before / MiB).toFixed(1)} -> ${
          (after / MiB).toFixed(1)
        } MiB`,
      );
      assert.ok(after - before < 32 * MiB, `RSS grew ${((after - before) / MiB).toFixed(1)} MiB`);
      h.conn.close();
    } finally {
      await server.stop();
    }
  },
});

Deno.test("Origin: any header case is the same header; two Origin lines are no allowed origin", async () => {
  const srv = await startServer(
    Policy.fromConfig({ server: { allowed_origins: ["https://a.example"], require_origin: true } }),
  );
  try {
    assert.equal(await handshakeStatus(srv.port, "/", { "oRIGIN": "https://a.example" }), 101);
    // Two lines are joined ("a, b"): not an allowed origin, whichever comes first.
    const twice = await rawHandshake(srv.port, "/", {
      "Origin": "https://a.example",
      "origin": "https://evil.example",
    });
    twice.conn.close();
    assert.equal(twice.status, 403);
  } finally {
    await srv.close();
  }
});
