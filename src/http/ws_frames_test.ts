import assert from "node:assert/strict";
import {
  closeCodeOf,
  closePayload,
  encodeServerFrame,
  isFrameError,
  Opcode,
  parseClientFrameHeader,
  unmask,
} from "./ws_frames.ts";

/** A masked client frame header for `length` bytes (mask 0x01020304). */
function header(b0: number, length: number, masked = true): Uint8Array {
  const ext = length < 126
    ? []
    : length < 65536
    ? [length >> 8, length & 0xff]
    : [0, 0, 0, 0, ...u32(length)];
  const lenByte = length < 126 ? length : length < 65536 ? 126 : 127;
  return new Uint8Array([b0, (masked ? 0x80 : 0) | lenByte, ...ext, ...(masked ? [1, 2, 3, 4] : [])]);
}
function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

Deno.test("frame headers: lengths in three sizes, incomplete headers wait for more", () => {
  for (const length of [0, 125, 126, 65535, 65536, 1_000_000]) {
    const h = header(0x82, length);
    const parsed = parseClientFrameHeader(h, 2_000_000);
    assert.ok(parsed && !isFrameError(parsed));
    assert.deepEqual(parsed, { fin: true, opcode: 2, length, mask: 0x01020304, headerBytes: h.length });
    for (let cut = 0; cut < h.length; cut++) {
      assert.equal(parseClientFrameHeader(h.subarray(0, cut), 2e6), null);
    }
  }
});

Deno.test("frame headers: refusals carry the close code, checked before any payload", () => {
  const cases: [Uint8Array, number, number][] = [
    [header(0x82, 10, false), 100, 1002], // unmasked
    [header(0xc2, 10), 100, 1002], // RSV1 without an extension
    [header(0x83, 10), 100, 1002], // reserved data opcode
    [header(0x8b, 10), 100, 1002], // reserved control opcode
    [header(0x09, 10), 100, 1002], // fragmented ping
    [header(0x89, 126), 1000, 1002], // control frame over 125
    [header(0x82, 101), 100, 1009], // over the bound (7-bit length)
    [header(0x82, 70_000), 65_536, 1009], // 16-bit... 64-bit length over the bound
    [new Uint8Array([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]), 1e9, 1009], // 2^63: refused from 10 bytes
  ];
  for (const [bytes, max, code] of cases) {
    const parsed = parseClientFrameHeader(bytes, max);
    assert.ok(parsed && isFrameError(parsed), `${bytes} should be refused`);
    assert.equal(parsed.error, code);
  }
});

Deno.test("unmask: any alignment and phase, in place", () => {
  const mask = 0xa1b2c3d4;
  const m = [0xa1, 0xb2, 0xc3, 0xd4];
  for (const offset of [0, 1, 2, 3]) {
    for (const length of [0, 1, 3, 4, 5, 17, 1000]) {
      const plain = crypto.getRandomValues(new Uint8Array(length));
      const buf = new Uint8Array(length + 8).subarray(offset, offset + length);
      for (let i = 0; i < length; i++) buf[i] = plain[i] ^ m[i & 3];
      unmask(buf, mask);
      assert.deepEqual([...buf], [...plain], `offset ${offset} length ${length}`);
    }
  }
  const two = new Uint8Array([1 ^ 0xc3, 2 ^ 0xd4, 3 ^ 0xa1]);
  unmask(two, mask, 2);
  assert.deepEqual([...two], [1, 2, 3]);
});

Deno.test("server frames and close payloads", () => {
  assert.deepEqual([...encodeServerFrame(Opcode.text, new Uint8Array([104, 105]))], [0x81, 2, 104, 105]);
  const mid = encodeServerFrame(Opcode.binary, new Uint8Array(300));
  assert.deepEqual([...mid.subarray(0, 4)], [0x82, 126, 1, 44]);
  const big = encodeServerFrame(Opcode.binary, new Uint8Array(70_000));
  assert.deepEqual([...big.subarray(0, 10)], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
  assert.equal(closePayload(4429, "x".repeat(500)).length, 125);
  assert.equal(closePayload(1000, "é".repeat(100)).length, 2 + 122); // cut at a character boundary
  assert.equal(closeCodeOf(new Uint8Array()), 1005);
  assert.equal(closeCodeOf(new Uint8Array([3, 232])), 1000);
  assert.equal(closeCodeOf(new Uint8Array([3, 237])), null); // 1005 may not be sent
  assert.equal(closeCodeOf(new Uint8Array([3])), null);
});
