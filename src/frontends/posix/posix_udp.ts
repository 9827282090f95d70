/**
 * One UDP socket with POSIX call semantics for the POSIX socket proxy, on top of the shared policy-checked
 * `UdpSocket` (`src/core/sockets/udp.ts`): the real socket is opened (and the policy asked) at the first
 * `connect` or `sendto`; every new `sendto` destination is vetted; `recv`/`recvfrom` take one datagram at
 * a time (truncated to the program's buffer, as UDP does) and wait while none is there.
 *
 * Bound: at most {@link MAX_QUEUED_DATAGRAMS} datagrams and {@link MAX_QUEUED_DATAGRAM_BYTES} bytes wait
 * for `recv`; more are dropped, as a full socket buffer drops them. A connected socket only receives from
 * its peer.
 *
 * @module
 */

import { toWasmnetError, type WasmnetError } from "../../core/errors.ts";
import type { UdpEvents, UdpLimits, UdpSocket } from "../../core/sockets/udp.ts";
import { Errno } from "./posix_codec.ts";
import type { RecvMode } from "./posix_conn.ts";

/** Datagrams waiting for `recv`, per socket. */
export const MAX_QUEUED_DATAGRAMS = 64;
/** Bytes of datagrams waiting for `recv`, per socket. */
export const MAX_QUEUED_DATAGRAM_BYTES = 256 * 1024;

/** A datagram and where it came from. */
export interface Datagram {
  data: Uint8Array;
  address: string;
  port: number;
}

interface Opened {
  udp: UdpSocket;
  fresh: boolean;
}

/** The errno a C program expects for a failed UDP operation. */
export function udpErrno(err: WasmnetError): number {
  switch (err.code) {
    case "POLICY_DENIED":
    case "PERMISSION_DENIED":
      return Errno.EACCES;
    case "BAD_REQUEST":
      return /larger than/.test(err.message) ? Errno.EMSGSIZE : Errno.EAFNOSUPPORT;
    case "LIMIT_EXCEEDED":
      return Errno.ENOBUFS;
    case "SEND_FAILED":
      return Errno.EBADF;
    case "RESOLVE_FAILED":
      return Errno.EHOSTUNREACH;
    case "BIND_FAILED":
      return Errno.EADDRNOTAVAIL;
    default:
      return Errno.EIO;
  }
}

/** Vets `host:port` and opens a UDP socket aimed at it: `CoreSession.openUdp` with the socket's signal. */
export type UdpOpener = (
  op: string,
  host: string,
  port: number,
  events: UdpEvents,
  limits: UdpLimits,
) => Promise<UdpSocket>;

/** A UDP socket of the POSIX proxy. */
export class PosixUdp {
  /** The peer after `connect`. */
  connected: { address: string; port: number } | undefined;
  /** Datagrams dropped because the queue was full. */
  dropped = 0;
  readonly #openUdp: UdpOpener;
  readonly #limits: UdpLimits;
  #udp: UdpSocket | undefined;
  #opening: Promise<Opened | { errno: number }> | undefined;
  #queue: Datagram[] = [];
  #queuedBytes = 0;
  #waiters: (() => void)[] = [];
  #errno = 0;
  #closed = false;

  /** `openUdp` vets and opens a socket (the session's socket core); `limits` are the policy's `[udp]`. */
  constructor(openUdp: UdpOpener, limits: UdpLimits) {
    this.#openUdp = openUdp;
    this.#limits = limits;
  }

  /** The local port once the socket is open. */
  get localPort(): number | undefined {
    return this.#udp?.localPort;
  }

  /** Sets the peer (opening a new socket to it, after the policy allows it). Resolves with 0 or an errno. */
  async connect(host: string, port: number): Promise<number> {
    const opened = await this.#open("connect_udp", host, port, true);
    if ("errno" in opened) return opened.errno;
    this.connected = opened.udp.target;
    return 0;
  }

  /** Sends to the peer (`EDESTADDRREQ` without one). */
  send(data: Uint8Array): number | { errno: number } {
    if (!this.#udp || !this.connected) return { errno: Errno.EDESTADDRREQ };
    const refused = this.#udp.send(data);
    return refused ? { errno: udpErrno(refused) } : data.length;
  }

  /** Sends to `host:port` (vetted by the policy the first time), opening the socket if needed. */
  async sendTo(host: string, port: number, data: Uint8Array): Promise<number | { errno: number }> {
    if (this.#closed) return { errno: Errno.EBADF };
    if (!this.#udp) {
      const opened = await (this.#opening ?? this.#open("send_to", host, port, false));
      if ("errno" in opened) return opened;
      if (opened.fresh) {
        // Opened for this very destination: its target is the vetted address.
        const refused = opened.udp.send(data);
        return refused ? { errno: udpErrno(refused) } : data.length;
      }
    }
    try {
      await this.#udp!.sendTo(host, port, data);
      return data.length;
    } catch (err) {
      return { errno: udpErrno(toWasmnetError(err, "SEND_FAILED")) };
    }
  }

  /** Takes one datagram (truncated to `length`); waits while none is there unless non-blocking. */
  async recv(length: number, mode: RecvMode, signal: AbortSignal): Promise<Datagram | { errno: number }> {
    while (!signal.aborted) {
      const head = this.#queue[0];
      if (head) {
        if (!mode.peek) {
          this.#queue.shift();
          this.#queuedBytes -= head.data.length;
        }
        return { ...head, data: head.data.subarray(0, length) };
      }
      if (this.#errno !== 0) {
        const errno = this.#errno;
        if (!this.#closed) this.#errno = 0;
        return { errno };
      }
      if (this.#closed) return { errno: Errno.EBADF };
      if (mode.nonblocking) return { errno: Errno.EAGAIN };
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        signal.addEventListener("abort", done, { once: true });
        this.#waiters.push(done);
      });
    }
    return { errno: Errno.EBADF };
  }

  /** Closes the socket; waiting `recv`s fail with `EBADF`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#udp?.close();
    this.#wake();
  }

  /** Opens a socket to `host:port`; `fresh` is false when another call installed one meanwhile (then used instead). */
  async #open(op: string, host: string, port: number, replace: boolean): Promise<Opened | { errno: number }> {
    if (this.#closed) return { errno: Errno.EBADF };
    const opening = this.#openUdp(op, host, port, {
      onDatagram: (data, address, fromPort) => this.#deliver(data, address, fromPort),
      onError: () => {
        // The socket failed (EIO), or a send got an ICMP error back, which Linux reports as ECONNREFUSED on
        // a connected socket's next call and drops on an unconnected one.
        if (this.#udp?.isClosed) this.#errno = Errno.EIO;
        else if (this.connected) this.#errno = Errno.ECONNREFUSED;
        this.#wake();
      },
    }, this.#limits).then(
      (udp): Opened | { errno: number } => {
        if (this.#closed) {
          udp.close();
          return { errno: Errno.EBADF };
        }
        if (!replace && this.#udp) {
          udp.close();
          return { udp: this.#udp, fresh: false };
        }
        if (this.#udp) {
          this.#udp.close();
          this.#queue = [];
          this.#queuedBytes = 0;
        }
        this.#udp = udp;
        return { udp, fresh: true };
      },
      (err) => ({ errno: udpErrno(toWasmnetError(err, "BIND_FAILED")) }),
    );
    this.#opening = opening;
    try {
      return await opening;
    } finally {
      if (this.#opening === opening) this.#opening = undefined;
    }
  }

  #deliver(data: Uint8Array, address: string, port: number): void {
    if (this.#closed) return;
    const peer = this.connected;
    if (peer && (peer.address !== address || peer.port !== port)) return;
    if (
      this.#queue.length >= MAX_QUEUED_DATAGRAMS ||
      this.#queuedBytes + data.length > MAX_QUEUED_DATAGRAM_BYTES
    ) {
      this.dropped++;
      return;
    }
    this.#queue.push({ data: data.slice(), address, port });
    this.#queuedBytes += data.length;
    this.#wake();
  }

  #wake(): void {
    for (const r of this.#waiters.splice(0)) r();
  }
}
