import assert from "node:assert/strict";
import {
  BINARY_HEADER_BYTES,
  decodeBinaryEvent,
  decodeJsonEvent,
  decodeRequest,
  encodeBinaryEvent,
  encodeBinaryRequest,
  encodeEvent,
  EVENT_TYPE,
  frameDataInPlace,
  REQUEST_TYPE,
} from "./mod.ts";

Deno.test("credit: type bytes sit outside the original's and the extensions' ranges", () => {
  assert.equal(REQUEST_TYPE.credit, 0x10);
  assert.equal(EVENT_TYPE.credit, 0x90);
});

Deno.test("credit request: JSON and binary decode to the same request; bad grants are BAD_REQUEST", () => {
  const json = decodeRequest('{"op":"credit","id":7,"bytes":65536}');
  assert.deepEqual(json, { ok: true, request: { op: "credit", id: 7, bytes: 65536 }, framing: "json" });
  const bin = decodeRequest(encodeBinaryRequest({ op: "credit", id: 7, bytes: 0xffff_ffff }));
  assert.deepEqual(bin, {
    ok: true,
    request: { op: "credit", id: 7, bytes: 0xffff_ffff },
    framing: "binary",
  });
  const cases: [string | Uint8Array, string][] = [
    ['{"op":"credit","id":1,"bytes":0}', "zero"],
    ['{"op":"credit","id":1,"bytes":-5}', "negative"],
    ['{"op":"credit","id":1,"bytes":1.5}', "fraction"],
    ['{"op":"credit","id":1,"bytes":4294967296}', "2^32"],
    ['{"op":"credit","id":1}', "missing"],
    [new Uint8Array([0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1]), "3-byte payload"],
    [new Uint8Array([0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), "binary zero"],
  ];
  for (const [message, what] of cases) {
    const d = decodeRequest(message);
    assert.equal(d.ok, false, what);
    if (!d.ok) {
      assert.equal(d.code, "BAD_REQUEST", what);
      assert.equal(d.id, 1, what);
    }
  }
});

Deno.test("credit event: both framings round-trip", () => {
  const event = { ev: "credit" as const, id: 2 ** 40 + 3, bytes: 123456 };
  assert.deepEqual(decodeBinaryEvent(encodeBinaryEvent(event)), event);
  assert.deepEqual(decodeJsonEvent(encodeEvent(event, "json") as string), event);
  const bytes = encodeBinaryEvent(event);
  assert.equal(bytes.length, BINARY_HEADER_BYTES + 4);
  assert.equal(bytes[0], 0x90);
});

Deno.test("frameDataInPlace: header written into the headroom, same bytes as the copying encoder", () => {
  const buf = new Uint8Array(BINARY_HEADER_BYTES + 5);
  buf.set([1, 2, 3, 4, 5], BINARY_HEADER_BYTES);
  const payload = buf.subarray(BINARY_HEADER_BYTES);
  const frame = frameDataInPlace(42, payload);
  assert.equal(frame.buffer, buf.buffer, "no copy");
  assert.deepEqual(frame, encodeBinaryEvent({ ev: "data", id: 42, data: new Uint8Array([1, 2, 3, 4, 5]) }));
  assert.throws(() => frameDataInPlace(1, new Uint8Array(4)), RangeError);
});
