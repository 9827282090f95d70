/**
 * The POSIX proxy's descriptor table: the virtual sockets of one session, numbered from {@link FD_BASE}
 * (never host descriptors; a session can only name its own), their state, options and accept backlog.
 * The calls that act on them are `posix_proxy.ts`.
 *
 * @module
 */

import { encodeSockaddr, Musl, readIntOption } from "./posix_codec.ts";
import type { PosixConn } from "./posix_conn.ts";
import type { PosixUdp } from "./posix_udp.ts";

/**
 * The first socket number handed out. Emscripten's file descriptors stay below 4096 (`FS.MAX_OPEN_FDS`), so
 * a socket number never names a file: `read`/`write`/`close` on it (which are not proxied) fail with `EBADF`
 * instead of touching a file.
 */
export const FD_BASE = 4096;

/** One virtual socket. */
export interface VSocket {
  fd: number;
  family: 4 | 6;
  nonblocking: boolean;
  state: "new" | "connecting" | "connected" | "bound" | "listening";
  /** `SO_ERROR`: the errno of the last failed connect, cleared when read. */
  error: number;
  options: Map<string, Uint8Array>;
  conn?: PosixConn;
  /** Set for `SOCK_DGRAM` sockets. */
  udp?: PosixUdp;
  listener?: Deno.TcpListener;
  /** Accepted connections waiting for `accept`. */
  backlog: Deno.TcpConn[];
  backlogWaiters: (() => void)[];
  backlogRoom?: () => void;
  controller: AbortController;
}

/** The sockets of one session by number; numbers are reused lowest first, as a kernel does. */
export class FdTable {
  readonly #sockets = new Map<number, VSocket>();

  /** Open sockets. */
  get size(): number {
    return this.#sockets.size;
  }

  /** Sockets with a connect in flight (`max_pending_connects`). */
  get connecting(): number {
    let n = 0;
    for (const s of this.#sockets.values()) if (s.state === "connecting") n++;
    return n;
  }

  /** Bound listeners (`max_listeners`). */
  get listeners(): number {
    let n = 0;
    for (const s of this.#sockets.values()) if (s.listener) n++;
    return n;
  }

  /** The socket numbered `fd`, if this session has one. */
  get(fd: number): VSocket | undefined {
    return this.#sockets.get(fd);
  }

  /** A new socket under the lowest free number. */
  open(family: 4 | 6, nonblocking: boolean): VSocket {
    let fd = FD_BASE;
    while (this.#sockets.has(fd)) fd++;
    const sock: VSocket = {
      fd,
      family,
      nonblocking,
      state: "new",
      error: 0,
      options: new Map(),
      backlog: [],
      backlogWaiters: [],
      controller: new AbortController(),
    };
    this.#sockets.set(fd, sock);
    return sock;
  }

  /** Every socket, in number order of opening. */
  values(): IterableIterator<VSocket> {
    return this.#sockets.values();
  }

  /** Forgets `fd` (the caller closes what it held). */
  delete(fd: number): boolean {
    return this.#sockets.delete(fd);
  }

  /** Closes and forgets every socket (the session ended). */
  destroyAll(): void {
    for (const sock of this.#sockets.values()) destroySocket(sock);
    this.#sockets.clear();
  }
}

/** Closes everything `sock` holds; `graceful` lets queued sends finish first (`shutdown(SHUT_WR)`). */
export function destroySocket(sock: VSocket, graceful = false): void {
  sock.controller.abort();
  sock.udp?.close();
  if (sock.conn && !graceful) sock.conn.close();
  if (sock.conn && graceful) {
    // Let queued sends finish (shutdown(SHUT_WR) was queued behind them), then close.
    const conn = sock.conn;
    conn.send(new Uint8Array()).finally(() => conn.close());
  }
  try {
    sock.listener?.close();
  } catch {
    // already closed
  }
  for (const c of sock.backlog.splice(0)) c.close();
  sock.backlogRoom?.();
  for (const r of sock.backlogWaiters.splice(0)) r();
}

/** `sock`'s peer as a sockaddr (UDP: the connected peer), empty when it has none. */
export function peerBytes(sock: VSocket): Uint8Array {
  const udpPeer = sock.udp?.connected;
  if (udpPeer) return encodeSockaddr(udpPeer.address, udpPeer.port);
  if (!sock.conn) return new Uint8Array();
  const remote = sock.conn.conn.remoteAddr;
  return encodeSockaddr(remote.hostname, remote.port);
}

/** Applies the options a program set before connecting (`TCP_NODELAY`, `SO_KEEPALIVE`) to the connection. */
export function applyOptions(sock: VSocket): void {
  const conn = sock.conn?.conn;
  if (!conn) return;
  const nodelay = sock.options.get(`${Musl.IPPROTO_TCP}:${Musl.TCP_NODELAY}`);
  const keepalive = sock.options.get(`${Musl.SOL_SOCKET}:${Musl.SO_KEEPALIVE}`);
  try {
    if (nodelay) conn.setNoDelay(readIntOption(nodelay) !== 0);
    if (keepalive) conn.setKeepAlive(readIntOption(keepalive) !== 0);
  } catch {
    // closed under us
  }
}
