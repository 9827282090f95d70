/**
 * The socket core under both WASI ABIs: BSD-style TCP sockets (connect, bind/listen/accept, send/recv with
 * readiness, shutdown, addresses, name lookup) over one {@link WasmnetClient}, addressed by small integer
 * handles. Every operation takes and returns plain values (numbers, strings, byte arrays, errno results) so
 * it can be called directly (JSPI) or from a Worker through the Atomics bridge.
 *
 * Bounds: each socket buffers at most `maxBuffered` received bytes that the program has not read yet
 * (default 8 MiB). The core takes data through `onData` callbacks, which accept all the server sends (under
 * protocol v2 the client grants credit as data is delivered, not as the program reads it), so when that
 * fills the socket fails with `NOBUFS` and is closed. A listener queues at most `backlog` (default 128, at most 1024) connections not
 * yet accepted; more are closed at once, like a full SYN queue.
 *
 * Longer than 500 lines: one state machine per socket (open, connect, listen/accept, recv with readiness
 * and timeouts, shutdown) behind one handle table, shared by both ABIs; addresses (`addr.ts`) and errno
 * (`errno.ts`) are apart. The next seam is the listener/accept half.
 *
 * @module
 */

import { formatIp, parseHostPort, parseIp, type SocketAddress, unspecified } from "./addr.ts";
import { Errno, errnoFor } from "./errno.ts";

/**
 * The part of `WasmnetClient` (from `@wasmnet/client`) the core uses, written out so this module has no
 * import of the client: any object with these methods works.
 */
export interface CoreClient {
  /** Opens a TCP connection; resolves to its socket id, rejects with a `WasmnetError`. */
  connect(host: string, port: number): Promise<number>;
  /** Binds a listener on the server; resolves to its id and real port. */
  bind(addr: string, port: number): Promise<{ id: number; port: number }>;
  /** Passes a backlog hint. */
  listen(id: number, backlog?: number): void;
  /** Handler for inbound connections on a listener. */
  onAccept(id: number, callback: (connId: number, remote: string) => void): void;
  /** Handler for bytes received. */
  onData(id: number, callback: (data: Uint8Array) => void): void;
  /** Callback once the socket closes (with the error when it failed). */
  onClose(id: number, callback: (error?: { kind: string; code?: string }) => void): void;
  /** Sends bytes; false when the socket is not open. */
  send(id: number, data: Uint8Array): boolean;
  /**
   * True if `send` is done with `data` when it returns (copied or encoded), as `WasmnetClient`'s is; then
   * the core hands it the program's memory as is. Otherwise the core copies first.
   */
  readonly copiesOnSend?: boolean;
  /** Bytes sent on `id` and not yet handed to the network; when present, sends wait while it is high. */
  bufferedAmount?(id: number): number;
  /** Closes a socket or listener. */
  close(id: number): Promise<void>;
  /** Half-closes a TCP socket (the peer reads end-of-stream); absent or false where the server lacks it. */
  shutdown?(id: number): boolean;
  /** Looks a name up on the server (under its policy). */
  resolve?(name: string): Promise<string[]>;
  /** Opens a UDP socket aimed at `host:port`; resolves to its id and the server's local port. */
  connectUdp?(host: string, port: number): Promise<{ id: number; port: number }>;
  /** Sends one datagram from UDP socket `id` to `addr:port`. */
  sendTo?(id: number, addr: string, port: number, data: Uint8Array): boolean;
  /** Handler for datagrams from sources other than the UDP socket's target. */
  onDataFrom?(id: number, callback: (data: Uint8Array, addr: string, port: number) => void): void;
}

/** Options of {@link SocketCore}. */
export interface SocketCoreOptions {
  /** Received bytes held per socket before it fails with NOBUFS. Default 8 MiB. */
  maxBuffered?: number;
  /** Most sockets open at once; `open` fails with MFILE past it. Default 1024. */
  maxSockets?: number;
  /**
   * A send waits (a non-blocking one fails with AGAIN) while more than this many bytes wait to go out,
   * where the client says (`bufferedAmount`): the socket's send buffer. Default 8 MiB.
   */
  maxUnsent?: number;
}

/** Socket states, as WASIX `sock_status` and the WASI 0.2 state machine need them. */
export type SocketState =
  | "unbound"
  | "bound"
  | "connecting"
  | "connected"
  | "listening"
  | "failed"
  | "closed";

/** WASIX `__wasi_sock_status_t`. */
export const SockStatus = { OPENING: 0, OPENED: 1, CLOSED: 2, FAILED: 3 } as const;

/** What a poll asks about one socket. */
export interface PollInterest {
  /** Socket handle. */
  handle: number;
  /** Readable (data, EOF, error, or a connection to accept) or writable (connected, or error). */
  interest: "read" | "write";
}

/** One ready entry of a poll. */
export interface PollReady {
  /** Index into the interests asked. */
  index: number;
  /** 0, or the socket's error (BADF for an unknown handle). */
  errno: number;
  /** Bytes readable now (read interest) or a nominal free space (write interest). */
  nbytes: number;
  /** The peer closed (no more data will come). */
  hup: boolean;
}

/** Result of `recv`: errno and, on success, the bytes (empty means end of stream). */
export interface RecvResult {
  errno: number;
  data?: Uint8Array;
}

/** Result of `recvFrom` (UDP): errno and, on success, one datagram (cut to the size asked), its source and
 * whether it was cut. */
export interface RecvFromResult {
  errno: number;
  data?: Uint8Array;
  from?: SocketAddress;
  truncated?: boolean;
}

/** Result of `accept`: errno and, on success, the new socket's handle and its peer. */
export interface AcceptResult {
  errno: number;
  handle?: number;
  peer?: SocketAddress;
}

/** Result of the address queries and `resolve`. */
export interface AddrResult {
  errno: number;
  addr?: SocketAddress;
}

/** Nominal send space reported to `poll`: wasmnet sends never block, so any size is accepted. */
const SEND_SPACE = 65536;
const DEFAULT_MAX_BUFFERED = 8 * 1024 * 1024;
const DEFAULT_BACKLOG = 128;
const MAX_BACKLOG = 1024;

class Sock {
  state: SocketState = "unbound";
  id?: number;
  local?: SocketAddress;
  peer?: SocketAddress;
  error = 0;
  chunks: Uint8Array[] = [];
  buffered = 0;
  eof = false;
  readShut = false;
  writeShut = false;
  backlog = DEFAULT_BACKLOG;
  accepts: { id: number; peer: SocketAddress }[] = [];
  options = new Map<number, number | bigint>();
  watchers = new Set<() => void>();
  /** UDP: datagrams received and not yet read, with their sources. */
  datagrams: { data: Uint8Array; from: SocketAddress }[] = [];
  /** UDP: the wasmnet socket's target (datagrams arriving as plain `data` come from it). */
  udpTarget?: SocketAddress;
  /** UDP: resolves to an errno once the wasmnet UDP socket is open (or failed). */
  udpOpening?: Promise<number>;
  /** UDP: datagrams sent before the wasmnet socket was open, flushed when it is. */
  udpOut: { data: Uint8Array; to: SocketAddress }[] = [];
  /** UDP: datagrams dropped because the receive queue was full. */
  dropped = 0;
  constructor(readonly family: 4 | 6, readonly type: "stream" | "dgram" = "stream") {}

  notify(): void {
    const watchers = [...this.watchers];
    this.watchers.clear();
    for (const w of watchers) w();
  }
}

/** Takes up to `max` bytes off the front of `sock`'s queue (without removing them when `peek`). */
function take(sock: Sock, max: number, peek: boolean): Uint8Array {
  const n = Math.min(max, sock.buffered);
  const first = sock.chunks[0];
  if (first.length >= n) {
    // One chunk holds it all: a view, no copy (chunks are the client's own message buffers, never reused;
    // the ABI layers copy into the program's memory).
    if (!peek) {
      if (first.length === n) sock.chunks.shift();
      else sock.chunks[0] = first.subarray(n);
      sock.buffered -= n;
    }
    return first.subarray(0, n);
  }
  const out = new Uint8Array(n);
  let off = 0;
  let i = 0;
  while (off < n) {
    const chunk = sock.chunks[i];
    const part = Math.min(chunk.length, n - off);
    out.set(chunk.subarray(0, part), off);
    off += part;
    if (peek) i++;
    else if (part === chunk.length) sock.chunks.shift();
    else sock.chunks[0] = chunk.subarray(part);
  }
  if (!peek) sock.buffered -= n;
  return out;
}

/**
 * Asynchronous sockets over a wasmnet client. Waiting calls (`connect`, `accept`, `recv` with `wait`, `poll`)
 * return promises that settle when the server answers or data arrives; the rest return at once.
 */
export class SocketCore {
  readonly #client: CoreClient;
  readonly #sockets = new Map<number, Sock>();
  readonly #maxBuffered: number;
  readonly #maxSockets: number;
  readonly #maxUnsent: number;
  #nextHandle = 1;

  /** Uses `client` (already made; it need not be ready yet) for every socket. */
  constructor(client: CoreClient, options: SocketCoreOptions = {}) {
    this.#client = client;
    this.#maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.#maxSockets = options.maxSockets ?? 1024;
    this.#maxUnsent = options.maxUnsent ?? 8 * 1024 * 1024;
  }

  /**
   * Creates an unconnected socket of `family`: TCP (`"stream"`, the default) or UDP (`"dgram"`, NOTSUP when
   * the client has no UDP); returns its handle.
   */
  open(family: 4 | 6, type: "stream" | "dgram" = "stream"): { errno: number; handle?: number } {
    if (this.#sockets.size >= this.#maxSockets) return { errno: Errno.MFILE };
    if (type === "dgram" && !this.#client.connectUdp) return { errno: Errno.NOTSUP };
    const handle = this.#nextHandle++;
    this.#sockets.set(handle, new Sock(family, type));
    return { errno: 0, handle };
  }

  /** `"stream"` or `"dgram"`, or undefined when there is no such socket. */
  type(handle: number): "stream" | "dgram" | undefined {
    return this.#sockets.get(handle)?.type;
  }

  /** The state of socket `handle`, or undefined when there is none. */
  state(handle: number): SocketState | undefined {
    return this.#sockets.get(handle)?.state;
  }

  /** The address family of socket `handle`. */
  family(handle: number): 4 | 6 | undefined {
    return this.#sockets.get(handle)?.family;
  }

  /** WASIX `sock_status`: opening, opened, closed or failed. */
  status(handle: number): { errno: number; status?: number } {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    const status = s.state === "failed"
      ? SockStatus.FAILED
      : s.state === "closed" || s.eof
      ? SockStatus.CLOSED
      : s.state === "connected" || s.state === "listening"
      ? SockStatus.OPENED
      : SockStatus.OPENING;
    return { errno: 0, status };
  }

  /**
   * Records the local address for a later `listen` (wasmnet binds on the server when listening starts, so
   * a port in use is reported by `listen`). Checks family and state only.
   */
  bind(handle: number, address: string, port: number): number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    if (s.state !== "unbound") return Errno.INVAL;
    const ip = parseIp(address);
    if (!ip || ip.family !== s.family) return Errno.AFNOSUPPORT;
    if (port < 0 || port > 65535) return Errno.INVAL;
    s.local = { family: s.family, address: formatIp(ip.bytes), port };
    s.state = "bound";
    return 0;
  }

  /** Binds on the server (port 0 picks one) and starts accepting; resolves to an errno. */
  async listen(handle: number, backlog = 0): Promise<number> {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    if (s.state === "listening") return 0;
    if (s.state !== "bound" && s.state !== "unbound") return Errno.INVAL;
    const local = s.local ?? unspecified(s.family);
    s.backlog = backlog > 0 ? Math.min(backlog, MAX_BACKLOG) : DEFAULT_BACKLOG;
    s.state = "connecting";
    try {
      const { id, port } = await this.#client.bind(local.address, local.port);
      if ((s.state as SocketState) === "closed") {
        this.#client.close(id);
        return Errno.BADF;
      }
      s.id = id;
      s.local = { ...local, port };
      s.state = "listening";
      this.#client.onAccept(id, (connId, remote) => {
        const peer = parseHostPort(remote) ?? unspecified(s.family);
        if (s.state !== "listening" || s.accepts.length >= s.backlog) {
          this.#client.close(connId);
          return;
        }
        s.accepts.push({ id: connId, peer });
        s.notify();
      });
      this.#client.onClose(id, () => {
        if (s.state === "listening") {
          s.state = "failed";
          s.error = Errno.NETDOWN;
          s.notify();
        }
      });
      return 0;
    } catch (error) {
      s.state = s.local ? "bound" : "unbound";
      return errnoFor(error, "bind");
    }
  }

  /**
   * Connects to an IP literal. With `wait`, resolves once connected (errno 0) or failed; without, starts
   * the connection and resolves to INPROGRESS at once (then watch writability / `status`).
   */
  connect(handle: number, address: string, port: number, wait: boolean): Promise<number> | number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    if (s.type === "dgram") return this.#connectUdp(s, address, port);
    if (s.state === "connecting") return wait ? this.#waitConnected(s) : Errno.ALREADY;
    if (s.state === "connected") return Errno.ISCONN;
    if (s.state !== "unbound" && s.state !== "bound") return Errno.INVAL;
    const ip = parseIp(address);
    if (!ip) return Errno.INVAL;
    if (ip.family !== s.family) return Errno.AFNOSUPPORT;
    if (port === 0) return Errno.INVAL;
    const target = { family: s.family, address: formatIp(ip.bytes), port };
    s.peer = target;
    s.state = "connecting";
    this.#client.connect(target.address, port).then((id) => {
      if (s.state === "closed") {
        this.#client.close(id);
        return;
      }
      s.id = id;
      s.state = "connected";
      this.#attach(s, id);
      s.notify();
    }, (error) => {
      if (s.state === "closed") return;
      s.state = "failed";
      s.error = errnoFor(error, "connect");
      s.notify();
    });
    return wait ? this.#waitConnected(s) : Errno.INPROGRESS;
  }

  async #waitConnected(s: Sock): Promise<number> {
    while (s.state === "connecting") await this.#change([s], null);
    if (s.state === "connected") return 0;
    if (s.state === "closed") return Errno.BADF;
    return s.error || Errno.CONNREFUSED;
  }

  #attach(s: Sock, id: number): void {
    this.#client.onData(id, (data) => {
      if (s.state === "closed") return;
      if (s.readShut) return;
      s.chunks.push(data);
      s.buffered += data.length;
      if (s.buffered > this.#maxBuffered) {
        s.state = "failed";
        s.error = Errno.NOBUFS;
        s.chunks = [];
        s.buffered = 0;
        this.#client.close(id);
      }
      s.notify();
    });
    this.#client.onClose(id, (error) => {
      if (s.state === "closed") return;
      if (error && s.state !== "failed") {
        s.state = "failed";
        s.error = errnoFor(error, "stream");
      }
      s.eof = true;
      s.notify();
    });
  }

  /** Takes the next connection off a listener; with `wait`, waits for one. */
  async accept(handle: number, wait: boolean): Promise<AcceptResult> {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    if (s.state !== "listening" && s.state !== "failed") return { errno: Errno.INVAL };
    const timeout = this.#timeout(s, OPT_ACCEPT_TIMEOUT);
    const deadline = timeout === null ? null : Date.now() + timeout;
    while (!s.accepts.length) {
      if (s.state !== "listening") return { errno: s.error || Errno.BADF };
      if (!wait) return { errno: Errno.AGAIN };
      const left = deadline === null ? null : deadline - Date.now();
      if (left !== null && left <= 0) return { errno: Errno.AGAIN };
      await this.#change([s], left);
    }
    return this.acceptNow(handle);
  }

  /** Takes the next queued connection off a listener without waiting (AGAIN when there is none). */
  acceptNow(handle: number): AcceptResult {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    if (!s.accepts.length) {
      return { errno: s.state === "listening" ? Errno.AGAIN : s.state === "failed" ? s.error : Errno.INVAL };
    }
    if (this.#sockets.size >= this.#maxSockets) return { errno: Errno.MFILE };
    const { id, peer } = s.accepts.shift()!;
    const child = new Sock(peer.family);
    child.id = id;
    child.state = "connected";
    child.peer = peer;
    child.local = s.local;
    const h = this.#nextHandle++;
    this.#sockets.set(h, child);
    this.#attach(child, id);
    return { errno: 0, handle: h, peer };
  }

  /**
   * Receives up to `max` bytes. Empty data means end of stream. Without `wait`, AGAIN when nothing is
   * buffered; with `wait`, waits (up to the receive timeout option, then AGAIN).
   */
  recv(handle: number, max: number, peek: boolean, wait: boolean): Promise<RecvResult> | RecvResult {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    if (s.type === "dgram") return this.recvFrom(handle, max, peek, wait);
    const now = this.#tryRecv(s, max, peek);
    if (now || !wait) return now ?? { errno: Errno.AGAIN };
    return this.#recvWait(s, max, peek);
  }

  #tryRecv(s: Sock, max: number, peek: boolean): RecvResult | null {
    if (s.buffered > 0 && max > 0) return { errno: 0, data: take(s, max, peek) };
    if (s.state === "failed") return { errno: s.error || Errno.CONNRESET };
    if (s.state === "closed") return { errno: Errno.BADF };
    if (s.state !== "connected" && s.state !== "connecting") return { errno: Errno.NOTCONN };
    if (s.eof || s.readShut || max === 0) return { errno: 0, data: new Uint8Array(0) };
    return null;
  }

  async #recvWait(s: Sock, max: number, peek: boolean): Promise<RecvResult> {
    const timeout = this.#timeout(s, OPT_RECV_TIMEOUT);
    const deadline = timeout === null ? null : Date.now() + timeout;
    for (;;) {
      const r = this.#tryRecv(s, max, peek);
      if (r) return r;
      const left = deadline === null ? null : deadline - Date.now();
      if (left !== null && left <= 0) return { errno: Errno.AGAIN };
      await this.#change([s], left);
    }
  }

  /**
   * Sends `data`; resolves to the count sent (all of it: the wasmnet client queues on the WebSocket). While
   * more than `maxUnsent` bytes wait to go out (where the client says), a send with `wait` waits for them
   * to drain after sending, and one without fails with AGAIN before sending, as a full TCP send buffer
   * does. A connecting socket is waited for when `wait`, else AGAIN.
   */
  send(handle: number, data: Uint8Array, wait: boolean): Promise<{ errno: number; n?: number }> | {
    errno: number;
    n?: number;
  } {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    if (s.type === "dgram") return this.sendTo(handle, data, null, 0, wait);
    if (s.state === "connecting") {
      if (!wait) return { errno: Errno.AGAIN };
      return this.#waitConnected(s).then((errno) => errno ? { errno } : this.send(handle, data, false));
    }
    if (s.state === "failed") return { errno: s.error || Errno.PIPE };
    if (s.state !== "connected") return { errno: Errno.NOTCONN };
    if (s.writeShut || s.eof) return { errno: Errno.PIPE };
    if (data.length === 0) return { errno: 0, n: 0 };
    if (!wait && this.#sendBufferFull(s)) return { errno: Errno.AGAIN };
    if (!this.#client.send(s.id!, this.#client.copiesOnSend ? data : data.slice())) {
      return { errno: Errno.PIPE };
    }
    if (wait && this.#sendBufferFull(s)) return this.#drained(s).then(() => ({ errno: 0, n: data.length }));
    return { errno: 0, n: data.length };
  }

  #sendBufferFull(s: Sock): boolean {
    return (this.#client.bufferedAmount?.(s.id!) ?? 0) > this.#maxUnsent;
  }

  /** Resolves once the socket's unsent bytes are within the bound (or it is no longer connected). */
  async #drained(s: Sock): Promise<void> {
    // No drain event exists (neither the WebSocket nor the client has one): a short poll, which the bound's
    // size makes cheap (megabytes go in the time a stretched timer takes).
    while (s.state === "connected" && this.#sendBufferFull(s)) await new Promise((r) => setTimeout(r, 1));
  }

  /**
   * Shuts down reading (1), writing (2) or both (3). Shutting writing makes later sends fail with PIPE and,
   * on a server that has half-close (one that accepted protocol v2), the peer reads end-of-stream at once;
   * with the original protocol it sees it only at `close`.
   */
  shutdown(handle: number, how: number): number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    if (s.state !== "connected") return Errno.NOTCONN;
    if ((how & ~3) !== 0 || how === 0) return Errno.INVAL;
    if (how & 1) {
      s.readShut = true;
      s.chunks = [];
      s.buffered = 0;
    }
    if (how & 2 && !s.writeShut) {
      s.writeShut = true;
      if (s.id !== undefined) this.#client.shutdown?.(s.id);
    }
    s.notify();
    return 0;
  }

  /** Closes the socket (the server side closes after the bytes already sent); the handle is gone. */
  close(handle: number): number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    this.#sockets.delete(handle);
    s.state = "closed";
    for (const pending of s.accepts) this.#client.close(pending.id);
    s.accepts = [];
    s.chunks = [];
    s.datagrams = [];
    s.udpOut = [];
    if (s.id !== undefined) this.#client.close(s.id); // a socket still opening is closed when it opens
    s.notify();
    return 0;
  }

  /**
   * The local address. For a listener, the address bound with the real port; for a connected socket the
   * wasmnet server does not report its local side, so the unspecified address with port 0.
   */
  localAddress(handle: number): AddrResult {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    return { errno: 0, addr: s.local ?? unspecified(s.family) };
  }

  /** The peer address of a connected socket (NOTCONN otherwise). */
  peerAddress(handle: number): AddrResult {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    if (s.state !== "connected" || !s.peer) return { errno: Errno.NOTCONN };
    return { errno: 0, addr: s.peer };
  }

  /** Stores a socket option (WASIX `sock_option` number); timeouts are honoured, others are recorded. */
  setOption(handle: number, option: number, value: number | bigint): number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    s.options.set(option, value);
    return 0;
  }

  /** Reads back a socket option; `fallback` when never set. */
  getOption(
    handle: number,
    option: number,
    fallback: number | bigint,
  ): { errno: number; value?: number | bigint } {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    return { errno: 0, value: s.options.get(option) ?? fallback };
  }

  /** The pending error of a socket (SO_ERROR), cleared by reading it. */
  takeError(handle: number): number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    const e = s.state === "failed" ? s.error : 0;
    return e;
  }

  #timeout(s: Sock, option: number): number | null {
    const v = s.options.get(option);
    if (v === undefined) return null;
    const ns = BigInt(v);
    return ns > 0n ? Number(ns / 1_000_000n) : null;
  }

  /**
   * Resolves a host name through the server (its `resolve` op, filtered by its policy). IP literals are
   * answered locally. NOENT when the name has no allowed address, NOTSUP when the client has no resolve.
   */
  async resolve(host: string): Promise<{ errno: number; addrs?: string[] }> {
    const ip = parseIp(host);
    if (ip) return { errno: 0, addrs: [formatIp(ip.bytes)] };
    if (!this.#client.resolve) return { errno: Errno.NOTSUP };
    try {
      const addrs = (await this.#client.resolve(host)).map((a) => parseIp(a)).filter((a) => a !== null)
        .map((a) => formatIp(a.bytes));
      return addrs.length ? { errno: 0, addrs } : { errno: Errno.NOENT };
    } catch (error) {
      return { errno: errnoFor(error, "resolve") };
    }
  }

  /** The readiness of each interest now. */
  ready(interests: PollInterest[]): PollReady[] {
    const out: PollReady[] = [];
    interests.forEach(({ handle, interest }, index) => {
      const s = this.#sockets.get(handle);
      if (!s) return out.push({ index, errno: Errno.BADF, nbytes: 0, hup: false });
      const hup = s.eof || s.state === "failed";
      if (s.type === "dgram") {
        if (interest === "write") {
          out.push({ index, errno: s.state === "failed" ? s.error : 0, nbytes: SEND_SPACE, hup: false });
        } else if (s.datagrams.length) {
          out.push({ index, errno: 0, nbytes: s.datagrams[0].data.length, hup: false });
        } else if (s.state === "failed") out.push({ index, errno: s.error, nbytes: 0, hup: false });
        return;
      }
      if (interest === "read") {
        if (s.state === "listening" && s.accepts.length) {
          out.push({ index, errno: 0, nbytes: s.accepts.length, hup });
        } else if (s.buffered > 0) out.push({ index, errno: 0, nbytes: s.buffered, hup });
        else if (s.state === "failed") out.push({ index, errno: s.error, nbytes: 0, hup: true });
        else if (s.eof || s.readShut) out.push({ index, errno: 0, nbytes: 0, hup: true });
      } else {
        if (s.state === "connected" && !this.#sendBufferFull(s)) {
          out.push({ index, errno: 0, nbytes: SEND_SPACE, hup });
        } else if (s.state === "failed") out.push({ index, errno: s.error, nbytes: 0, hup: true });
      }
    });
    return out;
  }

  /**
   * Waits until at least one interest is ready or `timeoutMs` passes (null: no limit; 0: just look).
   * Resolves to the ready entries (empty on timeout).
   */
  async poll(interests: PollInterest[], timeoutMs: number | null): Promise<PollReady[]> {
    const deadline = timeoutMs === null ? null : Date.now() + timeoutMs;
    const socks = interests.map((i) => this.#sockets.get(i.handle)).filter((s) => s !== undefined);
    for (;;) {
      const ready = this.ready(interests);
      if (ready.length) return ready;
      const left = deadline === null ? null : deadline - Date.now();
      if (left !== null && left <= 0) return [];
      // A socket waiting to be writable behind a full send buffer has no event to wake it: look again soon.
      const full = interests.some(({ handle, interest }) => {
        const s = this.#sockets.get(handle);
        return interest === "write" && s?.state === "connected" && this.#sendBufferFull(s);
      });
      await this.#change(socks, full ? Math.min(left ?? 1, 1) : left);
    }
  }

  /** Resolves after `ms` milliseconds (the clock part of `poll_oneoff`). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }

  /** Resolves when any of `socks` changes, or after `timeoutMs` (null: no timer). */
  #change(socks: Sock[], timeoutMs: number | null): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        for (const s of socks) s.watchers.delete(done);
        resolve();
      };
      for (const s of socks) s.watchers.add(done);
      if (timeoutMs !== null) timer = setTimeout(done, Math.max(0, timeoutMs));
    });
  }

  // --- UDP ---------------------------------------------------------------------------------

  /** Opens the wasmnet UDP socket aimed at `target` once; resolves to an errno. */
  #openUdp(s: Sock, target: SocketAddress): Promise<number> {
    if (s.udpOpening) return s.udpOpening;
    s.udpTarget = target;
    s.state = "connecting";
    s.udpOpening = this.#client.connectUdp!(target.address, target.port).then(({ id, port }) => {
      if (s.state === "closed") {
        this.#client.close(id);
        return Errno.BADF;
      }
      s.id = id;
      s.state = "connected";
      s.local = { family: s.family, address: s.local?.address ?? unspecified(s.family).address, port };
      const push = (data: Uint8Array, from: SocketAddress) => {
        if (s.state === "closed") return;
        const queued = s.datagrams.reduce((n, d) => n + d.data.length, 0);
        if (queued + data.length > this.#maxBuffered) {
          s.dropped++;
          return;
        }
        s.datagrams.push({ data, from });
        s.notify();
      };
      this.#client.onData(id, (data) => push(data, s.udpTarget!));
      this.#client.onDataFrom?.(id, (data, addr, fromPort) => {
        const ip = parseIp(addr);
        push(data, ip ? { family: ip.family, address: formatIp(ip.bytes), port: fromPort } : s.udpTarget!);
      });
      this.#client.onClose(id, (error) => {
        if (s.state === "closed") return;
        s.state = "failed";
        s.error = error ? errnoFor(error, "stream") : Errno.NETDOWN;
        s.notify();
      });
      for (const { data, to } of s.udpOut.splice(0)) this.#sendDatagram(s, data, to);
      s.notify();
      return 0;
    }, (error) => {
      if (s.state === "closed") return Errno.BADF;
      s.state = "failed";
      s.error = errnoFor(error, "connect");
      s.udpOut = [];
      s.notify();
      return s.error;
    });
    return s.udpOpening;
  }

  /**
   * UDP connect: sets the default destination (and source filter for `recv` is not applied: wasmnet
   * delivers what its policy allows). The first destination also opens the wasmnet UDP socket, so this
   * waits for the server once.
   */
  async #connectUdp(s: Sock, address: string, port: number): Promise<number> {
    const ip = parseIp(address);
    if (!ip) return Errno.INVAL;
    if (ip.family !== s.family) return Errno.AFNOSUPPORT;
    if (port === 0) return Errno.INVAL;
    const target = { family: s.family, address: formatIp(ip.bytes), port };
    const errno = await this.#openUdp(s, target);
    if (errno) return errno;
    s.peer = target;
    return 0;
  }

  /**
   * UDP: sets (or with `address` null clears) the default peer without waiting; the wasmnet socket starts
   * opening towards it if it is not open yet (for WASI 0.2 `udp-socket.stream`).
   */
  setUdpPeer(handle: number, address: string | null, port: number): number {
    const s = this.#sockets.get(handle);
    if (!s) return Errno.BADF;
    if (s.type !== "dgram") return Errno.INVAL;
    if (address === null) {
      s.peer = undefined;
      return 0;
    }
    const ip = parseIp(address);
    if (!ip || port === 0) return Errno.INVAL;
    if (ip.family !== s.family) return Errno.AFNOSUPPORT;
    s.peer = { family: ip.family, address: formatIp(ip.bytes), port };
    this.#openUdp(s, s.peer);
    return 0;
  }

  #sendDatagram(s: Sock, data: Uint8Array, to: SocketAddress): boolean {
    const t = s.udpTarget!;
    if (to.address === t.address && to.port === t.port) return this.#client.send(s.id!, data);
    return this.#client.sendTo?.(s.id!, to.address, to.port, data) ?? false;
  }

  /**
   * Sends one datagram to `address:port` (or, with `address` null, to the connected peer: DESTADDRREQ
   * when there is none). The first datagram opens the wasmnet UDP socket; without `wait` it is queued
   * (at most 64 datagrams; more give AGAIN) and sent once the socket is open.
   */
  sendTo(
    handle: number,
    data: Uint8Array,
    address: string | null,
    port: number,
    wait: boolean,
  ): Promise<{ errno: number; n?: number }> | { errno: number; n?: number } {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    if (s.type !== "dgram") return address === null ? this.send(handle, data, wait) : { errno: Errno.ISCONN };
    if (s.state === "failed") return { errno: s.error || Errno.NETDOWN };
    let to: SocketAddress;
    if (address === null) {
      if (!s.peer) return { errno: Errno.DESTADDRREQ };
      to = s.peer;
    } else {
      const ip = parseIp(address);
      if (!ip) return { errno: Errno.INVAL };
      if (ip.family !== s.family) return { errno: Errno.AFNOSUPPORT };
      if (port === 0) return { errno: Errno.INVAL };
      to = { family: ip.family, address: formatIp(ip.bytes), port };
    }
    const copy = data.slice();
    if (s.state === "connected") {
      return this.#sendDatagram(s, copy, to) ? { errno: 0, n: data.length } : { errno: Errno.NETDOWN };
    }
    const opening = this.#openUdp(s, to);
    if (!wait) {
      if (s.udpOut.length >= 64) return { errno: Errno.AGAIN };
      s.udpOut.push({ data: copy, to });
      return { errno: 0, n: data.length };
    }
    return opening.then((errno) => {
      if (errno) return { errno };
      return this.#sendDatagram(s, copy, to) ? { errno: 0, n: data.length } : { errno: Errno.NETDOWN };
    });
  }

  /** Receives one datagram (cut to `max` bytes, `truncated` then set) with its source. */
  recvFrom(
    handle: number,
    max: number,
    peek: boolean,
    wait: boolean,
  ): Promise<RecvFromResult> | RecvFromResult {
    const s = this.#sockets.get(handle);
    if (!s) return { errno: Errno.BADF };
    const now = (): RecvFromResult | null => {
      const d = s.datagrams[0];
      if (d) {
        if (!peek) s.datagrams.shift();
        return { errno: 0, data: d.data.slice(0, max), from: d.from, truncated: d.data.length > max };
      }
      if (s.state === "failed") return { errno: s.error || Errno.NETDOWN };
      if (s.state === "closed") return { errno: Errno.BADF };
      if (s.readShut) return { errno: 0, data: new Uint8Array(0), from: s.peer ?? unspecified(s.family) };
      return null;
    };
    const r = now();
    if (r || !wait) return r ?? { errno: Errno.AGAIN };
    return (async () => {
      const timeout = this.#timeout(s, OPT_RECV_TIMEOUT);
      const deadline = timeout === null ? null : Date.now() + timeout;
      for (;;) {
        const r = now();
        if (r) return r;
        const left = deadline === null ? null : deadline - Date.now();
        if (left !== null && left <= 0) return { errno: Errno.AGAIN };
        await this.#change([s], left);
      }
    })();
  }

  /** Closes every socket (e.g. when the program exits). */
  closeAll(): void {
    for (const handle of [...this.#sockets.keys()]) this.close(handle);
  }
}

/** WASIX `sock_option` numbers the core itself honours. */
export const OPT_RECV_TIMEOUT = 19;
/** WASIX `sock_option`: accept timeout. */
export const OPT_ACCEPT_TIMEOUT = 22;
