import assert from "node:assert/strict";
import { EVENT_VECTORS, REQUEST_VECTORS } from "../tests/fixtures/protocol_vectors.ts";
import {
  decodeBinaryEvent,
  decodeBinaryRequest,
  encodeBinaryEvent,
  encodeBinaryRequest,
  encodeSendInto,
} from "./binary.ts";
import { decodeJsonEvent, decodeJsonRequest, encodeJsonEvent, encodeJsonRequest } from "./json.ts";
import type { Event, Request } from "./messages.ts";
import { ERROR_CODES, eventForCode, isErrorCode } from "./errors.ts";
import { ProtocolError } from "./protocol_error.ts";

const fromHex = (h: string) => Uint8Array.fromHex(h);
const toHex = (b: Uint8Array) => b.toHex();

/** JSON vector → the in-memory message (base64 fields decoded). */
function toMessage(json: Record<string, unknown>): Request & Event {
  // deno-lint-ignore no-explicit-any
  const m: any = json;
  return "data" in m ? { ...m, data: Uint8Array.fromBase64(m.data) } : m;
}

for (const v of REQUEST_VECTORS) {
  Deno.test(`request ${v.name}: JSON and binary decode to the same request, and encode back`, () => {
    const fromJson = decodeJsonRequest(JSON.stringify(v.json));
    const fromBinary = decodeBinaryRequest(fromHex(v.binary));
    assert.ok(fromJson.ok, JSON.stringify(fromJson));
    assert.ok(fromBinary.ok, JSON.stringify(fromBinary));
    assert.deepEqual(fromJson.request, toMessage(v.json));
    assert.deepEqual(fromBinary.request, toMessage(v.json));
    assert.equal(toHex(encodeBinaryRequest(fromJson.request)), v.binary);
    assert.deepEqual(JSON.parse(encodeJsonRequest(fromBinary.request)), v.json);
  });
}

for (const v of EVENT_VECTORS) {
  Deno.test(`event ${v.name}: encodes to the vector in both framings`, () => {
    const event = toMessage(v.json) as Event;
    assert.deepEqual(JSON.parse(encodeJsonEvent(event)), v.json);
    assert.equal(toHex(encodeBinaryEvent(event)), v.binary);
    assert.deepEqual(decodeBinaryEvent(fromHex(v.binary)), event);
    assert.deepEqual(decodeJsonEvent(JSON.stringify(v.json)), event);
  });
}

Deno.test("malformed JSON requests are failures with a code and a message naming the problem", () => {
  const table: [string, string, RegExp, number][] = [
    ["", "BAD_REQUEST", /not valid JSON/, 0],
    ["null", "BAD_REQUEST", /JSON object/, 0],
    ['"connect"', "BAD_REQUEST", /JSON object/, 0],
    ['{"op":1,"id":1}', "BAD_REQUEST", /"op" must be a string/, 1],
    ['{"op":"close"}', "BAD_REQUEST", /"id"/, 0],
    ['{"op":"close","id":1.5}', "BAD_REQUEST", /"id"/, 0],
    ['{"op":"close","id":9007199254740992}', "BAD_REQUEST", /"id"/, 0],
    ['{"op":"connect","id":3,"addr":"","port":80}', "BAD_REQUEST", /"addr" must be 1 to 255/, 3],
    ['{"op":"connect","id":3,"addr":"x","port":"80"}', "BAD_REQUEST", /"port"/, 3],
    ['{"op":"listen","id":3,"backlog":-1}', "BAD_REQUEST", /"backlog"/, 3],
    ['{"op":"send","id":3}', "BAD_REQUEST", /"data" must be a base64 string/, 3],
    ['{"op":"send","id":3,"data":"a"}', "BAD_REQUEST", /not valid base64/, 3],
    ['{"op":"send_to","id":3,"addr":"x","port":1}', "BAD_REQUEST", /"data"/, 3],
    ['{"op":"resolve","id":3}', "BAD_REQUEST", /"name"/, 3],
    ['{"op":"frobnicate","id":3}', "UNKNOWN_OP", /unknown op/, 3],
  ];
  for (const [text, code, msg, id] of table) {
    const d = decodeJsonRequest(text);
    assert.ok(!d.ok, text);
    assert.equal(d.code, code, text);
    assert.match(d.msg, msg, text);
    assert.equal(d.id, id, text);
  }
});

Deno.test("malformed binary requests are failures with a message naming the problem", () => {
  const table: [string, string, RegExp][] = [
    ["", "BAD_REQUEST", /0 bytes, shorter than the 9-byte header/],
    ["0100000000000000", "BAD_REQUEST", /shorter than the 9-byte header/],
    ["ff0000000000000001", "UNKNOWN_OP", /unknown binary request type 0xff/],
    ["810000000000000001", "UNKNOWN_OP", /0x81/],
    ["010000000000000001", "BAD_REQUEST", /port/],
    ["01000000000000000100", "BAD_REQUEST", /port/],
    ["0100000000000000010050", "BAD_REQUEST", /port followed by an address/],
    ["0100000000000000010050ff", "BAD_REQUEST", /not valid UTF-8/],
    ["03000000000000000100", "BAD_REQUEST", /backlog/],
    ["070000000000000001003500", "BAD_REQUEST", /address length/],
    ["07000000000000000100350009616263", "BAD_REQUEST", /runs past the end/],
    ["080000000000000001", "BAD_REQUEST", /name must be 1 to 255 bytes/],
    ["05ffffffffffffffff", "BAD_REQUEST", /2\^53/],
  ];
  for (const [hex, code, msg] of table) {
    const d = decodeBinaryRequest(fromHex(hex));
    assert.ok(!d.ok, hex);
    assert.equal(d.code, code, hex);
    assert.match(d.msg, msg, hex);
  }
});

Deno.test("binary send payload is a view of the message, not a copy", () => {
  const message = fromHex("04" + "0000000000000001" + "0102030405");
  const d = decodeBinaryRequest(message);
  assert.ok(d.ok && d.request.op === "send");
  assert.equal(d.request.data.buffer, message.buffer);
  assert.deepEqual([...d.request.data], [1, 2, 3, 4, 5]);
});

Deno.test("binary error/denied: the code only with v2 (message 0x00 CODE); the original layout otherwise", () => {
  const event = { ev: "denied", id: 3, msg: "a\0b is denied", code: "POLICY_DENIED" } as const;
  const v1 = encodeBinaryEvent(event);
  assert.equal(new TextDecoder().decode(v1.subarray(9)), "a\0b is denied");
  assert.deepEqual(decodeBinaryEvent(v1), { ev: "denied", id: 3, msg: "a\0b is denied" });
  const v2 = encodeBinaryEvent(event, { errorCodes: true });
  assert.equal(new TextDecoder().decode(v2.subarray(9)), "a\0b is denied\0POLICY_DENIED");
  assert.deepEqual(decodeBinaryEvent(v2), event, "a 0x00 inside the message does not confuse the code");
});

Deno.test("binary error/denied decoded for a v1 session (errorCodes: false): the whole payload is the message", () => {
  const v2 = encodeBinaryEvent({ ev: "error", id: 1, msg: "no", code: "CONNECT_FAILED" }, {
    errorCodes: true,
  });
  assert.deepEqual(decodeBinaryEvent(v2, { errorCodes: false }), {
    ev: "error",
    id: 1,
    msg: "no\0CONNECT_FAILED",
  });
});

Deno.test("malformed events throw ProtocolError naming the problem (both framings)", () => {
  const binary: [string, RegExp][] = [
    ["82000000", /has no header/],
    ["7f0000000000000001", /unknown binary event type 0x7f/],
    ["830000000000000001", /"listening" payload is shorter than 2/],
    ["840000000000000001000000", /"accepted" payload is shorter than 8/],
    ["8800000000000000010035000561", /"data_from" payload is shorter than 9/],
    ["890000000000000001" + "7b", /"resolved" payload is not JSON/],
    ["890000000000000001" + "5b315d", /not a string array/],
    ["860000000000000001ff", /not valid UTF-8/],
    ["900000000000000001", /"credit" payload is shorter than 4/],
  ];
  for (const [hex, msg] of binary) {
    assert.throws(
      () => decodeBinaryEvent(fromHex(hex)),
      (e) => e instanceof ProtocolError && msg.test(e.message),
      hex,
    );
  }
  const json: [string, RegExp][] = [
    ["{", /not JSON/],
    ["null", /not an object/],
    ['{"ev":"connected"}', /"id" is not a number/],
    ['{"ev":"data","id":1,"data":"a"}', /"data" is not valid base64/],
    ['{"ev":"resolved","id":1,"addrs":[1]}', /not a string array/],
    ['{"ev":"frobnicated","id":1}', /unknown event "frobnicated"/],
  ];
  for (const [text, msg] of json) {
    assert.throws(
      () => decodeJsonEvent(text),
      (e) => e instanceof ProtocolError && msg.test(e.message),
      text,
    );
  }
});

Deno.test("error codes: every documented code is listed once; policy and permission refusals are denied", () => {
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
  assert.ok(ERROR_CODES.every(isErrorCode));
  assert.ok(!isErrorCode("NOT_A_CODE") && !isErrorCode("toString"));
  const denied = ERROR_CODES.filter((c) => eventForCode(c) === "denied");
  assert.deepEqual(denied, ["POLICY_DENIED", "PERMISSION_DENIED"]);
});

Deno.test("encodeSendInto: the same bytes as encodeBinaryRequest, in the given buffer when it is large enough", () => {
  const data = new Uint8Array([1, 2, 3, 4, 5]);
  const expected = encodeBinaryRequest({ op: "send", id: 2 ** 40 + 7, data });
  const big = new Uint8Array(64);
  const out = encodeSendInto(big, 2 ** 40 + 7, data);
  assert.deepEqual(out, expected);
  assert.equal(out.buffer, big.buffer, "written into the given buffer");
  const grown = encodeSendInto(new Uint8Array(4), 2 ** 40 + 7, data);
  assert.deepEqual(grown, expected);
  assert.equal(grown.byteLength, expected.byteLength);
});

Deno.test("decodeJsonEvent: data events read without JSON.parse decode exactly as a full parse would", () => {
  const full = (text: string) => {
    const m = JSON.parse(text);
    return { ev: m.ev, id: m.id, data: Uint8Array.fromBase64(m.data) };
  };
  for (
    const text of [
      '{"ev":"data","id":1,"data":"QUJD"}',
      '{"ev":"data","id":9007199254740991,"data":""}',
      '{"ev":"data","id":1,"data":"QUJD","x":"y"}', // more fields: not the plain shape
      '{"ev":"data","id":1,"data":"QUJD","data":"REVG"}', // a repeated key: the last one wins
      '{"ev":"data","id":1,"data":"QU\\u004aD"}', // an escape inside the string
      '{"ev":"data","id":1,"data":"QU JD"}', // whitespace base64 decoders skip
    ]
  ) assert.deepEqual(decodeJsonEvent(text), full(text), text);
  for (const bad of ['{"ev":"data","id":01,"data":"QUJD"}', '{"ev":"data","id":1,"data":"Q!JD"}']) {
    assert.throws(() => decodeJsonEvent(bad), ProtocolError, bad);
  }
});
