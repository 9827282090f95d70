/**
 * WASI preview 1 errno values (shared by WASIX) and the mapping from wasmnet client errors to them, so a
 * socket call fails in a WASM program the way the same failure would on a native socket.
 *
 * @module
 */

/** The WASI errno values the socket layer returns (numbers from `wasi/api.h`). */
export const Errno = {
  SUCCESS: 0,
  ACCES: 2,
  ADDRINUSE: 3,
  ADDRNOTAVAIL: 4,
  AFNOSUPPORT: 5,
  AGAIN: 6,
  ALREADY: 7,
  BADF: 8,
  CONNABORTED: 13,
  CONNREFUSED: 14,
  CONNRESET: 15,
  DESTADDRREQ: 17,
  FAULT: 21,
  HOSTUNREACH: 23,
  INPROGRESS: 26,
  INTR: 27,
  INVAL: 28,
  IO: 29,
  ISCONN: 30,
  MFILE: 33,
  MSGSIZE: 35,
  NETDOWN: 38,
  NETUNREACH: 40,
  NOBUFS: 42,
  NOENT: 44,
  NOPROTOOPT: 50,
  NOSYS: 52,
  NOTCONN: 53,
  NOTSOCK: 57,
  NOTSUP: 58,
  OVERFLOW: 61,
  PERM: 63,
  PIPE: 64,
  PROTONOSUPPORT: 66,
  TIMEDOUT: 73,
} as const;

/** Which socket call failed; the same server error means different errno values for different calls. */
export type FailedCall = "connect" | "bind" | "stream" | "resolve";

/**
 * The errno for a client error during `call`: a policy denial is `ACCES` (what a firewall gives a native
 * program), a dropped WebSocket is `NETDOWN`, server codes map to their native equivalents.
 */
export function errnoFor(error: unknown, call: FailedCall): number {
  const e = error as { kind?: string; code?: string } | undefined;
  if (!e || typeof e !== "object" || !("kind" in e)) return Errno.IO;
  if (e.kind === "disconnected") return Errno.NETDOWN;
  if (e.kind === "closed") return call === "stream" ? Errno.CONNRESET : Errno.CONNABORTED;
  if (e.kind === "denied") return Errno.ACCES;
  switch (e.code) {
    case "POLICY_DENIED":
    case "PERMISSION_DENIED":
      return Errno.ACCES;
    case "CONNECT_TIMEOUT":
      return Errno.TIMEDOUT;
    case "RESOLVE_FAILED":
      return call === "resolve" ? Errno.NOENT : Errno.HOSTUNREACH;
    case "LIMIT_EXCEEDED":
      return Errno.MFILE;
    case "BIND_FAILED":
      return Errno.ADDRINUSE;
    case "BUFFER_FULL":
      return Errno.NOBUFS;
    case "IDLE_TIMEOUT":
      return Errno.TIMEDOUT;
    case "UNKNOWN_OP":
      return Errno.NOTSUP;
  }
  switch (call) {
    case "connect":
      return Errno.CONNREFUSED;
    case "bind":
      return Errno.ADDRINUSE;
    case "resolve":
      return Errno.NOENT;
    default:
      return Errno.CONNRESET;
  }
}
