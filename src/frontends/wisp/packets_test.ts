import assert from "node:assert/strict";
import { WasmnetError } from "../../core/errors.ts";
import {
  CloseReason,
  decodeCredentials,
  decodeExtensions,
  decodePacket,
  encodeCredentials,
  encodeDataInPlace,
  encodeExtensions,
  encodePacket,
  ExtensionId,
  type Packet,
} from "./packets.ts";
import { closeReasonFor } from "./reasons.ts";

const hex = (s: string) => Uint8Array.fromHex(s.replaceAll(" ", ""));

/** Wire bytes and the packet they mean, checked both ways. */
const VECTORS: [string, string, Packet][] = [
  ["CONNECT tcp example.com:80", "01 01000000 01 5000 6578616d706c652e636f6d", {
    type: "connect",
    streamId: 1,
    streamType: 1,
    port: 80,
    host: "example.com",
  }],
  ["CONNECT udp [::1]:53 on stream 0x01020304", "01 04030201 02 3500 3a3a31", {
    type: "connect",
    streamId: 0x01020304,
    streamType: 2,
    port: 53,
    host: "::1",
  }],
  ["CONNECT with a UTF-8 name", "01 02000000 01 bb01 c3a9", {
    type: "connect",
    streamId: 2,
    streamType: 1,
    port: 443,
    host: "é",
  }],
  ["DATA", "02 07000000 68656c6c6f", { type: "data", streamId: 7, data: new TextEncoder().encode("hello") }],
  ["empty DATA", "02 07000000", { type: "data", streamId: 7, data: new Uint8Array(0) }],
  ["CONTINUE 128 on stream 0", "03 00000000 80000000", { type: "continue", streamId: 0, remaining: 128 }],
  ["CONTINUE max", "03 05000000 ffffffff", { type: "continue", streamId: 5, remaining: 0xffffffff }],
  ["CLOSE 0x48", "04 09000000 48", { type: "close", streamId: 9, reason: CloseReason.BLOCKED }],
  ["INFO v2.0 without extensions", "05 00000000 0200", {
    type: "info",
    streamId: 0,
    major: 2,
    minor: 0,
    extensions: [],
  }],
  ["INFO v2.0 udp + motd", "05 00000000 0200 01 00000000 04 02000000 6869", {
    type: "info",
    streamId: 0,
    major: 2,
    minor: 0,
    extensions: [{ id: ExtensionId.UDP, payload: new Uint8Array(0) }, {
      id: ExtensionId.MOTD,
      payload: hex("6869"),
    }],
  }],
];

for (const [name, wire, packet] of VECTORS) {
  Deno.test(`wisp codec: decodes ${name}`, () => {
    assert.deepEqual(decodePacket(hex(wire)), { ok: true, packet });
  });
  Deno.test(`wisp codec: encodes ${name}`, () => {
    assert.deepEqual(encodePacket(packet), hex(wire));
  });
}

const BAD: [string, string, string, number | undefined][] = [
  ["empty", "", "shorter than the 5-byte header", undefined],
  ["4 bytes", "01000000", "shorter than the 5-byte header", undefined],
  ["unknown type", "09 01000000", "unknown packet type 0x09", 1],
  ["short CONNECT", "01 01000000 0150", "CONNECT payload is shorter than 3 bytes", 1],
  ["CONNECT with bad UTF-8", "01 01000000 015000 ff", "not valid UTF-8", 1],
  ["short CONTINUE", "03 02000000 010000", "CONTINUE payload is shorter", 2],
  ["empty CLOSE", "04 03000000", "CLOSE payload is empty", 3],
  ["short INFO", "05 00000000 02", "INFO payload is shorter", 0],
  ["INFO with a cut extension header", "05 00000000 0200 0100", "shorter than its 5-byte header", 0],
  ["INFO with an extension longer than the packet", "05 00000000 0200 04 05000000 6869", "claims 5 bytes", 0],
];

for (const [name, wire, problem, streamId] of BAD) {
  Deno.test(`wisp codec: refuses ${name}`, () => {
    const d = decodePacket(hex(wire));
    assert.equal(d.ok, false);
    if (d.ok) return;
    assert.match(d.problem, new RegExp(problem.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.equal(d.streamId, streamId);
  });
}

Deno.test("wisp codec: DATA payload is a view, not a copy", () => {
  const wire = hex("02 01000000 aabbcc");
  const d = decodePacket(wire);
  assert.ok(d.ok && d.packet.type === "data");
  if (d.ok && d.packet.type === "data") assert.equal(d.packet.data.buffer, wire.buffer);
});

Deno.test("wisp codec: encode refuses values that do not fit", () => {
  assert.throws(() => encodePacket({ type: "close", streamId: 1, reason: 256 }), RangeError);
  assert.throws(
    () => encodePacket({ type: "connect", streamId: 1, streamType: 1, port: 70000, host: "a" }),
    RangeError,
  );
  assert.throws(() => encodePacket({ type: "data", streamId: -1, data: new Uint8Array(0) }), RangeError);
});

Deno.test("wisp codec: extensions round-trip", () => {
  const exts = [{ id: 2, payload: hex("01") }, { id: 5, payload: new Uint8Array(0) }, {
    id: 4,
    payload: hex("616263"),
  }];
  assert.deepEqual(decodeExtensions(encodeExtensions(exts)), exts);
});

Deno.test("wisp codec: password credentials use u8 user length, u16 LE password length (wisp-js layout)", () => {
  const bytes = encodeCredentials({ username: "ab", password: "xyz" });
  assert.deepEqual(bytes, hex("02 0300 6162 78797a"));
  assert.deepEqual(decodeCredentials(bytes), { username: "ab", password: "xyz" });
  assert.deepEqual(decodeCredentials(hex("00 0000")), { username: "", password: "" });
  assert.ok("problem" in decodeCredentials(hex("02 0300 6162 78")));
  assert.ok("problem" in decodeCredentials(hex("0100")));
  assert.ok("problem" in decodeCredentials(hex("01 0000 ff")));
});

const REASONS: [WasmnetError, number][] = [
  [new WasmnetError("POLICY_DENIED", "blocked"), 0x48],
  [new WasmnetError("PERMISSION_DENIED", "deno says no"), 0x48],
  [new WasmnetError("CONNECT_TIMEOUT", "slow"), 0x43],
  [new WasmnetError("CONNECT_FAILED", "x", { cause: new Deno.errors.ConnectionRefused("no") }), 0x44],
  [new WasmnetError("CONNECT_FAILED", "cannot connect to a:1: Network is unreachable (os error 101)"), 0x42],
  [new WasmnetError("RESOLVE_FAILED", "no such name"), 0x42],
  [new WasmnetError("BAD_REQUEST", "bad"), 0x41],
  [new WasmnetError("LIMIT_EXCEEDED", "too many"), 0x49],
  [new WasmnetError("BUFFER_FULL", "full"), 0x49],
  [new WasmnetError("IDLE_TIMEOUT", "idle"), 0x47],
  [new WasmnetError("NETWORK_ERROR", "reset"), 0x03],
  [new WasmnetError("INTERNAL", "bug"), 0x03],
];

for (const [err, reason] of REASONS) {
  Deno.test(`wisp close reason: ${err.code} "${err.message.slice(0, 40)}" -> 0x${reason.toString(16)}`, () => {
    assert.equal(closeReasonFor(err), reason);
  });
}

Deno.test("encodeDataInPlace: the header goes in the headroom, the result decodes as the same DATA packet", () => {
  const buffer = new Uint8Array(5 + 3);
  const payload = buffer.subarray(5);
  payload.set([7, 8, 9]);
  const framed = encodeDataInPlace(0x01020304, payload);
  assert.equal(framed.buffer, buffer.buffer, "no copy");
  assert.deepEqual(
    framed,
    encodePacket({ type: "data", streamId: 0x01020304, data: Uint8Array.of(7, 8, 9) }),
  );
  assert.throws(() => encodeDataInPlace(1, new Uint8Array(3)), RangeError);
});
