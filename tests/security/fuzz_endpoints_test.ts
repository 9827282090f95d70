/**
 * Seeded fuzzing of every endpoint's input besides wasmnet's own messages (those are fuzz_test.ts): HTTP
 * request heads, `/tcp/` paths, Wisp packets and Emscripten POSIX calls, random and mutated from valid
 * ones. What must hold: nothing is answered 500, the server never throws, every session ends cleanly
 * (no session left), and a well-formed request still works afterwards. `WASMNET_FUZZ_ITERATIONS` scales
 * it (`deno task fuzz`), `WASMNET_FUZZ_SEED` replays one seed.
 */

import assert from "node:assert/strict";
import { encodePacket } from "../../src/frontends/wisp/packets.ts";
import { Policy } from "../../src/policy/mod.ts";
import { startServer, startTcpEchoServer } from "../helpers.ts";
import { prng } from "./fuzz.ts";
import { clientFrame, rawHandshake, write } from "./raw_ws.ts";

const env = (name: string) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};
const SCALE = Number(env("WASMNET_FUZZ_ITERATIONS") ?? 4000) / 4000;
const SEED = Number(env("WASMNET_FUZZ_SEED") ?? 7);
const enc = new TextEncoder();

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];
const bytes = (r: Rand, n: number) => Uint8Array.from({ length: n }, () => int(r, 256));

/** Flips, drops, duplicates or truncates bytes of `b`. */
function mutate(r: Rand, b: Uint8Array): Uint8Array {
  const out = Array.from(b);
  for (let k = 1 + int(r, 4); k > 0; k--) {
    const i = int(r, Math.max(1, out.length));
    switch (int(r, 5)) {
      case 0:
        out[i] = int(r, 256);
        break;
      case 1:
        out.splice(i, 1);
        break;
      case 2:
        out.splice(i, 0, ...out.slice(i, i + 1 + int(r, 8)));
        break;
      case 3:
        out.length = Math.min(out.length, i);
        break;
      default:
        out[i] ^= 1 << int(r, 8);
    }
  }
  return Uint8Array.from(out);
}

/** Reads what the server sends until it closes or `ms` of silence; the bytes, as latin1 text. */
async function readAll(conn: Deno.Conn, ms = 300): Promise<string> {
  const buf = new Uint8Array(65536);
  let text = "";
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"idle">((r) => timer = setTimeout(() => r("idle"), ms)),
    ]);
    clearTimeout(timer);
    if (n === null || n === "idle") return text;
    text += new TextDecoder("latin1").decode(buf.subarray(0, n));
  }
}

async function withFuzzServer(body: (port: number, echoPort: number) => Promise<void>): Promise<void> {
  const echo = startTcpEchoServer();
  const srv = await startServer(
    Policy.fromConfig({
      network: { deny: [], allow: [`127.0.0.1:${echo.port}`], connection_timeout_secs: 2 },
      server: { header_timeout_secs: 2, max_handshakes_per_ip: 1000, max_sessions_per_ip: 1000 },
    }),
  );
  try {
    await body(srv.port, echo.port);
    // Every session the fuzzer opened has ended.
    for (let i = 0; i < 100 && srv.server.sessionCount > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(srv.server.sessionCount, 0, "no session left behind");
    // And a well-formed session still works.
    const h = await rawHandshake(srv.port);
    assert.equal(h.status, 101);
    await write(h.conn, clientFrame(1, enc.encode('{"op":"close","id":9}')));
    assert.match(await readAll(h.conn), /UNKNOWN_ID/);
    h.conn.close();
  } finally {
    await srv.close();
    await echo.close();
  }
}

const GOOD_HEAD = [
  "GET / HTTP/1.1",
  "Host: 127.0.0.1",
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Sec-WebSocket-Version: 13",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
  "Origin: http://example.com",
];

Deno.test("fuzz HTTP heads: random and mutated request heads never get a 500 and never hurt the server", async () => {
  const r = prng(SEED);
  const paths = [
    "/",
    "/wisp/",
    "/posix",
    "/tcp/127.0.0.1:1",
    "/tcp/[::1]:80",
    "/%00",
    "/" + "a".repeat(9000),
  ];
  await withFuzzServer(async (port) => {
    const n = Math.round(150 * SCALE);
    for (let i = 0; i < n; i++) {
      const lines = [...GOOD_HEAD];
      lines[0] = `${pick(r, ["GET", "POST", "HEAD", "OPTIONS", "G\u00e9T", "GET GET"])} ${pick(r, paths)} ${
        pick(r, ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 x", ""])
      }`;
      if (r() < 0.3) lines.splice(1 + int(r, lines.length - 1), 1);
      if (r() < 0.3) {
        lines.push(
          `${pick(r, ["X", "Sec-WebSocket-Protocol", "Host", "Bad Name", ""])}: ${"v".repeat(int(r, 300))}`,
        );
      }
      if (r() < 0.1) lines.push(...Array.from({ length: 120 }, (_, k) => `X-${k}: 1`));
      let head: Uint8Array = enc.encode(lines.join("\r\n") + "\r\n\r\n");
      if (r() < 0.4) head = mutate(r, head);
      if (r() < 0.1) head = bytes(r, int(r, 2000));
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await write(conn, head).catch(() => {});
      const answer = await readAll(conn, 200);
      conn.close();
      assert.doesNotMatch(
        answer,
        /^HTTP\/1\.1 500/,
        `head ${JSON.stringify(new TextDecoder("latin1").decode(head).slice(0, 200))}`,
      );
    }
  });
});

Deno.test("fuzz /tcp/ paths: random targets never get a 500; refused ones get a plain status", async () => {
  const r = prng(SEED + 1);
  const hosts = [
    "127.0.0.1",
    "[::1]",
    "10.0.0.1",
    "localhost",
    "%31%32%37.0.0.1",
    "a".repeat(300),
    "",
    "[",
    "0x7f.1",
  ];
  await withFuzzServer(async (port, echoPort) => {
    const n = Math.round(100 * SCALE);
    for (let i = 0; i < n; i++) {
      const p = pick(r, [String(echoPort), "0", "65536", "-1", "80", "", "1e3", String(int(r, 70000))]);
      let path = `/tcp/${pick(r, hosts)}:${p}`;
      if (r() < 0.3) {
        // Printable ASCII only: a request line cannot carry spaces or control characters.
        path = new TextDecoder("latin1").decode(mutate(r, enc.encode(path))).replace(/[^\x21-\x7e]/g, "");
      }
      const h = await rawHandshake(port, path.startsWith("/") ? path : `/${path}`, {
        "Sec-WebSocket-Protocol": "binary",
      })
        .catch(() => null);
      if (!h) continue;
      assert.notEqual(h.status, 500, path);
      if (h.status === 101) {
        await write(h.conn, clientFrame(2, bytes(r, int(r, 64)))).catch(() => {});
        await readAll(h.conn, 100);
      }
      h.conn.close();
    }
  });
});

Deno.test("fuzz Wisp packets: random and mutated packets end streams or the session cleanly", async () => {
  const r = prng(SEED + 2);
  await withFuzzServer(async (port, echoPort) => {
    const sessions = Math.round(12 * SCALE);
    for (let s = 0; s < sessions; s++) {
      const h = await rawHandshake(port, "/wisp/");
      assert.equal(h.status, 101);
      for (let i = 0; i < 60; i++) {
        const streamId = int(r, 6);
        const valid = [
          () =>
            encodePacket({
              type: "connect",
              streamId,
              streamType: pick(r, [1, 2, 3]),
              port: pick(r, [echoPort, 0, 9]),
              host: pick(r, ["127.0.0.1", "10.0.0.1", "", "x".repeat(300)]),
            }),
          () => encodePacket({ type: "data", streamId, data: bytes(r, int(r, 200)) }),
          () => encodePacket({ type: "continue", streamId, remaining: int(r, 2 ** 32) }),
          () => encodePacket({ type: "close", streamId, reason: int(r, 256) }),
          () =>
            encodePacket({ type: "info", streamId: 0, major: int(r, 4), minor: int(r, 4), extensions: [] }),
        ];
        let packet = pick(r, valid)();
        if (r() < 0.4) packet = mutate(r, packet);
        if (r() < 0.1) packet = bytes(r, int(r, 40));
        const text = r() < 0.05; // Wisp is binary: a text frame must be refused too
        const ok = await write(h.conn, clientFrame(text ? 1 : 2, packet)).then(() => true, () => false);
        if (!ok) break;
      }
      await readAll(h.conn, 100);
      h.conn.close();
    }
  });
});

Deno.test("fuzz POSIX calls: random and mutated calls are answered or refused, never crash the proxy", async () => {
  const r = prng(SEED + 3);
  const call = (id: number, code: number, ints: number[], tail = new Uint8Array()) => {
    const out = new Uint8Array(8 + ints.length * 4 + tail.length);
    const v = new DataView(out.buffer);
    v.setInt32(0, id, true);
    v.setInt32(4, code, true);
    ints.forEach((x, k) => v.setInt32(8 + k * 4, x, true));
    out.set(tail, 8 + ints.length * 4);
    return out;
  };
  const sin = (portNo: number) =>
    Uint8Array.of(2, 0, portNo >> 8, portNo & 0xff, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  await withFuzzServer(async (port, echoPort) => {
    const sessions = Math.round(12 * SCALE);
    for (let s = 0; s < sessions; s++) {
      const h = await rawHandshake(port, "/posix", { "Sec-WebSocket-Protocol": "binary" });
      assert.equal(h.status, 101);
      for (let i = 0; i < 60; i++) {
        const fd = pick(r, [3, 4, 5, -1, 100, 2 ** 31 - 1]);
        const code = int(r, 22);
        const shapes = [
          () => call(i, 1, [2, pick(r, [1, 2, 3]), 0]), // socket
          () => call(i, 3, [fd, 16], sin(pick(r, [echoPort, 0, 9]))), // connect
          () => call(i, 5, [fd, 4, 0], bytes(r, 4)), // send
          () => call(i, 6, [fd, int(r, 70000), int(r, 256)]), // recv
          () =>
            call(i, code, Array.from({ length: int(r, 6) }, () => int(r, 2 ** 31)), bytes(r, int(r, 300))),
        ];
        let msg: Uint8Array = pick(r, shapes)();
        if (r() < 0.4) msg = mutate(r, msg);
        const ok = await write(h.conn, clientFrame(2, msg)).then(() => true, () => false);
        if (!ok) break;
      }
      await readAll(h.conn, 100);
      h.conn.close();
    }
  });
});
