/**
 * A structure-aware fuzzer for the server's own WebSocket (src/http/raw_websocket.ts), against a model of
 * RFC 6455: seeded sequences of messages split into random fragments (empty ones included), pings between
 * them, lengths in minimal and non-minimal encodings, random masks, the byte stream cut into random writes;
 * and in half the cases one fault (unmasked frame, RSV bit, reserved opcode, long or fragmented control
 * frame, continuation without a start, a new message inside a fragmented one, text that is not UTF-8, a bad
 * close code or reason, a message over the bound, a 64-bit length with its top bit set). What must hold:
 * exactly the messages before the fault are delivered, in order and intact; every ping before it gets its
 * pong; the fault gets a close frame with the code the RFC asks for; a clean case ends with the close
 * handshake. `WASMNET_FUZZ_ITERATIONS` scales it (`deno task fuzz`), `WASMNET_FUZZ_SEED` replays one seed.
 */

import assert from "node:assert/strict";
import { RawWebSocket } from "../../src/http/raw_websocket.ts";
import { fuzzSettings, pickOne, prng, randomInt } from "./fuzz.ts";
import { serverFrames } from "./raw_ws.ts";

const { iterations, seed: SEED } = fuzzSettings(11);
const CASES = Math.max(50, Math.round(iterations / 20));
const MAX_MESSAGE = 4096;

type Rand = () => number;
const int = randomInt;
const pick = pickOne;
const bytes = (r: Rand, n: number) => Uint8Array.from({ length: n }, () => int(r, 256));
const utf8 = (r: Rand, n: number) =>
  new TextEncoder().encode(
    Array.from({ length: n }, () => pick(r, ["a", "é", "€", "😀", "\u0000", "\ufeff", "{"])).join(""),
  );

/** One frame as the client sends it (before the fault is applied). */
interface Frame {
  b0: number;
  payload: Uint8Array;
  masked: boolean;
  /** Length encoding: minimal, or forced to the 16-bit or 64-bit form (allowed to a receiver). */
  lengthForm: 7 | 16 | 64;
  /** A 64-bit length with the top bit set (only with `lengthForm` 64). */
  topBit?: boolean;
}

function encode(r: Rand, f: Frame): Uint8Array {
  const len = f.payload.length;
  const form = f.lengthForm === 7 && len >= 126
    ? (len < 65536 ? 16 : 64)
    : f.lengthForm === 16 && len >= 65536
    ? 64
    : f.lengthForm;
  const ext = form === 7 ? 0 : form === 16 ? 2 : 8;
  const mask = f.masked ? bytes(r, 4) : new Uint8Array(0);
  const out = new Uint8Array(2 + ext + mask.length + len);
  out[0] = f.b0;
  out[1] = (f.masked ? 0x80 : 0) | (form === 7 ? len : form === 16 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (form === 16) view.setUint16(2, len);
  if (form === 64) view.setBigUint64(2, BigInt(len) | (f.topBit ? 1n << 63n : 0n));
  out.set(mask, 2 + ext);
  for (let i = 0; i < len; i++) out[2 + ext + mask.length + i] = f.payload[i] ^ (f.masked ? mask[i & 3] : 0);
  return out;
}

const FAULTS = [
  "unmasked",
  "rsv",
  "reserved opcode",
  "long control",
  "fragmented control",
  "continuation without start",
  "new message inside fragmented",
  "text not UTF-8",
  "bad close code",
  "close reason not UTF-8",
  "over the bound",
  "length top bit",
] as const;
type Fault = typeof FAULTS[number];
const EXPECTED_CODE: Record<Fault, number> = {
  "unmasked": 1002,
  "rsv": 1002,
  "reserved opcode": 1002,
  "long control": 1002,
  "fragmented control": 1002,
  "continuation without start": 1002,
  "new message inside fragmented": 1002,
  "text not UTF-8": 1007,
  "bad close code": 1002,
  "close reason not UTF-8": 1007,
  "over the bound": 1009,
  "length top bit": 1009,
};

/** A case: the frames to send, what must be delivered, the pings to be answered, and the close expected. */
interface Case {
  frames: Frame[];
  messages: (string | Uint8Array)[];
  pings: Uint8Array[];
  closeCode: number;
  fault?: Fault;
}

const form = (r: Rand): 7 | 16 | 64 => pick(r, [7, 7, 7, 16, 64] as const);

/** A message as fragments (random sizes, empty ones included), with pings between some of them. */
function messageFrames(r: Rand, opcode: 1 | 2, payload: Uint8Array, pings: Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  const cuts = payload.length === 0 || r() < 0.4
    ? []
    : Array.from({ length: int(r, 6) }, () => int(r, payload.length + 1));
  const edges = [0, ...cuts.sort((a, b) => a - b), payload.length];
  for (let i = 0; i + 1 < edges.length; i++) {
    const last = i + 2 === edges.length;
    frames.push({
      b0: (last ? 0x80 : 0) | (i === 0 ? opcode : 0),
      payload: payload.subarray(edges[i], edges[i + 1]),
      masked: true,
      lengthForm: form(r),
    });
    if (!last && r() < 0.3) {
      const ping = bytes(r, int(r, 126));
      pings.push(ping);
      frames.push({ b0: 0x89, payload: ping, masked: true, lengthForm: 7 });
    }
  }
  return frames;
}

function makeCase(r: Rand): Case {
  const c: Case = { frames: [], messages: [], pings: [], closeCode: 1000 };
  const count = 1 + int(r, 5);
  const faultAt = r() < 0.5 ? int(r, count + 1) : -1;
  for (let m = 0; m <= count; m++) {
    if (m === faultAt) {
      c.fault = pick(r, FAULTS);
      c.closeCode = EXPECTED_CODE[c.fault];
      c.frames.push(...faultFrames(r, c.fault, c.pings));
      return c;
    }
    if (m === count) break;
    if (r() < 0.2) {
      const ping = bytes(r, int(r, 126));
      c.pings.push(ping);
      c.frames.push({ b0: 0x89, payload: ping, masked: true, lengthForm: 7 });
    }
    const size = pick(r, [0, 1, 3, 125, 126, 127, 1000, MAX_MESSAGE]) - (r() < 0.5 ? 0 : int(r, 3));
    const text = r() < 0.5;
    const payload = text ? utf8(r, Math.max(0, Math.floor(size / 4))) : bytes(r, Math.max(0, size));
    c.frames.push(...messageFrames(r, text ? 1 : 2, payload, c.pings));
    c.messages.push(text ? new TextDecoder("utf-8", { ignoreBOM: true }).decode(payload) : payload);
  }
  c.frames.push({ b0: 0x88, payload: new Uint8Array([0x03, 0xe8]), masked: true, lengthForm: 7 });
  return c;
}

/** The frames of one fault (with whatever valid start it needs); pings it sends are added to `pings`. */
function faultFrames(r: Rand, fault: Fault, pings: Uint8Array[]): Frame[] {
  const data = (b0: number, payload = bytes(r, int(r, 50))): Frame => ({
    b0,
    payload,
    masked: true,
    // A control frame's length in a 16- or 64-bit form is refused (1002) however short: kept minimal here.
    lengthForm: b0 & 0x08 ? 7 : form(r),
  });
  switch (fault) {
    case "unmasked":
      return [{ ...data(pick(r, [0x81, 0x82, 0x89, 0x88])), masked: false }];
    case "rsv":
      return [data(pick(r, [0x40, 0x20, 0x10, 0x70]) | pick(r, [0x81, 0x82, 0x89]))];
    case "reserved opcode":
      return [data(0x80 | pick(r, [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]))];
    case "long control":
      return [{ ...data(pick(r, [0x89, 0x8a, 0x88]), bytes(r, 126 + int(r, 200))), lengthForm: 16 }];
    case "fragmented control":
      return [data(pick(r, [0x09, 0x0a, 0x08]), bytes(r, int(r, 100)))];
    case "continuation without start":
      return [data(pick(r, [0x00, 0x80]))];
    case "new message inside fragmented":
      return [data(pick(r, [0x01, 0x02]), utf8(r, 3)), data(pick(r, [0x81, 0x82, 0x01, 0x02]))];
    case "text not UTF-8": {
      const bad = pick(r, [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]);
      const payload = new Uint8Array([...utf8(r, int(r, 5)), ...bad, ...utf8(r, int(r, 5))]);
      return messageFrames(r, 1, payload, pings); // pings between its fragments come before the fault
    }
    case "bad close code": {
      const code = pick(r, [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]);
      return [data(0x88, new Uint8Array([code >> 8, code & 0xff]))];
    }
    case "close reason not UTF-8":
      return [data(0x88, new Uint8Array([0x03, 0xe8, 0x61, 0xff]))];
    case "over the bound": {
      const first = int(r, MAX_MESSAGE);
      return [data(0x02, new Uint8Array(first)), data(0x80, new Uint8Array(MAX_MESSAGE + 1 - first))];
    }
    case "length top bit":
      return [{ ...data(0x82, new Uint8Array(0)), lengthForm: 64, topBit: true }];
  }
}

/** What the server sent back: the pongs' payloads and the first close frame's code (0: none). */
async function serverOutput(conn: Deno.Conn): Promise<{ pongs: Uint8Array[]; closeCode: number }> {
  let got: Uint8Array = new Uint8Array(0);
  const buf = new Uint8Array(65536);
  const pongs: Uint8Array[] = [];
  let closeCode = 0;
  for (;;) {
    const { frames, rest } = serverFrames(got);
    for (const { opcode, payload } of frames) {
      if (opcode === 0xa) pongs.push(payload);
      if (opcode === 0x8 && closeCode === 0) {
        closeCode = (payload[0] << 8) | payload[1];
        await conn.closeWrite().catch(() => {}); // our half of the handshake done: the server may close
      }
    }
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return { pongs, closeCode };
    got = new Uint8Array([...rest, ...buf.subarray(0, n)]);
  }
}

Deno.test(`fuzz WebSocket frames (seed ${SEED}, ${CASES} cases): the RFC 6455 model holds`, async () => {
  const r = prng(SEED);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const faults = new Map<string, number>();
  try {
    for (let i = 0; i < CASES; i++) {
      const c = makeCase(r);
      faults.set(c.fault ?? "none", (faults.get(c.fault ?? "none") ?? 0) + 1);
      const stream = c.frames.map((f) => encode(r, f));
      const all = new Uint8Array(stream.reduce((n, s) => n + s.length, 0));
      stream.reduce((at, s) => (all.set(s, at), at + s.length), 0);
      const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const conn = await listener.accept();
      // Some of the stream comes with the head (as the accept loop hands it over), the rest in random writes.
      const headBytes = r() < 0.3 ? int(r, all.length + 1) : 0;
      const ws = new RawWebSocket(conn, all.slice(0, headBytes), {
        maxMessageBytes: MAX_MESSAGE,
        readPauseBytes: 1 << 20,
        floodCloseMs: 10_000,
        sendTimeoutMs: 10_000,
      });
      const delivered: (string | Uint8Array)[] = [];
      ws.onmessage = (data) => delivered.push(data);
      const closed = new Promise<number>((resolve) => (ws.onclose = resolve));
      ws.start();
      const output = serverOutput(client);
      for (let at = headBytes; at < all.length;) {
        const n = 1 + int(r, pick(r, [1, 7, 100, 5000]));
        await client.write(all.subarray(at, at + n)).catch(() => {});
        at += n;
      }
      const { pongs, closeCode } = await output;
      await closed;
      client.close();
      const what = `case ${i} (seed ${SEED}): ${c.fault ?? "clean"}`;
      assert.equal(closeCode, c.closeCode, `${what}: close code`);
      assert.equal(delivered.length, c.messages.length, `${what}: messages delivered`);
      c.messages.forEach((m, k) => assert.deepEqual(delivered[k], m, `${what}: message ${k}`));
      assert.deepEqual(pongs, c.pings, `${what}: a pong for every ping, in order`);
    }
  } finally {
    listener.close();
  }
  console.log(`cases by fault: ${JSON.stringify(Object.fromEntries(faults))}`);
});
