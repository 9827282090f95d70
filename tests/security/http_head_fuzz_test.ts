/**
 * A structure-aware fuzzer for the server's own HTTP/1 head parser and WebSocket upgrade (src/http/), against
 * a model of RFC 9112 and RFC 6455 §4: upgrade requests with their headers in random order and case, random
 * optional whitespace, extra headers, a frame pipelined after the head, the bytes cut into random writes;
 * and in most cases one fault whose answer the RFCs fix (two Host lines, a body, obs-fold, a bare CR or LF,
 * NUL, a space before the colon, a bad method, version or target, a target over 8 KiB, too many or too long
 * headers, no `Connection: upgrade`, another WebSocket version, a bad key). What must hold: each request gets
 * exactly the status the model says, a good one gets its 101 and its pipelined frame is delivered, and the
 * loop goes on. `WASMNET_FUZZ_ITERATIONS` scales it (`deno task fuzz`), `WASMNET_FUZZ_SEED` replays a seed.
 */

import assert from "node:assert/strict";
import { upgradeToPort } from "../../src/core/websocket.ts";
import { AcceptLoop } from "../../src/http/accept.ts";
import { fuzzSettings, pickOne, prng, randomInt } from "./fuzz.ts";

const { iterations, seed: SEED } = fuzzSettings(13);
const CASES = Math.max(50, Math.round(iterations / 20));

type Rand = () => number;
const int = randomInt;
const pick = pickOne;
const recase = (r: Rand, s: string) =>
  [...s].map((c) => (r() < 0.5 ? c.toLowerCase() : c.toUpperCase())).join("");
const ows = (r: Rand) => pick(r, ["", " ", "  ", "\t", " \t "]);

const FAULTS: [string, number][] = [
  ["two Host lines", 400],
  ["Transfer-Encoding", 400],
  ["Content-Length: 5", 400],
  ["obs-fold", 400],
  ["bare CR in a value", 400],
  ["bare LF in a value", 400],
  ["NUL in a value", 400],
  ["VT at the edge of a value", 400],
  ["space before the colon", 400],
  ["lower-case method", 400],
  ["HTTP/2.0", 505],
  ["control byte in the target", 400],
  ["target over 8 KiB", 414],
  ["101 header lines", 431],
  ["head over 16 KiB", 431],
  ["no Connection: upgrade", 400],
  ["Sec-WebSocket-Version: 8", 426],
  ["short key", 400],
  ["POST", 400],
];

interface Case {
  bytes: Uint8Array;
  status: number;
  fault: string;
}

function makeCase(r: Rand): Case {
  const [fault, status] = r() < 0.25 ? ["none", 101] : pick(r, FAULTS);
  let method = "GET", target = pick(r, ["/", "/wisp/", "/x?y=1", "//a/b"]), version = "HTTP/1.1";
  const headers: [string, string][] = [
    ["Host", "127.0.0.1"],
    ["Upgrade", pick(r, ["websocket", "WebSocket"])],
    ["Connection", pick(r, ["Upgrade", "keep-alive, Upgrade", "upgrade"])],
    ["Sec-WebSocket-Version", "13"],
    ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
  ];
  for (let k = int(r, 4); k > 0; k--) headers.push([`X-Extra-${int(r, 1000)}`, "v".repeat(int(r, 40))]);
  if (r() < 0.3) headers.push(["Content-Length", "0"]);
  // Shuffle, and spell every name in a random case.
  for (let i = headers.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [headers[i], headers[j]] = [headers[j], headers[i]];
  }
  let lines = headers.map(([name, value]) => `${recase(r, name)}:${ows(r)}${value}${ows(r)}`);
  const at = (name: string) => lines.findIndex((l) => l.toLowerCase().startsWith(name.toLowerCase() + ":"));
  switch (fault) {
    case "two Host lines":
      lines.splice(int(r, lines.length + 1), 0, `${recase(r, "host")}: ${pick(r, ["127.0.0.1", "evil"])}`);
      break;
    case "Transfer-Encoding":
      lines.push(`Transfer-Encoding: ${pick(r, ["chunked", "identity", "gzip, chunked"])}`);
      break;
    case "Content-Length: 5":
      lines.push("Content-Length: 5");
      break;
    case "obs-fold":
      lines.splice(1 + int(r, lines.length), 0, `${pick(r, [" ", "\t"])}folded`);
      break;
    case "bare CR in a value":
      lines.push("X-Bad: a\rb");
      break;
    case "bare LF in a value":
      lines.push("X-Bad: a\nb: c");
      break;
    case "NUL in a value":
      lines.push("X-Bad: a\x00b");
      break;
    case "VT at the edge of a value":
      lines.push(pick(r, ["X-Bad: \x0ba", "X-Bad: a\x0c"]));
      break;
    case "space before the colon":
      lines.push(`X-Bad${pick(r, [" ", "\t"])}: a`);
      break;
    case "lower-case method":
      method = pick(r, ["get", "Get"]);
      break;
    case "HTTP/2.0":
      version = pick(r, ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"]);
      break;
    case "control byte in the target":
      target = `/a${pick(r, ["\x00", "\x01", "\x1b", "\x7f"])}b`;
      break;
    case "target over 8 KiB":
      target = "/" + "a".repeat(8192 + int(r, 100));
      break;
    case "101 header lines":
      lines = [...lines, ...Array.from({ length: 101 - lines.length }, (_, k) => `X-N${k}: 1`)];
      break;
    case "head over 16 KiB":
      lines.push(`X-Big: ${"v".repeat(16 * 1024)}`);
      break;
    case "no Connection: upgrade":
      lines[at("connection")] = `Connection: ${pick(r, ["keep-alive", "close", "upgraded"])}`;
      break;
    case "Sec-WebSocket-Version: 8":
      lines[at("sec-websocket-version")] = `Sec-WebSocket-Version: ${pick(r, ["8", "12", "14"])}`;
      break;
    case "short key":
      lines[at("sec-websocket-key")] = `Sec-WebSocket-Key: ${pick(r, ["", "abc", "dGhlIHNhbXBsZSBub25jZQ"])}`;
      break;
    case "POST":
      method = pick(r, ["POST", "PUT", "DELETE"]);
      break;
  }
  const head = `${method} ${target} ${version}\r\n${lines.join("\r\n")}\r\n\r\n`;
  const bytes = Uint8Array.from(head, (c) => c.charCodeAt(0));
  // A masked text frame "hi" (mask 0) right after the head: it must reach the socket.
  const frame = new Uint8Array([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]);
  const all = new Uint8Array(bytes.length + frame.length);
  all.set(bytes);
  all.set(frame, bytes.length);
  return { bytes: all, status, fault };
}

Deno.test(`fuzz HTTP heads against RFC 9112 / RFC 6455 §4 (seed ${SEED}, ${CASES} cases)`, async () => {
  const r = prng(SEED);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const controller = new AbortController();
  let delivered = Promise.withResolvers<string | Uint8Array>();
  const loop = new AcceptLoop(
    listener,
    (request) => upgradeToPort(request, () => ({ message: (m) => delivered.resolve(m), close() {} })),
    () => ({
      headerTimeoutMs: 5000,
      maxHandshakes: 100,
      maxHandshakesPerIp: 100,
      isTrustedProxy: () => false,
      sendTimeoutMs: 5000,
      readPauseBytes: 1 << 20,
      floodCloseMs: 5000,
    }),
    controller.signal,
  );
  const seen = new Map<string, number>();
  try {
    for (let i = 0; i < CASES; i++) {
      const c = makeCase(r);
      seen.set(c.fault, (seen.get(c.fault) ?? 0) + 1);
      delivered = Promise.withResolvers();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      for (let at = 0; at < c.bytes.length;) {
        const n = 1 + int(r, pick(r, [1, 10, 200, 100_000]));
        await conn.write(c.bytes.subarray(at, at + n)).catch(() => {});
        at += n;
      }
      let answer = "";
      const buf = new Uint8Array(4096);
      while (!answer.includes("\r\n\r\n")) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        answer += new TextDecoder("latin1").decode(buf.subarray(0, n));
      }
      const what = `case ${i} (seed ${SEED}): ${c.fault}: ${JSON.stringify(answer.slice(0, 80))}`;
      assert.equal(Number(answer.split(" ")[1]), c.status, what);
      if (c.status === 101) assert.equal(await delivered.promise, "hi", `${what}: the pipelined frame`);
      conn.close();
    }
  } finally {
    controller.abort();
    listener.close();
    await loop.done;
  }
  console.log(`cases by fault: ${JSON.stringify(Object.fromEntries(seen))}`);
});
