/**
 * The wire format of Emscripten's POSIX socket proxy (`-lwebsocket.js -sPROXY_POSIX_SOCKETS`), as the
 * client half in Emscripten 3.1.6 (`system/lib/websocket/websocket_to_posix_socket.cpp`) writes and reads it.
 * Pure: bytes in, values out, and back. The session that acts on the calls is `posix_proxy.ts`.
 *
 * Every call is one binary WebSocket message: the C struct of the call, little-endian 32-bit fields,
 * starting with `callId` and the function code. Every answer starts with `callId`, `ret` and `errno`, and
 * must be at least as long as the client expects for that function (a shorter answer is dropped by the
 * client, leaving the calling thread blocked forever), so every encoder here pads to that size.
 *
 * Constants are the values the program was compiled against: Emscripten's musl (`AF_INET` 2, `AF_INET6` 10,
 * `SOCK_STREAM` 1, `EAI_*` negative) and, for `errno`, Emscripten's own numbering, which since 2.0 is WASI's
 * (`ECONNREFUSED` 14, `EACCES` 2, `EAGAIN` 6), not Linux's 111/13/11. The reference C++ proxy sends the
 * host's Linux errno unchanged, so a program behind it sees the wrong error; this codec does not.
 *
 * @module
 */

import { formatIp, parseIpLiteral } from "../../policy/address.ts";

/** Function codes (`POSIX_SOCKET_MSG_*`). */
export const Fn = {
  SOCKET: 1,
  SOCKETPAIR: 2,
  SHUTDOWN: 3,
  BIND: 4,
  CONNECT: 5,
  LISTEN: 6,
  ACCEPT: 7,
  GETSOCKNAME: 8,
  GETPEERNAME: 9,
  SEND: 10,
  RECV: 11,
  SENDTO: 12,
  RECVFROM: 13,
  SENDMSG: 14,
  RECVMSG: 15,
  GETSOCKOPT: 16,
  SETSOCKOPT: 17,
  GETADDRINFO: 18,
  GETNAMEINFO: 19,
} as const;

/**
 * `errno` values as an Emscripten 3.1.6 program sees them (`system/lib/libc/musl/arch/emscripten/bits/errno.h`:
 * WASI numbers 1-76, Linux-only codes from 100 up).
 */
export const Errno = {
  EACCES: 2,
  EADDRINUSE: 3,
  EADDRNOTAVAIL: 4,
  EAFNOSUPPORT: 5,
  EAGAIN: 6,
  EALREADY: 7,
  EBADF: 8,
  ECONNABORTED: 13,
  ECONNREFUSED: 14,
  ECONNRESET: 15,
  EDESTADDRREQ: 17,
  EHOSTUNREACH: 23,
  EINPROGRESS: 26,
  EINVAL: 28,
  EIO: 29,
  EISCONN: 30,
  EMFILE: 33,
  EMSGSIZE: 35,
  ENETUNREACH: 40,
  ENOBUFS: 42,
  ENOPROTOOPT: 50,
  ENOSYS: 52,
  ENOTCONN: 53,
  ENOTSOCK: 57,
  EPIPE: 64,
  EPROTONOSUPPORT: 66,
  EPROTOTYPE: 67,
  ETIMEDOUT: 73,
  ESOCKTNOSUPPORT: 137,
  EOPNOTSUPP: 138,
} as const;

/** `getaddrinfo` return codes (musl `netdb.h`). */
export const Eai = {
  BADFLAGS: -1,
  NONAME: -2,
  AGAIN: -3,
  FAIL: -4,
  FAMILY: -6,
  SOCKTYPE: -7,
  SERVICE: -8,
  MEMORY: -10,
  SYSTEM: -11,
} as const;

/** Address families, socket types, protocols, levels and options of Emscripten's musl. */
export const Musl = {
  AF_UNSPEC: 0,
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  IPPROTO_TCP: 6,
  IPPROTO_UDP: 17,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_TYPE: 3,
  SO_ERROR: 4,
  SO_KEEPALIVE: 9,
  SO_ACCEPTCONN: 30,
  TCP_NODELAY: 1,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  MSG_PEEK: 0x2,
  MSG_DONTWAIT: 0x40,
  MSG_WAITALL: 0x100,
  AI_PASSIVE: 0x1,
  AI_CANONNAME: 0x2,
  AI_NUMERICHOST: 0x4,
  AI_NUMERICSERV: 0x400,
} as const;

/** The fixed string fields of a `getaddrinfo` call and answer (`MAX_NODE_LEN`, `MAX_SERVICE_LEN`). */
export const MAX_NODE_LEN = 2048;
/** See {@link MAX_NODE_LEN}. */
export const MAX_SERVICE_LEN = 128;
/** `sendto` carries its destination in a fixed field of this size (`MAX_SOCKADDR_SIZE`). */
export const MAX_SOCKADDR_SIZE = 256;

/** An IPv4 or IPv6 socket address. `address` is the canonical text form (dotted quad, RFC 5952). */
export interface SockAddr {
  family: 4 | 6;
  address: string;
  port: number;
}

/** `getaddrinfo` hints as the program passed them. */
export interface AddrinfoHints {
  flags: number;
  family: number;
  socktype: number;
  protocol: number;
}

/** One decoded call. `fd` is the program's socket number; sizes are as the program wrote them. */
export type PosixCall =
  | { fn: "socket"; callId: number; domain: number; type: number; protocol: number }
  | { fn: "socketpair"; callId: number }
  | { fn: "shutdown"; callId: number; fd: number; how: number }
  | { fn: "bind" | "connect"; callId: number; fd: number; address: SockAddr | { errno: number } }
  | { fn: "listen"; callId: number; fd: number; backlog: number }
  | { fn: "accept" | "getsockname" | "getpeername"; callId: number; fd: number; addressLen: number }
  | { fn: "send"; callId: number; fd: number; flags: number; data: Uint8Array }
  | { fn: "sendto"; callId: number; fd: number; flags: number; data: Uint8Array; address: SockAddr | null }
  | { fn: "recv" | "recvfrom"; callId: number; fd: number; length: number; flags: number; addressLen: number }
  | { fn: "getsockopt"; callId: number; fd: number; level: number; name: number; optionLen: number }
  | { fn: "setsockopt"; callId: number; fd: number; level: number; name: number; value: Uint8Array }
  | {
    fn: "getaddrinfo";
    callId: number;
    node: string | null;
    service: string | null;
    hints: AddrinfoHints | null;
  }
  /** A call this proxy answers with `ENOSYS` (sendmsg, recvmsg, getnameinfo: the 3.1.6 client never sends them). */
  | { fn: "unsupported"; callId: number; code: number };

/** The result of {@link decodeCall}. A malformed call with a readable header can still be answered. */
export type DecodedCall =
  | { ok: true; call: PosixCall }
  | { ok: false; reason: string; callId?: number; code?: number };

const HEADER = 8;

/** Decodes one message from the program. Never throws. */
export function decodeCall(bytes: Uint8Array): DecodedCall {
  if (bytes.length < HEADER) {
    return { ok: false, reason: `message of ${bytes.length} bytes has no call header` };
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const i32 = (offset: number) => v.getInt32(offset, true);
  const u32 = (offset: number) => v.getUint32(offset, true);
  const callId = i32(0);
  const code = i32(4);
  const need = (n: number): DecodedCall | null =>
    bytes.length >= n
      ? null
      : { ok: false, callId, code, reason: `call ${code} needs ${n} bytes, got ${bytes.length}` };
  const fail = (reason: string): DecodedCall => ({ ok: false, callId, code, reason });
  const ok = (call: PosixCall): DecodedCall => ({ ok: true, call });
  switch (code) {
    case Fn.SOCKET:
      return need(20) ?? ok({ fn: "socket", callId, domain: i32(8), type: i32(12), protocol: i32(16) });
    case Fn.SOCKETPAIR:
      return ok({ fn: "socketpair", callId });
    case Fn.SHUTDOWN:
      return need(16) ?? ok({ fn: "shutdown", callId, fd: i32(8), how: i32(12) });
    case Fn.BIND:
    case Fn.CONNECT: {
      const short = need(16);
      if (short) return short;
      const len = Math.min(u32(12), bytes.length - 16);
      const address = decodeSockaddr(bytes.subarray(16, 16 + len));
      return ok({ fn: code === Fn.BIND ? "bind" : "connect", callId, fd: i32(8), address });
    }
    case Fn.LISTEN:
      return need(16) ?? ok({ fn: "listen", callId, fd: i32(8), backlog: i32(12) });
    case Fn.ACCEPT:
    case Fn.GETSOCKNAME:
    case Fn.GETPEERNAME: {
      const fn = code === Fn.ACCEPT ? "accept" : code === Fn.GETSOCKNAME ? "getsockname" : "getpeername";
      return need(16) ?? ok({ fn, callId, fd: i32(8), addressLen: u32(12) });
    }
    case Fn.SEND: {
      const short = need(20);
      if (short) return short;
      const length = Math.min(u32(12), bytes.length - 20);
      return ok({ fn: "send", callId, fd: i32(8), flags: i32(16), data: bytes.slice(20, 20 + length) });
    }
    case Fn.RECV:
      return need(20) ??
        ok({ fn: "recv", callId, fd: i32(8), length: u32(12), flags: i32(16), addressLen: 0 });
    case Fn.SENDTO: {
      const head = 24 + MAX_SOCKADDR_SIZE;
      const short = need(head);
      if (short) return short;
      const destLen = Math.min(u32(20), MAX_SOCKADDR_SIZE);
      const decoded = destLen === 0 ? null : decodeSockaddr(bytes.subarray(24, 24 + destLen));
      if (decoded && "errno" in decoded) return fail("sendto: bad destination address");
      const length = Math.min(u32(12), bytes.length - head);
      return ok({
        fn: "sendto",
        callId,
        fd: i32(8),
        flags: i32(16),
        data: bytes.slice(head, head + length),
        address: decoded,
      });
    }
    case Fn.RECVFROM:
      return need(24) ??
        ok({ fn: "recvfrom", callId, fd: i32(8), length: u32(12), flags: i32(16), addressLen: u32(20) });
    case Fn.GETSOCKOPT:
      return need(24) ??
        ok({ fn: "getsockopt", callId, fd: i32(8), level: i32(12), name: i32(16), optionLen: u32(20) });
    case Fn.SETSOCKOPT: {
      const short = need(24);
      if (short) return short;
      const len = Math.max(0, Math.min(i32(20), bytes.length - 24));
      return ok({
        fn: "setsockopt",
        callId,
        fd: i32(8),
        level: i32(12),
        name: i32(16),
        value: bytes.slice(24, 24 + len),
      });
    }
    case Fn.GETADDRINFO: {
      const base = HEADER + MAX_NODE_LEN + MAX_SERVICE_LEN;
      const short = need(base + 20);
      if (short) return short;
      const node = cString(bytes.subarray(HEADER, HEADER + MAX_NODE_LEN));
      const service = cString(bytes.subarray(HEADER + MAX_NODE_LEN, base));
      const hints = i32(base) === 0
        ? null
        : { flags: i32(base + 4), family: i32(base + 8), socktype: i32(base + 12), protocol: i32(base + 16) };
      return ok({ fn: "getaddrinfo", callId, node: node || null, service: service || null, hints });
    }
    default:
      return ok({ fn: "unsupported", callId, code });
  }
}

/** How many bytes the 3.1.6 client needs in the answer to function `code` before it accepts it. */
export function minReplyBytes(code: number): number {
  switch (code) {
    case Fn.SOCKETPAIR:
      return 20;
    case Fn.GETSOCKNAME:
    case Fn.GETPEERNAME:
    case Fn.ACCEPT:
    case Fn.RECVFROM:
      return 20;
    case Fn.GETADDRINFO:
      return 12 + MAX_NODE_LEN + 4;
    default:
      return 12;
  }
}

/** A bare answer: `ret` and `errno`, zero-padded to what function `code` needs. */
export function encodeResult(callId: number, code: number, ret: number, errno = 0): Uint8Array {
  const out = new Uint8Array(minReplyBytes(code));
  writeHeader(out, callId, ret, errno);
  return out;
}

/**
 * The answer to accept, getsockname or getpeername: header, the full address length, then as much of the
 * address as the program's buffer holds (`room`).
 */
export function encodeAddressReply(
  callId: number,
  ret: number,
  errno: number,
  address: Uint8Array,
  room: number,
): Uint8Array {
  const copied = address.subarray(0, Math.max(0, Math.min(room, address.length)));
  const out = new Uint8Array(16 + copied.length);
  writeHeader(out, callId, ret, errno);
  new DataView(out.buffer).setInt32(12, address.length, true);
  out.set(copied, 16);
  return out;
}

/** The answer to recv: header, then the bytes read (`ret` of them). */
export function encodeRecvReply(
  callId: number,
  ret: number,
  errno: number,
  data: Uint8Array = new Uint8Array(),
): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  writeHeader(out, callId, ret, errno);
  out.set(data, 12);
  return out;
}

/** The answer to recvfrom: header, data length, sender address length, the data, then the address. */
export function encodeRecvfromReply(
  callId: number,
  ret: number,
  errno: number,
  data: Uint8Array,
  address: Uint8Array,
  room: number,
): Uint8Array {
  const copied = address.subarray(0, Math.max(0, Math.min(room, address.length)));
  const out = new Uint8Array(20 + data.length + copied.length);
  writeHeader(out, callId, ret, errno);
  const v = new DataView(out.buffer);
  v.setInt32(12, data.length, true);
  v.setInt32(16, address.length, true);
  out.set(data, 20);
  out.set(copied, 20 + data.length);
  return out;
}

/** The answer to getsockopt: header, then the option value (the client takes every byte after the header). */
export function encodeGetsockoptReply(
  callId: number,
  ret: number,
  errno: number,
  value: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(12 + value.length);
  writeHeader(out, callId, ret, errno);
  out.set(value, 12);
  return out;
}

/** One `getaddrinfo` answer entry. */
export interface AddrinfoEntry {
  flags: number;
  family: number;
  socktype: number;
  protocol: number;
  /** The encoded `sockaddr` ({@link encodeSockaddr}). */
  addr: Uint8Array;
}

/** The answer to getaddrinfo: header, canonical name (fixed field), count, then each entry and its address. */
export function encodeGetaddrinfoReply(
  callId: number,
  ret: number,
  errno: number,
  canonname: string,
  entries: readonly AddrinfoEntry[],
): Uint8Array {
  const base = 12 + MAX_NODE_LEN + 4;
  const size = entries.reduce((n, e) => n + 20 + e.addr.length, base);
  const out = new Uint8Array(size);
  writeHeader(out, callId, ret, errno);
  const v = new DataView(out.buffer);
  const name = new TextEncoder().encode(canonname).subarray(0, MAX_NODE_LEN - 1);
  out.set(name, 12);
  v.setInt32(12 + MAX_NODE_LEN, entries.length, true);
  let at = base;
  for (const e of entries) {
    v.setInt32(at, e.flags, true);
    v.setInt32(at + 4, e.family, true);
    v.setInt32(at + 8, e.socktype, true);
    v.setInt32(at + 12, e.protocol, true);
    v.setInt32(at + 16, e.addr.length, true);
    out.set(e.addr, at + 20);
    at += 20 + e.addr.length;
  }
  return out;
}

/** Reads a `sockaddr_in` (16 bytes) or `sockaddr_in6` (28 bytes); other families are `EAFNOSUPPORT`. */
export function decodeSockaddr(bytes: Uint8Array): SockAddr | { errno: number } {
  if (bytes.length < 2) return { errno: Errno.EINVAL };
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = v.getUint16(0, true);
  if (family === Musl.AF_INET) {
    if (bytes.length < 8) return { errno: Errno.EINVAL };
    return { family: 4, address: [...bytes.subarray(4, 8)].join("."), port: v.getUint16(2, false) };
  }
  if (family === Musl.AF_INET6) {
    if (bytes.length < 24) return { errno: Errno.EINVAL };
    let value = 0n;
    for (const b of bytes.subarray(8, 24)) value = (value << 8n) | BigInt(b);
    return { family: 6, address: formatIp({ family: 6, value }), port: v.getUint16(2, false) };
  }
  return { errno: Errno.EAFNOSUPPORT };
}

/** Writes a `sockaddr_in` or `sockaddr_in6` for an IP address in any spelling; throws on a non-IP. */
export function encodeSockaddr(address: string, port: number): Uint8Array {
  const ip = parseIpLiteral(address);
  if (!ip) throw new RangeError(`not an IP address: ${address}`);
  const out = new Uint8Array(ip.family === 4 ? 16 : 28);
  const v = new DataView(out.buffer);
  v.setUint16(0, ip.family === 4 ? Musl.AF_INET : Musl.AF_INET6, true);
  v.setUint16(2, port, false);
  const bytes = ip.family === 4 ? 4 : 16;
  const at = ip.family === 4 ? 4 : 8;
  for (let i = 0; i < bytes; i++) out[at + i] = Number((ip.value >> BigInt(8 * (bytes - 1 - i))) & 0xffn);
  return out;
}

/** Encodes a 32-bit little-endian integer option value. */
export function intOption(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, value, true);
  return out;
}

/** Reads an integer option value (0 when shorter than 4 bytes). */
export function readIntOption(value: Uint8Array): number {
  return value.length >= 4 ? new DataView(value.buffer, value.byteOffset, 4).getInt32(0, true) : 0;
}

/** Well-known service names `getaddrinfo` accepts besides numbers; anything else is `EAI_SERVICE`. */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  http: 80,
  pop3: 110,
  imap: 143,
  https: 443,
  imaps: 993,
  pop3s: 995,
  irc: 6667,
};

/** The port a `getaddrinfo` service names: null for none, a `getaddrinfo` error code for a bad one. */
export function parseService(
  service: string | null,
  numericOnly: boolean,
): { port: number | null } | { eai: number } {
  if (service === null) return { port: null };
  if (/^\d{1,5}$/.test(service)) {
    const port = Number(service);
    return port <= 65535 ? { port } : { eai: Eai.SERVICE };
  }
  if (numericOnly) return { eai: Eai.NONAME };
  const known = SERVICES[service.toLowerCase()];
  return known === undefined ? { eai: Eai.SERVICE } : { port: known };
}

function writeHeader(out: Uint8Array, callId: number, ret: number, errno: number): void {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setInt32(0, callId, true);
  v.setInt32(4, ret, true);
  v.setInt32(8, errno, true);
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}
