/**
 * `WasmnetClient`: real TCP (and UDP, TLS, DNS) sockets for browser code over one WebSocket to a wasmnet
 * server. Callback API kept exactly as the original client's, plus stream sockets via `openSocket`.
 *
 * The table of socket ids is `socket_table.ts`; the transports (WebSocket, WebTransport) `webtransport.ts`.
 * Still longer than 500 lines: the public calls and the dispatch of the server's events share the
 * class's private state (outbox, credit, the table); splitting them needs a port between the two first.
 *
 * @module
 */

import { WasmnetError } from "./errors.ts";
import {
  decodeBinary,
  decodeJson,
  encodeBinary,
  encodeJson,
  encodeSendInto,
  type Event,
  type Request,
  type SocketId,
  toBytes,
} from "./wire.ts";
import { type SocketChannel, WasmnetSocket, type WasmnetSocketOptions } from "./socket.ts";
import { WasmnetListener } from "./listener.ts";
import { WasmnetDatagramSocket, type WasmnetDatagramSocketOptions } from "./datagram.ts";
import { ClientFlow, PROTOCOL_V2 } from "./flow.ts";
import { ClientSocketTable, type Entry, type Kind, newEntry } from "./socket_table.ts";
import { type Transport, WebTransportSocket, type WebTransportStats } from "./webtransport.ts";
import { AutoSocket } from "./transport_auto.ts";
import type {
  AcceptCallback,
  CloseCallback,
  DataCallback,
  DataFromCallback,
  Listener,
  SendData,
  UdpSocket,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.ts";

/** Options of {@link WasmnetClient}. */
export interface WasmnetClientOptions {
  /** Use the binary framing instead of JSON text (less overhead for data). Default false. */
  binary?: boolean;
  /** The WebSocket constructor to use where there is no global one (Node 20: `import { WebSocket } from "ws"`). */
  WebSocket?: WebSocketConstructor;
  /** WebSocket subprotocols to offer. */
  protocols?: string | string[];
  /**
   * Offer protocol v2 (`wasmnet.v2`): per-socket flow control both ways. A stream socket then grants the
   * server credit only as its readable is read, so a page that stops reading stops the data at the server.
   * Servers without v2 answer with the original protocol, and the client falls back silently. Default false.
   */
  flowControl?: boolean;
  /** v2: the receive window granted per TCP socket at first, in bytes (default 1 MiB). */
  receiveWindow?: number;
  /**
   * How to reach the server (docs/webtransport.md): `"websocket"` (default), `"webtransport"` (the
   * wasmnet protocol over WebTransport, found at the server's `/.well-known/wasmnet`), or `"auto"`
   * (WebTransport where the browser has it and the server offers it, else the WebSocket, decided within
   * `webTransportTimeoutMs`). Both WebTransport choices use the binary framing.
   */
  transport?: Transport;
  /** `auto`: time WebTransport gets before the WebSocket is used, in ms (default 3000). */
  webTransportTimeoutMs?: number;
  /**
   * v2: the most a socket's receive window grows to (default 8 MiB). The client grows a window while it,
   * not the reader, limits the rate (receive-window autotuning, see `ClientFlow`); this bounds what one
   * socket can make the page hold for a reader that stops.
   */
  maxReceiveWindow?: number;
  /**
   * Build every binary `send` in one reused frame buffer instead of a fresh one per message. Safe only where
   * `WebSocket.send` copies the message before it returns, as browsers', Deno's and Node's global WebSocket
   * do; the `ws` package may keep the buffer it was given. Default: on with the global WebSocket, off when
   * `WebSocket` is passed in.
   */
  reuseSendBuffer?: boolean;
  /**
   * Largest payload of one `send` message; longer writes are split (servers cap message size, 1 MiB by
   * default, and base64 adds a third). Default 64 KiB.
   */
  maxSendBytes?: number;
}

/** `host:port` as the server writes a peer (`[v6]:port` for IPv6) split in two. */
function splitHostPort(remote: string): { host: string; port: number } {
  const at = remote.lastIndexOf(":");
  const host = remote.slice(0, at);
  return {
    host: host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host,
    port: Number(remote.slice(at + 1)),
  };
}

/** Rethrows outside the dispatch loop, so a throwing callback is reported but does not stop other sockets. */
function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/**
 * A connection to a wasmnet server that hands out TCP sockets by id.
 *
 * ```js
 * const client = new WasmnetClient("ws://localhost:9000");
 * await client.ready();
 * const id = await client.connect("example.com", 80);
 * client.onData(id, (data) => console.log(new TextDecoder().decode(data)));
 * client.send(id, "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
 * ```
 */
export class WasmnetClient {
  /** The server's WebSocket URL. */
  readonly url: string;
  /** True when requests use the binary framing. */
  readonly binary: boolean;
  /** `send` is done with what it is given when it returns (encoded, copied or queued as a copy). */
  readonly copiesOnSend = true;
  #ws: WebSocketLike;
  /** Every socket id of this client and its state (socket_table.ts). */
  readonly #table = new ClientSocketTable();
  #outbox: (string | Uint8Array<ArrayBuffer>)[] = [];
  #outboxBytes = 0;
  #ready: Promise<void>;
  #readyResolve!: () => void;
  #readyReject!: (error: WasmnetError) => void;
  #opened = false;
  #gone?: WasmnetError;
  #goneWaiters: (() => void)[] = [];
  #wsClosed = false;
  #maxSendBytes: number;
  #lastErrorMessage = "";
  /** Flow control asked for; {@link #v2} says whether the server agreed (known once open). */
  #flowControl: boolean;
  #receiveWindow: number | undefined;
  #maxReceiveWindow: number | undefined;
  #v2 = false;
  /** Shortest connect-to-`connected` time seen (ms): the round trip autotuning measures against. */
  #rttMs: number | undefined;
  #reuseFrames: boolean;
  /** The one frame buffer binary sends are built in when {@link #reuseFrames}. */
  #frame: Uint8Array<ArrayBuffer> = new Uint8Array(0);

  /**
   * Opens the WebSocket to `url` at once; await {@link ready} before relying on it (requests made earlier
   * are queued and sent when it opens).
   */
  constructor(url: string | URL, options: WasmnetClientOptions = {}) {
    this.url = String(url);
    const transport = options.transport ?? "websocket";
    this.binary = transport !== "websocket" || (options.binary ?? false);
    this.#maxSendBytes = Math.max(1, options.maxSendBytes ?? 64 * 1024);
    const Ctor = options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) {
      throw new TypeError(
        "wasmnet: no global WebSocket here; pass one: new WasmnetClient(url, { WebSocket })",
      );
    }
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.#ready.catch(() => {}); // a caller who never asks for ready() must not get an unhandled rejection
    this.#flowControl = options.flowControl ?? false;
    this.#receiveWindow = options.receiveWindow;
    this.#maxReceiveWindow = options.maxReceiveWindow;
    this.#reuseFrames = options.reuseSendBuffer ?? options.WebSocket === undefined;
    const protocols = this.#flowControl
      ? [...[options.protocols ?? []].flat(), PROTOCOL_V2]
      : options.protocols;
    if (transport === "webtransport") {
      this.#ws = new WebTransportSocket(this.url, { v2: this.#flowControl });
    } else if (transport === "auto") {
      this.#ws = new AutoSocket(this.url, {
        v2: this.#flowControl,
        protocols: options.protocols,
        WebSocket: Ctor,
        timeoutMs: options.webTransportTimeoutMs,
      });
    } else {
      this.#ws = protocols === undefined ? new Ctor(this.url) : new Ctor(this.url, protocols);
    }
    this.#ws.binaryType = "arraybuffer";
    const on = (type: string, fn: (event: Record<string, unknown>) => void) =>
      this.#ws.addEventListener(type, fn);
    on("open", () => this.#onOpen());
    on("message", (event) => this.#onMessage(event.data));
    on("error", (event) => {
      const msg = event.message ?? (event.error as Error | undefined)?.message;
      if (typeof msg === "string") this.#lastErrorMessage = msg;
    });
    on(
      "close",
      (event) => this.#onWsClose(Number(event.code ?? 0), String(event.reason ?? "")),
    );
  }

  /** Resolves once the WebSocket is open; rejects with a {@link WasmnetError} saying why if it never opens. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The transport in use once open: `"webtransport"` or `"websocket"`. */
  get transport(): "webtransport" | "websocket" | undefined {
    const ws = this.#ws;
    if (ws instanceof AutoSocket) return ws.chosen;
    return ws instanceof WebTransportSocket ? "webtransport" : "websocket";
  }

  /** Over WebTransport: streams opened, datagrams each way, streams idle in the pool (else undefined). */
  get webTransportStats(): WebTransportStats | undefined {
    const ws = this.#ws;
    if (ws instanceof AutoSocket) return ws.stats;
    return ws instanceof WebTransportSocket ? ws.stats : undefined;
  }

  /** True while the WebSocket is open. */
  get connected(): boolean {
    return this.#opened && this.#gone === undefined;
  }

  /**
   * Opens a TCP connection from the server to `host:port`; resolves to its socket id once connected.
   * Rejects with a {@link WasmnetError} whose `kind` is `"denied"` (policy) or `"failed"`, with the server's
   * message.
   */
  async connect(host: string, port: number): Promise<SocketId> {
    const { id } = await this.#open("tcp", {
      op: "connect",
      id: 0,
      addr: host,
      port,
    }, `connect to ${host}:${port}`);
    return id;
  }

  /** Like {@link connect}, but the server also does a TLS handshake with `host`; the page sees plaintext. */
  async connectTls(host: string, port: number): Promise<SocketId> {
    const what = `TLS connect to ${host}:${port}`;
    const { id } = await this.#open("tcp", {
      op: "connect_tls",
      id: 0,
      addr: host,
      port,
    }, what);
    return id;
  }

  /**
   * Starts a TCP connection to `host:port` (`{ tls: true }`: with TLS to `host`) and returns its socket id at
   * once, without waiting for `connected`. The socket is usable at once: {@link send} on it right away and
   * the bytes go in the same flight as the connect (the server writes them, in order, once the connection is
   * up), so a request's first response byte comes one round trip after it is sent. A refusal reaches the
   * program as the socket's close error ({@link onClose} gets a {@link WasmnetError}, kind `"denied"` or
   * `"failed"`), and `send` returns false from then on. With v2 the socket's windows need no round trip:
   * 64 KiB of send credit from the start, and this client's receive window granted with the connect.
   */
  connectNow(host: string, port: number, options: { tls?: boolean } = {}): SocketId {
    const id = this.#table.allocId();
    const entry = this.#newEntry(id, "tcp");
    const what = `${options.tls ? "TLS connect" : "connect"} to ${host}:${port}`;
    if (this.#gone) {
      // Keep the id's close error, so `onClose(id)` reports why, as for any refused connect.
      this.#table.delete(id);
      entry.state = "closed";
      entry.error = this.#disconnectedError(`${what} failed`);
      this.#table.keepUnread(entry);
      return id;
    }
    const op = options.tls ? "connect_tls" : "connect";
    this.#startOpen(entry, { op, id, addr: host, port }, what).catch(() => {}); // reported through onClose
    return id;
  }

  /**
   * Binds a TCP listener on the server at `addr:port` (port 0 picks one) and starts accepting; resolves to
   * `{ id, port }`. Inbound connections arrive through {@link onAccept}.
   */
  async bind(addr: string, port: number): Promise<Listener> {
    const { id, event } = await this.#open("listener", {
      op: "bind",
      id: 0,
      addr,
      port,
    }, `bind ${addr}:${port}`);
    return { id, port: (event as { port: number }).port };
  }

  /** Kept for the original API: `bind` already accepts; this only passes a backlog hint to the server. */
  listen(id: SocketId, backlog?: number): void {
    this.#send(
      backlog === undefined ? { op: "listen", id } : { op: "listen", id, backlog },
    );
  }

  /** Opens a UDP socket aimed at `host:port`; resolves to `{ id, port }` with the server's local port. */
  async connectUdp(host: string, port: number): Promise<UdpSocket> {
    const what = `UDP connect to ${host}:${port}`;
    const { id, event } = await this.#open("udp", {
      op: "connect_udp",
      id: 0,
      addr: host,
      port,
    }, what);
    return { id, port: (event as { port: number }).port };
  }

  /** Looks `name` up on the server; resolves to the addresses its policy would allow. */
  async resolve(name: string): Promise<string[]> {
    const { event } = await this.#open("resolve", {
      op: "resolve",
      id: 0,
      name,
    }, `resolve ${name}`);
    return (event as { addrs: string[] }).addrs;
  }

  /**
   * Writes bytes (strings as UTF-8) to socket `id`; on a UDP socket, sends one datagram to its target.
   * Data sent before `connected` is queued by the server; long writes go as several messages of at most
   * `maxSendBytes`. Returns false when the socket is not open.
   */
  send(id: SocketId, data: SendData): boolean {
    const entry = this.#table.get(id);
    if (!entry || entry.state === "closing" || entry.kind === "listener" || entry.writeShut) {
      return false;
    }
    const bytes = toBytes(data);
    if (entry.flow) return this.#sendWithCredit(entry, entry.flow.take(bytes));
    // A datagram is never split; a TCP stream may be.
    if (bytes.length <= this.#maxSendBytes || entry.kind !== "tcp") {
      return this.#send({ op: "send", id, data: bytes });
    }
    for (let off = 0; off < bytes.length; off += this.#maxSendBytes) {
      if (!this.#send({ op: "send", id, data: bytes.subarray(off, off + this.#maxSendBytes) })) return false;
    }
    return true;
  }

  /** Sends one datagram from UDP socket `id` to `addr:port`. Returns false when the socket is not open. */
  sendTo(id: SocketId, addr: string, port: number, data: SendData): boolean {
    const entry = this.#table.get(id);
    if (!entry || entry.state === "closing" || entry.kind !== "udp") {
      return false;
    }
    return this.#send({ op: "send_to", id, addr, port, data: toBytes(data) });
  }

  /**
   * Sets the handler for bytes received on socket `id`, replacing any earlier one. Bytes that arrived
   * before there was a handler are held and delivered to it first, in order.
   */
  onData(id: SocketId, callback: DataCallback): void {
    const entry = this.#table.find(id);
    if (!entry) return;
    entry.onData = callback;
    if (entry.held.length || entry.heldFrom.length) this.#scheduleFlush(entry);
  }

  /** Sets the handler for datagrams on UDP socket `id`, with their source; held ones are delivered first. */
  onDataFrom(id: SocketId, callback: DataFromCallback): void {
    const entry = this.#table.find(id);
    if (!entry) return;
    entry.onDataFrom = callback;
    if (entry.heldFrom.length) this.#scheduleFlush(entry);
  }

  /** Sets the handler for inbound connections on listener `id`; connections accepted earlier are delivered first. */
  onAccept(id: SocketId, callback: AcceptCallback): void {
    const entry = this.#table.get(id);
    if (!entry) return;
    entry.onAccept = callback;
    if (entry.heldAccepts.length) this.#scheduleFlush(entry);
  }

  /**
   * Adds a callback run once when socket `id` closes: the peer closed, `close(id)` finished, the server
   * reported an error, or the WebSocket dropped (then `error.kind` is `"disconnected"`). Runs soon if the
   * socket is already closed.
   */
  onClose(id: SocketId, callback: CloseCallback): void {
    const entry = this.#table.get(id);
    if (entry) {
      entry.onClose.push(callback);
      return;
    }
    const error = this.#table.unread(id)?.error;
    queueMicrotask(() => this.#call(() => callback(error)));
  }

  /**
   * Half-closes TCP socket `id`: no more sends; once what was sent is written, the peer reads end-of-stream,
   * and data from the peer keeps arriving until it closes too. Needs a server that has it (this one); the
   * original protocol has no half-close, so this returns false (and sends nothing) unless the server
   * accepted protocol v2, which is how the client knows. True if the request was sent.
   */
  shutdown(id: SocketId): boolean {
    const entry = this.#table.get(id);
    if (!entry || entry.kind !== "tcp" || !this.#v2 || entry.state === "closing") return false;
    if (entry.writeShut) return true;
    entry.writeShut = true;
    return this.#sendShutdownIfFlushed(entry);
  }

  /**
   * Sends a `shutdown` asked for on `entry` once no bytes of it still wait for credit (they go first; a
   * `credit` event calls this again). False only if the WebSocket is gone.
   */
  #sendShutdownIfFlushed(entry: Entry): boolean {
    if (!entry.writeShut || entry.shutdownSent || (entry.flow?.queuedBytes ?? 0) > 0) return true;
    entry.shutdownSent = true;
    return this.#send({ op: "shutdown", id: entry.id });
  }

  /** Closes socket or listener `id`; resolves once the server confirms (or the WebSocket is gone). Never rejects. */
  close(id: SocketId): Promise<void> {
    const entry = this.#table.get(id);
    if (!entry) return Promise.resolve();
    const done = new Promise<void>((resolve) => entry.closeWaiters.push(resolve));
    const pending = entry.pending;
    if (pending) {
      // Closed before it opened: the open's promise settles now; the server answers the close later.
      entry.pending = undefined;
      pending.reject(new WasmnetError(`wasmnet: ${pending.what} failed: closed before it opened`, "closed"));
    }
    if (entry.state !== "closing") {
      entry.state = "closing";
      this.#send({ op: "close", id });
    }
    return done;
  }

  /**
   * Opens a UDP socket aimed at `host:port` as streams of datagrams (one chunk = one datagram, with its
   * source when read; `{ data, remoteAddress, remotePort }` sends to another destination). See datagram.ts.
   */
  openDatagramSocket(
    host: string,
    port: number,
    options: WasmnetDatagramSocketOptions = {},
  ): WasmnetDatagramSocket {
    const buffered = () => this.#ws.bufferedAmount + this.#outboxBytes;
    return new WasmnetDatagramSocket(this, host, port, options, buffered);
  }

  /**
   * Opens a TCP connection as a stream socket, in the shape of the web's TCP socket APIs: `opened`,
   * `closed`, `readable`, `writable`, `close()`. Backpressure flows through both streams.
   */
  openSocket(
    host: string,
    port: number,
    options: WasmnetSocketOptions = {},
  ): WasmnetSocket {
    const id = this.#table.allocId();
    const op = options.tls ? "connect_tls" : "connect";
    const entry = this.#newEntry(id, "tcp");
    const socket = new WasmnetSocket(host, port, id, options, this.#channelFor(entry));
    this.#startOpen(
      entry,
      { op, id, addr: host, port },
      `${options.tls ? "TLS connect" : "connect"} to ${host}:${port}`,
    )
      .then(
        () => entry.sink?.opened(),
        (error: WasmnetError) => entry.sink?.closed(error),
      );
    return socket;
  }

  /**
   * Binds a TCP listener on the server at `addr:port` (port 0 picks one) and hands out its inbound
   * connections as stream sockets, already open: `for await (const socket of listener)`, `accept()`, or the
   * `accepted` stream. `options` apply to every accepted socket (`tls` does not).
   */
  async openListener(
    addr: string,
    port: number,
    options: WasmnetSocketOptions = {},
  ): Promise<WasmnetListener> {
    const bound = await this.bind(addr, port);
    let accepted!: ReadableStreamDefaultController<WasmnetSocket>;
    const stream = new ReadableStream<WasmnetSocket>({ start: (c) => void (accepted = c) });
    // Set before any later message is handled (this runs in the microtask after `listening`), so each
    // accepted connection gets its socket (and its sink) synchronously, before any of its bytes arrive.
    this.onAccept(bound.id, (connId, remote) => {
      const entry = this.#table.get(connId);
      if (!entry) return;
      const { host, port } = splitHostPort(remote);
      const socket = new WasmnetSocket(host, port, connId, options, this.#channelFor(entry));
      entry.sink!.opened();
      accepted.enqueue(socket);
    });
    const closed = new Promise<void>((resolve, reject) => {
      this.onClose(bound.id, (error) => {
        if (error) {
          accepted.error(error);
          reject(error);
        } else {
          accepted.close();
          resolve();
        }
      });
    });
    return new WasmnetListener(bound.id, bound.port, stream, closed, () => this.close(bound.id));
  }

  /**
   * Bytes sent and not yet handed to the network: the WebSocket's buffer plus requests waiting for it to
   * open, and with `id`, that socket's v2 sends waiting for credit. The callback API has no backpressure of
   * its own: a page that sends a lot pauses while this is high (the streams API's writable does that itself).
   */
  bufferedAmount(id?: SocketId): number {
    const queued = id === undefined ? 0 : this.#table.get(id)?.flow?.queuedBytes ?? 0;
    return this.#ws.bufferedAmount + this.#outboxBytes + queued;
  }

  /**
   * Closes the WebSocket. Every pending promise rejects and every open socket gets its close callback
   * with a `"disconnected"` error. Resolves once the WebSocket has closed.
   */
  disconnect(): Promise<void> {
    if (this.#wsClosed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#goneWaiters.push(resolve));
    // Settle everything now: after disconnect() nothing the server still sends is delivered.
    if (!this.#gone) this.#teardown(`disconnect() was called on the connection to ${this.url}`);
    if (this.#ws.readyState !== 2 && this.#ws.readyState !== 3) this.#ws.close(1000, "client disconnect");
    return done;
  }

  // --- internals -------------------------------------------------------------------------------

  /** How a stream socket reaches the client: one per TCP entry (outbound or accepted). */
  #channelFor(entry: Entry): SocketChannel {
    const id = entry.id;
    return {
      attach: (sink) => {
        entry.sink = sink;
      },
      send: (data) => this.send(id, data),
      bufferedAmount: () => this.bufferedAmount(id),
      close: () => this.close(id),
      shutdown: () => this.shutdown(id),
      consumed: (bytes) => this.#consumed(entry, bytes),
    };
  }

  #newEntry(id: SocketId, kind: Kind): Entry {
    const entry = newEntry(id, kind);
    if (kind === "tcp" && this.#flowControl && (!this.#opened || this.#v2)) {
      entry.flow = new ClientFlow({
        window: this.#receiveWindow,
        maxWindow: this.#maxReceiveWindow,
        rttMs: () => this.#rttMs,
      });
    }
    this.#table.add(entry);
    return entry;
  }

  async #open(
    kind: Kind,
    request: Request,
    what: string,
  ): Promise<{ id: SocketId; event: Event }> {
    const id = this.#table.allocId();
    const entry = this.#newEntry(id, kind);
    const event = await this.#startOpen(
      entry,
      { ...request, id } as Request,
      what,
    );
    return { id, event };
  }

  #startOpen(entry: Entry, request: Request, what: string): Promise<Event> {
    const result = new Promise<Event>((resolve, reject) => {
      entry.pending = { resolve, reject, what };
    });
    if (this.#gone) {
      this.#table.delete(entry.id);
      entry.pending = undefined;
      return Promise.reject(this.#disconnectedError(`${what} failed`));
    }
    this.#send(request);
    if (entry.kind === "tcp") {
      entry.connectSentAt = performance.now();
      this.#grantOpening(entry); // v2: in the same flight as the connect (the server takes credit at once)
    }
    return result;
  }

  /** v2: grants the server our receive window beyond the initial one, once, as early as v2 is known. */
  #grantOpening(entry: Entry): void {
    if (!entry.flow || entry.openingGranted || !this.#v2) return;
    entry.openingGranted = true;
    this.#grant(entry, entry.flow.opening());
  }

  #send(request: Request): boolean {
    if (this.#gone) return false;
    if (request.op === "send" && this.binary && this.#opened && this.#reuseFrames) {
      // One frame buffer for every data message: the WebSocket copies it before send() returns.
      const frame = encodeSendInto(this.#frame, request.id, request.data);
      if (frame.buffer !== this.#frame.buffer) this.#frame = new Uint8Array(frame.buffer);
      this.#ws.send(frame);
      return true;
    }
    const message = this.binary ? encodeBinary(request) : encodeJson(request);
    if (!this.#opened) {
      this.#outbox.push(message);
      this.#outboxBytes += typeof message === "string" ? message.length : message.byteLength;
      return true;
    }
    this.#ws.send(message);
    return true;
  }

  #onOpen(): void {
    if (this.#gone) return;
    this.#opened = true;
    this.#v2 = this.#flowControl && this.#ws.protocol === PROTOCOL_V2;
    // Requests made before the open go first (connects before the data and grants that follow them).
    for (const message of this.#outbox) this.#ws.send(message);
    this.#outbox = [];
    this.#outboxBytes = 0;
    for (const entry of this.#table.values()) {
      if (this.#v2) this.#grantOpening(entry);
      else if (entry.flow) {
        // The server speaks the original protocol: no credit; what waited for credit goes now.
        const queued = entry.flow.flushAll();
        entry.flow = undefined;
        this.#sendWithCredit(entry, queued);
      }
    }
    this.#readyResolve();
  }

  #onMessage(data: unknown): void {
    if (this.#gone) return;
    let event: Event;
    try {
      if (typeof data === "string") event = decodeJson(data);
      else if (data instanceof ArrayBuffer) {
        event = decodeBinary(new Uint8Array(data), { v2: this.#v2 });
      } else if (ArrayBuffer.isView(data)) {
        event = decodeBinary(
          new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          { v2: this.#v2 },
        );
      } else return;
    } catch (error) {
      console.error(
        "wasmnet: ignoring a message the client cannot read:",
        error,
      );
      return;
    }
    this.#dispatch(event);
  }

  #dispatch(event: Event): void {
    if (event.ev === "accepted") {
      return this.#accepted(event.id, event.conn_id, event.remote);
    }
    const entry = this.#table.get(event.id);
    if (!entry) return;
    switch (event.ev) {
      case "connected":
      case "listening":
      case "udp_bound":
      case "resolved": {
        const pending = entry.pending;
        entry.pending = undefined;
        entry.established = true;
        if (event.ev === "resolved") this.#table.delete(entry.id);
        else if (entry.state === "opening") entry.state = "open";
        if (event.ev === "connected") {
          if (entry.connectSentAt !== undefined) {
            const rtt = performance.now() - entry.connectSentAt;
            this.#rttMs = this.#rttMs === undefined ? rtt : Math.min(this.#rttMs, rtt);
          }
          this.#grantOpening(entry);
        }
        pending?.resolve(event);
        return;
      }
      case "credit":
        if (!entry.flow) return;
        this.#sendWithCredit(entry, entry.flow.granted(event.bytes));
        this.#sendShutdownIfFlushed(entry);
        return;
      case "data":
        return this.#inbound(entry, event.data);
      case "data_from":
        if (entry.onDataFrom && !entry.heldFrom.length) {
          this.#call(() => entry.onDataFrom!(event.data, event.addr, event.port));
        } else {
          entry.heldFrom.push([event.data, event.addr, event.port]);
          if (entry.onDataFrom || entry.onData) this.#scheduleFlush(entry);
        }
        return;
      case "error":
      case "denied": {
        const kind = event.ev === "denied" ? "denied" : "failed";
        const pending = entry.pending;
        const what = pending?.what ?? `socket ${entry.id}`;
        const error = new WasmnetError(
          `wasmnet: ${what} ${deniedBy(kind, event.code)}: ${event.msg}`,
          kind,
          event.code === undefined
            ? { serverMessage: event.msg }
            : { serverMessage: event.msg, code: event.code },
        );
        if (pending || !entry.established) {
          // A refused open releases the id at once; no `closed` follows.
          entry.pending = undefined;
          this.#table.delete(entry.id);
          pending?.reject(error);
          this.#finishClose(entry, error);
        } else {
          entry.error = error;
        }
        return;
      }
      case "closed":
        this.#table.delete(entry.id);
        this.#finishClose(entry, entry.error);
        return;
    }
  }

  #accepted(listenerId: SocketId, connId: SocketId, remote: string): void {
    const listener = this.#table.get(listenerId);
    if (!listener || listener.state !== "open") {
      // Nobody can ever read this connection: refuse it rather than leak it on the server.
      this.#send({ op: "close", id: connId });
      return;
    }
    const conn = this.#newEntry(connId, "tcp");
    conn.state = "open";
    conn.established = true;
    this.#grantOpening(conn);
    if (listener.onAccept && !listener.heldAccepts.length) {
      this.#call(() => listener.onAccept!(connId, remote));
    } else {
      listener.heldAccepts.push([connId, remote]);
      if (listener.onAccept) this.#scheduleFlush(listener);
    }
  }

  /** The one place inbound stream bytes enter the client (flow control will count them here). */
  #inbound(entry: Entry, data: Uint8Array): void {
    if (entry.sink) return entry.sink.data(data); // the stream grants as it is read (#consumed)
    if (entry.flow) this.#consumed(entry, data.length); // callbacks take everything at once
    if (entry.onData && !entry.held.length && !entry.flushScheduled) {
      this.#call(() => entry.onData!(data));
      return;
    }
    entry.held.push(data);
    if (entry.onData) this.#scheduleFlush(entry);
  }

  /** v2: sends chunks the socket's credit allows, each split to `maxSendBytes`. */
  #sendWithCredit(entry: Entry, chunks: Uint8Array[]): boolean {
    for (const chunk of chunks) {
      for (let off = 0; off < chunk.length; off += this.#maxSendBytes) {
        if (!this.#send({ op: "send", id: entry.id, data: chunk.subarray(off, off + this.#maxSendBytes) })) {
          return false;
        }
      }
    }
    return true;
  }

  /** v2: the page consumed `bytes` of `entry`'s data; grants them back to the server in batches. */
  #consumed(entry: Entry, bytes: number): void {
    if (entry.flow && entry.state !== "closed") this.#grant(entry, entry.flow.consumed(bytes));
  }

  #grant(entry: Entry, bytes: number): void {
    if (bytes > 0 && this.#v2) this.#send({ op: "credit", id: entry.id, bytes });
  }

  #scheduleFlush(entry: Entry): void {
    if (entry.flushScheduled) return;
    entry.flushScheduled = true;
    queueMicrotask(() => {
      entry.flushScheduled = false;
      while (entry.onData && entry.held.length) {
        const data = entry.held.shift()!;
        this.#call(() => entry.onData!(data));
      }
      while ((entry.onDataFrom || entry.onData) && entry.heldFrom.length) {
        const [data, addr, port] = entry.heldFrom.shift()!;
        if (entry.onDataFrom) {
          this.#call(() => entry.onDataFrom!(data, addr, port));
        } else this.#call(() => entry.onData!(data));
      }
      while (entry.onAccept && entry.heldAccepts.length) {
        const [connId, remote] = entry.heldAccepts.shift()!;
        this.#call(() => entry.onAccept!(connId, remote));
      }
      if (
        entry.state === "closed" && !entry.held.length && !entry.heldFrom.length
      ) this.#table.forgetUnread(entry.id);
    });
  }

  /** Marks `entry` closed, runs its close callbacks after any held data, and settles close() promises. */
  #finishClose(entry: Entry, error?: WasmnetError): void {
    entry.state = "closed";
    if (error && !entry.error) entry.error = error;
    if (entry.held.length || entry.heldFrom.length) this.#table.keepUnread(entry);
    entry.sink?.closed(error);
    const callbacks = entry.onClose;
    entry.onClose = [];
    const waiters = entry.closeWaiters;
    entry.closeWaiters = [];
    // A microtask keeps close after data that is waiting in an already scheduled flush.
    queueMicrotask(() => {
      for (const callback of callbacks) this.#call(() => callback(error));
      for (const resolve of waiters) resolve();
    });
  }

  #disconnectedError(what: string): WasmnetError {
    const gone = this.#gone;
    const why = gone?.serverMessage ?? "the WebSocket is closed";
    return new WasmnetError(`wasmnet: ${what}: ${why}`, "disconnected", {
      serverMessage: why,
    });
  }

  #onWsClose(code: number, reason: string): void {
    this.#wsClosed = true;
    if (!this.#gone) {
      const detail = [`code ${code}`, reason && `reason "${reason}"`, this.#lastErrorMessage]
        .filter(Boolean).join(", ");
      this.#teardown(
        this.#opened
          ? `connection to ${this.url} closed (${detail})`
          : `cannot reach ${this.url} (${detail})`,
      );
    }
    const waiters = this.#goneWaiters;
    this.#goneWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Ends the client for good: rejects `ready()` and every pending promise, closes every socket. */
  #teardown(why: string): void {
    this.#gone = new WasmnetError(`wasmnet: ${why}`, "disconnected", { serverMessage: why });
    this.#outbox = [];
    this.#outboxBytes = 0;
    if (!this.#opened) this.#readyReject(this.#gone);
    const entries = this.#table.drain();
    for (const entry of entries) {
      const pending = entry.pending;
      entry.pending = undefined;
      const error = this.#disconnectedError(pending ? `${pending.what} failed` : `socket ${entry.id} lost`);
      pending?.reject(error);
      this.#finishClose(entry, error);
    }
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      rethrowLater(error);
    }
  }
}

/**
 * How a failure reads: a policy refusal, a refusal by the server's Deno permission sandbox
 * (`PERMISSION_DENIED`: not the policy, and the server's message says which sandbox), or another failure.
 */
function deniedBy(kind: "denied" | "failed", code: string | undefined): string {
  if (kind === "failed") return "failed";
  return code === "PERMISSION_DENIED" ? "denied" : "denied by policy";
}
