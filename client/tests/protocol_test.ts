/**
 * The client's codec on its own: binary layouts byte for byte, JSON shapes, and base64 with and without
 * the native `toBase64`/`fromBase64`.
 */

import {
  decodeBase64,
  decodeBinary,
  decodeJson,
  encodeBase64,
  encodeBinary,
  encodeJson,
  ProtocolError,
  SERVER_ID_BASE,
} from "../mod.ts";

function assertEquals<T>(actual: T, expected: T): void {
  const a = JSON.stringify(actual, (_, v) => v instanceof Uint8Array ? [...v] : v);
  const e = JSON.stringify(expected, (_, v) => v instanceof Uint8Array ? [...v] : v);
  if (a !== e) throw new Error(`expected ${e}, got ${a}`);
}

Deno.test("protocol: SERVER_ID_BASE is 2^53 - 2^32", () => {
  assertEquals(SERVER_ID_BASE, 2 ** 53 - 2 ** 32);
});

Deno.test("protocol: binary requests have the documented layout", () => {
  assertEquals(
    [...encodeBinary({ op: "connect", id: 0x0102_0304_0506, addr: "a.b", port: 443 })],
    [0x01, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x01, 0xbb, 97, 46, 98],
  );
  assertEquals([...encodeBinary({ op: "listen", id: 1 })], [0x03, 0, 0, 0, 0, 0, 0, 0, 1]);
  assertEquals(
    [...encodeBinary({ op: "listen", id: 1, backlog: 258 })],
    [0x03, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2],
  );
  assertEquals([...encodeBinary({ op: "send", id: 2, data: new Uint8Array([9, 8]) })], [
    0x04,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    9,
    8,
  ]);
  assertEquals(
    [...encodeBinary({ op: "send_to", id: 3, addr: "h", port: 53, data: new Uint8Array([7]) })],
    [0x07, 0, 0, 0, 0, 0, 0, 0, 3, 0, 53, 0, 1, 104, 7],
  );
  assertEquals([...encodeBinary({ op: "resolve", id: 4, name: "x" })], [0x08, 0, 0, 0, 0, 0, 0, 0, 4, 120]);
  assertEquals(encodeBinary({ op: "close", id: 5 })[0], 0x05);
  assertEquals(encodeBinary({ op: "connect_tls", id: 5, addr: "", port: 1 })[0], 0x09);
  assertEquals(encodeBinary({ op: "connect_udp", id: 5, addr: "", port: 1 })[0], 0x06);
});

Deno.test("protocol: binary events decode, including a server conn_id above 2^32", () => {
  const connId = SERVER_ID_BASE + 5;
  const header = (type: number, id: number) => {
    const b = new Uint8Array(9);
    b[0] = type;
    new DataView(b.buffer).setBigUint64(1, BigInt(id));
    return b;
  };
  const accepted = new Uint8Array([
    ...header(0x84, 7),
    ...header(0, connId).subarray(1),
    ...new TextEncoder().encode("1.2.3.4:5"),
  ]);
  assertEquals(decodeBinary(accepted), { ev: "accepted", id: 7, conn_id: connId, remote: "1.2.3.4:5" });
  assertEquals(decodeBinary(new Uint8Array([...header(0x83, 1), 0x1f, 0x90])), {
    ev: "listening",
    id: 1,
    port: 8080,
  });
  assertEquals(decodeBinary(new Uint8Array([...header(0x82, connId), 1, 2])), {
    ev: "data",
    id: connId,
    data: new Uint8Array([1, 2]),
  });
  assertEquals(decodeBinary(new Uint8Array([...header(0x87, 2), 110, 111])), {
    ev: "denied",
    id: 2,
    msg: "no",
  });
  assertEquals(decodeBinary(new Uint8Array([...header(0x88, 2), 0, 53, 0, 1, 104, 9])), {
    ev: "data_from",
    id: 2,
    port: 53,
    addr: "h",
    data: new Uint8Array([9]),
  });
  const resolved = new Uint8Array([...header(0x89, 3), ...new TextEncoder().encode('["::1"]')]);
  assertEquals(decodeBinary(resolved), { ev: "resolved", id: 3, addrs: ["::1"] });
  for (const bad of [new Uint8Array(3), header(0x42, 1), header(0x83, 1)]) {
    let threw = false;
    try {
      decodeBinary(bad);
    } catch (error) {
      threw = error instanceof ProtocolError;
    }
    if (!threw) throw new Error(`decoded a malformed message: ${[...bad]}`);
  }
});

Deno.test("protocol: JSON requests carry base64 data and events decode it", () => {
  assertEquals(
    JSON.parse(encodeJson({ op: "send", id: 1, data: new TextEncoder().encode("hi") })),
    { op: "send", id: 1, data: "aGk=" },
  );
  assertEquals(decodeJson('{"ev":"data","id":1,"data":"aGk="}'), {
    ev: "data",
    id: 1,
    data: new TextEncoder().encode("hi"),
  });
  assertEquals(decodeJson('{"ev":"error","id":1,"msg":"m","code":"CONNECT_FAILED"}'), {
    ev: "error",
    id: 1,
    msg: "m",
    code: "CONNECT_FAILED",
  });
  let threw = false;
  try {
    decodeJson('{"ev":"data","id":"1"}');
  } catch (error) {
    threw = error instanceof ProtocolError;
  }
  if (!threw) throw new Error("accepted a string id");
});

Deno.test("protocol: base64 fallback matches the native codec", () => {
  const bytes = new Uint8Array(100_003).map((_, i) => (i * 131) & 0xff);
  const native = encodeBase64(bytes);
  const proto = Uint8Array.prototype as { toBase64?: unknown };
  const ctor = Uint8Array as { fromBase64?: unknown };
  const saved = [proto.toBase64, ctor.fromBase64];
  try {
    delete proto.toBase64;
    delete ctor.fromBase64;
    if (proto.toBase64 !== undefined) throw new Error("could not hide the native codec");
    const fallback = encodeBase64(bytes);
    assertEquals(fallback, native);
    assertEquals([...decodeBase64(fallback)], [...bytes]);
  } finally {
    proto.toBase64 = saved[0];
    ctor.fromBase64 = saved[1];
  }
  assertEquals([...decodeBase64(native)], [...bytes]);
});
