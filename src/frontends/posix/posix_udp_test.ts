import assert from "node:assert/strict";
import { type ErrorCode, WasmnetError } from "../../core/errors.ts";
import { Errno } from "./posix_codec.ts";
import { udpErrno } from "./posix_udp.ts";

Deno.test("udpErrno: UDP refusals as a C program expects them", () => {
  const table: [ErrorCode, string, number][] = [
    ["POLICY_DENIED", "127.0.0.1:53 is in a blocked range", Errno.EACCES],
    ["BAD_REQUEST", "datagram of 70000 bytes is larger than 65507 (udp.max_datagram_bytes)", Errno.EMSGSIZE],
    ["BAD_REQUEST", "example.com:53 has no IPv6 address; this socket is IPv6", Errno.EAFNOSUPPORT],
    ["LIMIT_EXCEEDED", "more than 1000 datagrams per second", Errno.ENOBUFS],
    ["SEND_FAILED", "UDP socket is closed", Errno.EBADF],
    ["RESOLVE_FAILED", "cannot resolve", Errno.EHOSTUNREACH],
    ["BIND_FAILED", "cannot bind a UDP socket", Errno.EADDRNOTAVAIL],
    ["NETWORK_ERROR", "UDP socket failed", Errno.EIO],
  ];
  for (const [code, message, errno] of table) {
    assert.equal(udpErrno(new WasmnetError(code, message)), errno, message);
  }
});
