/**
 * What a call is answered with beyond its result: the errno for a wasmnet error, the code of each call
 * (for its reply), and the ids of calls a 3.1.6 client failed to send.
 *
 * @module
 */

import type { WasmnetError } from "../../core/errors.ts";
import { Errno, Fn, type PosixCall } from "./posix_codec.ts";

/** The errno a C program expects for a wasmnet error from connect or bind. */
export function errnoForError(err: WasmnetError): number {
  switch (err.code) {
    case "POLICY_DENIED":
    case "PERMISSION_DENIED":
      return Errno.EACCES;
    case "CONNECT_TIMEOUT":
      return Errno.ETIMEDOUT;
    case "LIMIT_EXCEEDED":
      return Errno.EAGAIN;
    case "RESOLVE_FAILED":
      return Errno.EHOSTUNREACH;
    case "BIND_FAILED":
      return /in use/i.test(err.message) ? Errno.EADDRINUSE : Errno.EADDRNOTAVAIL;
    case "CONNECT_FAILED":
      if (/network is unreachable/i.test(err.message)) return Errno.ENETUNREACH;
      if (/no route|host is unreachable|unreachable/i.test(err.message)) return Errno.EHOSTUNREACH;
      if (/timed out/i.test(err.message)) return Errno.ETIMEDOUT;
      if (/reset/i.test(err.message)) return Errno.ECONNRESET;
      return Errno.ECONNREFUSED;
    default:
      return Errno.EIO;
  }
}

/**
 * Tracks which call ids arrived, to find the one a 3.1.6 client failed to send (ids are handed out 1, 2, 3…
 * and sent in that order by a single thread). Bounded: it forgets ids far ahead of the lowest missing one.
 */
export class CallIds {
  #lowestUnseen = 1;
  #started = false;
  #ahead = new Set<number>();

  /** Records that `id` arrived. */
  saw(id: number): void {
    if (!this.#started) {
      // A program that reopened its bridge goes on counting from where it was.
      this.#started = true;
      this.#lowestUnseen = id + 1;
      return;
    }
    if (id < this.#lowestUnseen) return;
    if (id === this.#lowestUnseen) {
      this.#lowestUnseen++;
      while (this.#ahead.delete(this.#lowestUnseen)) this.#lowestUnseen++;
      return;
    }
    if (this.#ahead.size >= 1024) {
      this.#lowestUnseen = Math.max(id, ...this.#ahead) + 1;
      this.#ahead.clear();
      return;
    }
    this.#ahead.add(id);
  }

  /** The id of a call that did not arrive (the lowest missing one), marked as arrived; undefined if none. */
  guessMissing(): number | undefined {
    const id = this.#lowestUnseen;
    this.saw(id);
    return id;
  }
}

/** The function code a reply to `call` carries. */
export function codeOf(call: PosixCall): number {
  if (call.fn === "unsupported") return call.code;
  const codes: Record<Exclude<PosixCall["fn"], "unsupported">, number> = {
    socket: Fn.SOCKET,
    socketpair: Fn.SOCKETPAIR,
    shutdown: Fn.SHUTDOWN,
    bind: Fn.BIND,
    connect: Fn.CONNECT,
    listen: Fn.LISTEN,
    accept: Fn.ACCEPT,
    getsockname: Fn.GETSOCKNAME,
    getpeername: Fn.GETPEERNAME,
    send: Fn.SEND,
    recv: Fn.RECV,
    sendto: Fn.SENDTO,
    recvfrom: Fn.RECVFROM,
    getsockopt: Fn.GETSOCKOPT,
    setsockopt: Fn.SETSOCKOPT,
    getaddrinfo: Fn.GETADDRINFO,
  };
  return codes[call.fn];
}
