import assert from "node:assert/strict";
import {
  decodeCall,
  decodeSockaddr,
  Eai,
  encodeAddressReply,
  encodeGetaddrinfoReply,
  encodeGetsockoptReply,
  encodeRecvfromReply,
  encodeRecvReply,
  encodeResult,
  encodeSockaddr,
  Errno,
  Fn,
  MAX_NODE_LEN,
  MAX_SERVICE_LEN,
  MAX_SOCKADDR_SIZE,
  minReplyBytes,
  Musl,
  parseService,
} from "./posix_codec.ts";

/** Little-endian int32 fields followed by raw bytes, as the C structs are laid out. */
function msg(ints: number[], tail: Uint8Array = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(ints.length * 4 + tail.length);
  const v = new DataView(out.buffer);
  ints.forEach((n, i) => v.setInt32(i * 4, n, true));
  out.set(tail, ints.length * 4);
  return out;
}

function i32s(bytes: Uint8Array, count: number, offset = 0): number[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: count }, (_, i) => v.getInt32(offset + i * 4, true));
}

const SIN_127_0_0_1_8080 = new Uint8Array([2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);

function sin6(port: number, groups: number[]): Uint8Array {
  const out = new Uint8Array(28);
  const v = new DataView(out.buffer);
  v.setUint16(0, 10, true);
  v.setUint16(2, port, false);
  groups.forEach((g, i) => v.setUint16(8 + i * 2, g, false));
  return out;
}

function getaddrinfoCall(callId: number, node: string, service: string, hints: number[] | null): Uint8Array {
  const strings = new Uint8Array(MAX_NODE_LEN + MAX_SERVICE_LEN);
  strings.set(new TextEncoder().encode(node), 0);
  strings.set(new TextEncoder().encode(service), MAX_NODE_LEN);
  const tail = msg(hints ? [1, ...hints] : [0, 0, 0, 0, 0]);
  const out = new Uint8Array(8 + strings.length + tail.length);
  out.set(msg([callId, Fn.GETADDRINFO]), 0);
  out.set(strings, 8);
  out.set(tail, 8 + strings.length);
  return out;
}

Deno.test("decodeCall: every call the 3.1.6 client sends", () => {
  const sendto = new Uint8Array(24 + MAX_SOCKADDR_SIZE + 3);
  sendto.set(msg([9, Fn.SENDTO, 4096, 3, 0, 16]), 0);
  sendto.set(SIN_127_0_0_1_8080, 24);
  sendto.set([7, 8, 9], 24 + MAX_SOCKADDR_SIZE);
  const table: [string, Uint8Array, unknown][] = [
    ["socket", msg([1, Fn.SOCKET, 2, 1, 0]), { fn: "socket", callId: 1, domain: 2, type: 1, protocol: 0 }],
    ["socketpair", msg([2, Fn.SOCKETPAIR, 1, 1, 0]), { fn: "socketpair", callId: 2 }],
    ["shutdown", msg([3, Fn.SHUTDOWN, 4096, 2]), { fn: "shutdown", callId: 3, fd: 4096, how: 2 }],
    [
      "connect",
      msg([4, Fn.CONNECT, 4096, 16], SIN_127_0_0_1_8080),
      { fn: "connect", callId: 4, fd: 4096, address: { family: 4, address: "127.0.0.1", port: 8080 } },
    ],
    [
      "bind v6",
      msg([5, Fn.BIND, 4097, 28], sin6(443, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])),
      { fn: "bind", callId: 5, fd: 4097, address: { family: 6, address: "2001:db8::1", port: 443 } },
    ],
    ["listen", msg([6, Fn.LISTEN, 4096, 5]), { fn: "listen", callId: 6, fd: 4096, backlog: 5 }],
    ["accept", msg([7, Fn.ACCEPT, 4096, 16]), { fn: "accept", callId: 7, fd: 4096, addressLen: 16 }],
    [
      "send",
      msg([8, Fn.SEND, 4096, 3, 0], new Uint8Array([1, 2, 3])),
      { fn: "send", callId: 8, fd: 4096, flags: 0, data: new Uint8Array([1, 2, 3]) },
    ],
    [
      "sendto",
      sendto,
      {
        fn: "sendto",
        callId: 9,
        fd: 4096,
        flags: 0,
        data: new Uint8Array([7, 8, 9]),
        address: { family: 4, address: "127.0.0.1", port: 8080 },
      },
    ],
    ["recv", msg([10, Fn.RECV, 4096, 100, Musl.MSG_PEEK]), {
      fn: "recv",
      callId: 10,
      fd: 4096,
      length: 100,
      flags: 2,
      addressLen: 0,
    }],
    ["recvfrom", msg([11, Fn.RECVFROM, 4096, 100, 0, 16]), {
      fn: "recvfrom",
      callId: 11,
      fd: 4096,
      length: 100,
      flags: 0,
      addressLen: 16,
    }],
    ["getsockopt", msg([12, Fn.GETSOCKOPT, 4096, 1, 4, 4]), {
      fn: "getsockopt",
      callId: 12,
      fd: 4096,
      level: 1,
      name: 4,
      optionLen: 4,
    }],
    ["setsockopt", msg([13, Fn.SETSOCKOPT, 4096, 6, 1, 4, 1]), {
      fn: "setsockopt",
      callId: 13,
      fd: 4096,
      level: 6,
      name: 1,
      value: new Uint8Array([1, 0, 0, 0]),
    }],
    [
      "getaddrinfo with hints",
      getaddrinfoCall(14, "example.com", "443", [Musl.AI_CANONNAME, 2, 1, 0]),
      {
        fn: "getaddrinfo",
        callId: 14,
        node: "example.com",
        service: "443",
        hints: { flags: 2, family: 2, socktype: 1, protocol: 0 },
      },
    ],
    [
      "getaddrinfo without hints or service",
      getaddrinfoCall(15, "example.com", "", null),
      { fn: "getaddrinfo", callId: 15, node: "example.com", service: null, hints: null },
    ],
    ["getnameinfo", msg([16, Fn.GETNAMEINFO]), { fn: "unsupported", callId: 16, code: 19 }],
    ["unknown code", msg([17, 99]), { fn: "unsupported", callId: 17, code: 99 }],
  ];
  for (const [name, bytes, expected] of table) {
    const decoded = decodeCall(bytes);
    assert.deepEqual(decoded, { ok: true, call: expected }, name);
  }
});

Deno.test("decodeCall: short and empty messages", () => {
  assert.deepEqual(decodeCall(new Uint8Array()), {
    ok: false,
    reason: "message of 0 bytes has no call header",
  });
  const short = decodeCall(msg([5, Fn.SOCKET, 2]));
  assert.equal(short.ok, false);
  assert.equal(!short.ok && short.callId, 5);
  assert.equal(!short.ok && short.code, Fn.SOCKET);
  // A send whose length field claims more than the message holds sends what is there.
  const send = decodeCall(msg([6, Fn.SEND, 4096, 1000, 0], new Uint8Array([1, 2])));
  assert.ok(send.ok && send.call.fn === "send");
  assert.deepEqual(send.ok && send.call.fn === "send" && send.call.data, new Uint8Array([1, 2]));
  // connect to an address family the proxy does not speak
  const unix = decodeCall(msg([7, Fn.CONNECT, 4096, 4], new Uint8Array([1, 0, 0x2f, 0])));
  assert.deepEqual(unix.ok && unix.call.fn === "connect" && unix.call.address, { errno: Errno.EAFNOSUPPORT });
});

Deno.test("sockaddr: decode and encode both families, reject the rest", () => {
  const table: [Uint8Array, unknown][] = [
    [SIN_127_0_0_1_8080, { family: 4, address: "127.0.0.1", port: 8080 }],
    [sin6(80, [0, 0, 0, 0, 0, 0, 0, 1]), { family: 6, address: "::1", port: 80 }],
    [sin6(1, [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]), { family: 6, address: "::ffff:7f00:1", port: 1 }],
    [new Uint8Array([2, 0, 0, 80]), { errno: Errno.EINVAL }],
    [new Uint8Array([1]), { errno: Errno.EINVAL }],
    [new Uint8Array([1, 0, 0, 0]), { errno: Errno.EAFNOSUPPORT }],
  ];
  for (const [bytes, expected] of table) assert.deepEqual(decodeSockaddr(bytes), expected);
  assert.deepEqual(encodeSockaddr("127.0.0.1", 8080), SIN_127_0_0_1_8080);
  assert.deepEqual(encodeSockaddr("2001:db8::1", 443), sin6(443, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]));
  assert.throws(() => encodeSockaddr("example.com", 80), RangeError);
});

Deno.test("replies: header, padding to what the client waits for, payload layouts", () => {
  const sizes: [number, number][] = [
    [Fn.SOCKET, 12],
    [Fn.SOCKETPAIR, 20],
    [Fn.GETSOCKNAME, 20],
    [Fn.GETADDRINFO, 12 + MAX_NODE_LEN + 4],
    [Fn.SEND, 12],
  ];
  for (const [code, size] of sizes) {
    assert.equal(minReplyBytes(code), size);
    const reply = encodeResult(42, code, -1, Errno.EBADF);
    assert.equal(reply.length, size);
    assert.deepEqual(i32s(reply, 3), [42, -1, Errno.EBADF]);
  }
  const recv = encodeRecvReply(3, 2, 0, new Uint8Array([9, 8]));
  assert.deepEqual([...recv.subarray(12)], [9, 8]);
  assert.deepEqual(i32s(recv, 3), [3, 2, 0]);

  const addr = encodeSockaddr("10.0.0.1", 22);
  const accepted = encodeAddressReply(4, 4100, 0, addr, 8);
  assert.deepEqual(i32s(accepted, 4), [4, 4100, 0, 16], "full length is reported");
  assert.deepEqual(accepted.subarray(16), addr.subarray(0, 8), "only what fits is copied");

  const from = encodeRecvfromReply(5, 3, 0, new Uint8Array([1, 2, 3]), addr, 16);
  assert.deepEqual(i32s(from, 5), [5, 3, 0, 3, 16]);
  assert.deepEqual(from.subarray(20, 23), new Uint8Array([1, 2, 3]));
  assert.deepEqual(from.subarray(23), addr);

  const opt = encodeGetsockoptReply(6, 0, 0, new Uint8Array([1, 0, 0, 0]));
  assert.equal(opt.length, 16, "the option value follows the header directly, as the client reads it");

  const gai = encodeGetaddrinfoReply(7, 0, 0, "example.com", [
    { flags: 0, family: 2, socktype: 1, protocol: 6, addr: encodeSockaddr("192.0.2.1", 443) },
    { flags: 0, family: 10, socktype: 1, protocol: 6, addr: encodeSockaddr("2001:db8::2", 443) },
  ]);
  const base = 12 + MAX_NODE_LEN + 4;
  assert.equal(gai.length, base + 20 + 16 + 20 + 28);
  assert.equal(new TextDecoder().decode(gai.subarray(12, 23)), "example.com");
  assert.equal(gai[23], 0, "canonname is NUL-terminated");
  assert.deepEqual(i32s(gai, 1, 12 + MAX_NODE_LEN), [2]);
  assert.deepEqual(i32s(gai, 5, base), [0, 2, 1, 6, 16]);
  assert.deepEqual(decodeSockaddr(gai.subarray(base + 20, base + 36)), {
    family: 4,
    address: "192.0.2.1",
    port: 443,
  });
  assert.deepEqual(i32s(gai, 5, base + 36), [0, 10, 1, 6, 28]);
  assert.deepEqual(decodeSockaddr(gai.subarray(base + 56)), { family: 6, address: "2001:db8::2", port: 443 });
});

Deno.test("parseService: numbers, known names, and errors", () => {
  const table: [string | null, boolean, unknown][] = [
    [null, false, { port: null }],
    ["80", false, { port: 80 }],
    ["65535", true, { port: 65535 }],
    ["65536", false, { eai: Eai.SERVICE }],
    ["https", false, { port: 443 }],
    ["HTTP", false, { port: 80 }],
    ["https", true, { eai: Eai.NONAME }],
    ["gopher-ish", false, { eai: Eai.SERVICE }],
  ];
  for (const [service, numericOnly, expected] of table) {
    assert.deepEqual(parseService(service, numericOnly), expected, `${service} ${numericOnly}`);
  }
});

Deno.test("errno and getaddrinfo constants match Debian's Emscripten headers", async () => {
  const root = "/usr/share/emscripten/system";
  const wasi = await Deno.readTextFile(`${root}/include/wasi/api.h`);
  const errnoH = await Deno.readTextFile(`${root}/lib/libc/musl/arch/emscripten/bits/errno.h`);
  const netdb = await Deno.readTextFile(`${root}/lib/libc/musl/include/netdb.h`);
  for (const [name, value] of Object.entries(Errno)) {
    const alias = new RegExp(`#define ${name}\\s+__WASI_ERRNO_(\\w+)`).exec(errnoH);
    const direct = new RegExp(`#define ${name}\\s+(\\d+)`).exec(errnoH);
    let expected: number;
    if (alias) {
      const m = new RegExp(`#define __WASI_ERRNO_${alias[1]} \\(UINT16_C\\((\\d+)\\)\\)`).exec(wasi);
      assert.ok(m, `__WASI_ERRNO_${alias[1]} in api.h`);
      expected = Number(m[1]);
    } else {
      assert.ok(direct, `${name} in errno.h`);
      expected = Number(direct[1]);
    }
    assert.equal(value, expected, name);
  }
  for (const [name, value] of Object.entries(Eai)) {
    const m = new RegExp(`#define EAI_${name}\\s+(-?\\d+)`).exec(netdb);
    assert.ok(m, `EAI_${name} in netdb.h`);
    assert.equal(value, Number(m[1]), `EAI_${name}`);
  }
});
