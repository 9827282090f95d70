import {
  decodeHello,
  decodeHelloAnswer,
  encodeHello,
  encodeHelloAnswer,
  frame,
  FrameReader,
  FrameTooLarge,
  messageHead,
  StreamBindings,
} from "./webtransport.ts";
import { EVENT_TYPE } from "./binary.ts";

function assertEquals(actual: unknown, expected: unknown, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const bytes = (...b: number[]) => new Uint8Array(b);
const list = (frames: Uint8Array[]) => frames.map((f) => [...f]);

Deno.test("frame: 4-byte big-endian length, then the message", () => {
  assertEquals([...frame(bytes(7, 8, 9))], [0, 0, 0, 3, 7, 8, 9]);
  assertEquals([...frame(bytes())], [0, 0, 0, 0]);
  assertEquals([...frame(new Uint8Array(256)).subarray(0, 4)], [0, 0, 1, 0]);
});

Deno.test("FrameReader: frames split and joined at any byte come back whole and in order", () => {
  const stream = new Uint8Array([...frame(bytes(1)), ...frame(bytes()), ...frame(bytes(2, 3, 4, 5))]);
  const cases: [string, number[]][] = [
    ["one chunk", [stream.length]],
    ["byte by byte", Array(stream.length).fill(1)],
    ["inside a header", [2, stream.length - 2]],
    ["inside a payload", [11, stream.length - 11]],
    ["header, then the rest", [5, 4, stream.length - 9]],
  ];
  for (const [what, sizes] of cases) {
    const reader = new FrameReader(1024);
    const out: Uint8Array[] = [];
    let at = 0;
    for (const n of sizes) (out.push(...reader.push(stream.subarray(at, at + n))), at += n);
    assertEquals(list(out), [[1], [], [2, 3, 4, 5]], what);
    assertEquals(reader.buffered, 0, `${what}: nothing left over`);
  }
});

Deno.test("FrameReader: a big frame in many small chunks, with the next frame's start in the last one", () => {
  const big = new Uint8Array(100_000).map((_, i) => i % 251);
  const stream = new Uint8Array([...frame(big), ...frame(bytes(9, 9))]);
  const reader = new FrameReader(1 << 20);
  const out: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += 1200) out.push(...reader.push(stream.subarray(at, at + 1200)));
  assertEquals(out.length, 2, "two frames");
  assertEquals(
    out[0].length === big.length && out[0].every((b, i) => b === big[i]),
    true,
    "the big one whole",
  );
  assertEquals([...out[1]], [9, 9], "then the small one");
  assertEquals(reader.buffered, 0, "nothing left over");
});

Deno.test("FrameReader: a header over the bound throws before the payload is buffered", () => {
  const reader = new FrameReader(4);
  assertEquals(list(reader.push(frame(bytes(1, 2, 3, 4)))), [[1, 2, 3, 4]], "at the bound");
  let thrown: unknown;
  try {
    reader.push(bytes(0, 0, 0, 5));
  } catch (e) {
    thrown = e;
  }
  if (!(thrown instanceof FrameTooLarge) || thrown.length !== 5 || thrown.max !== 4) {
    throw new Error(`expected FrameTooLarge(5, 4), got ${thrown}`);
  }
  let huge: unknown;
  try {
    new FrameReader(1 << 20).push(bytes(0xff, 0xff, 0xff, 0xff));
  } catch (e) {
    huge = e;
  }
  if (!(huge instanceof FrameTooLarge)) throw new Error("a 4 GiB header must be refused");
});

Deno.test("messageHead: type and 64-bit id; too short is null", () => {
  const m = bytes(0x82, 0, 0x1f, 0xff, 0xff, 0, 0, 0, 5, 0xaa);
  assertEquals(messageHead(m), { type: 0x82, id: 0x1fffff * 2 ** 32 + 5 });
  assertEquals(messageHead(bytes(0x85, 0, 0, 0, 0, 0, 0, 0, 1)), { type: 0x85, id: 1 });
  assertEquals(messageHead(bytes(0x85, 0, 0, 0)), null);
});

Deno.test("decodeHello: version and v2; anything else is null", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const cases: [string, unknown][] = [
    ['{"wasmnet":1,"v2":true}', { wasmnet: 1, v2: true }],
    ['{"wasmnet":1}', { wasmnet: 1, v2: false }],
    ['{"wasmnet":1,"v2":"yes"}', null],
    ['{"v2":true}', null],
    ["[1]", null],
    ["null", null],
    ["not json", null],
  ];
  for (const [text, want] of cases) assertEquals(decodeHello(enc(text)), want, text);
  assertEquals(decodeHello(bytes(0xff, 0xfe)), null, "not UTF-8");
});

Deno.test("encodeHelloAnswer: JSON the client reads", () => {
  const dec = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));
  assertEquals(dec(encodeHelloAnswer({ ok: true, v2: true })), { ok: true, v2: true });
  assertEquals(dec(encodeHelloAnswer({ ok: false, status: 401, msg: "bad token" })), {
    ok: false,
    status: 401,
    msg: "bad token",
  });
});

Deno.test("StreamBindings: a binding ends with closed, or with error/denied before connected", () => {
  const cases: [string, number[], (string | undefined)[]][] = [
    ["connected, data, closed", [EVENT_TYPE.connected, EVENT_TYPE.data, EVENT_TYPE.closed], [
      undefined,
      undefined,
      "s",
    ]],
    ["denied before connected", [EVENT_TYPE.denied], ["s"]],
    ["error before connected", [EVENT_TYPE.error], ["s"]],
    ["error after connected, then closed", [EVENT_TYPE.connected, EVENT_TYPE.error, EVENT_TYPE.closed], [
      undefined,
      undefined,
      "s",
    ]],
  ];
  for (const [what, events, want] of cases) {
    const b = new StreamBindings<string>();
    b.bind(7, "s");
    const got = events.map((type) => b.settle(type, 7));
    assertEquals(got, want, what);
    assertEquals(b.streamOf(7), undefined, `${what}: unbound at the end`);
  }
  const b = new StreamBindings<string>();
  assertEquals(b.settle(EVENT_TYPE.closed, 9), undefined, "unbound ids end nothing");
  b.settle(EVENT_TYPE.udp_bound, 3);
  assertEquals(b.isUdp(3), true, "udp_bound marks UDP");
  b.settle(EVENT_TYPE.closed, 3);
  assertEquals(b.isUdp(3), false, "closed unmarks it");
  b.bind(1, "a");
  b.bind(2, "a");
  b.bind(3, "b");
  b.dropStream("a");
  assertEquals([b.streamOf(1), b.streamOf(2), b.streamOf(3)], [undefined, undefined, "b"], "dropStream");
});

Deno.test("hello and its answer round-trip; a malformed answer is null", () => {
  assertEquals(decodeHello(encodeHello({ wasmnet: 1, v2: true })), { wasmnet: 1, v2: true });
  const answers = [{ ok: true, v2: false }, { ok: false, status: 403, msg: "origin" }] as const;
  for (const a of answers) assertEquals(decodeHelloAnswer(encodeHelloAnswer(a)), a, JSON.stringify(a));
  const enc = (s: string) => new TextEncoder().encode(s);
  for (const bad of ['{"ok":false,"status":"401","msg":"x"}', '{"ok":"yes"}', "[]", "x"]) {
    assertEquals(decodeHelloAnswer(enc(bad)), null, bad);
  }
});
