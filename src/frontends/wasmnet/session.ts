/**
 * One WebSocket session speaking the wasmnet protocol. The session is the only owner of its socket table
 * and the only writer to it. It runs against a small {@link WebSocketPort}, so it can be tested without a
 * network; the server wires it to a real WebSocket.
 *
 * Ordering: events for one socket are sent in the order they happen (`connected` before any `data`,
 * `accepted` before any `data` on the new `conn_id`, every `data` before `closed`). Each event is sent in
 * the framing of the request that opened the socket (or, for a failed request, of that request).
 *
 * Longer than 500 lines: one class owns the socket table and is its only writer, so the request handlers
 * (TCP, listeners, v2 credit) share its private state; UDP and DNS are already apart (`session_udp.ts`),
 * and the next seam is a `session_tcp.ts` on the same hooks.
 *
 * @module
 */

import { eventForCode, toWasmnetError, WasmnetError } from "../../core/errors.ts";
import type { DecisionLog } from "../../core/log.ts";
import type { Policy } from "../../policy/mod.ts";
import {
  BINARY_HEADER_BYTES,
  decodeRequest,
  encodeEvent,
  type Event,
  frameDataInPlace,
  type Framing,
  type Request,
  SERVER_ID_BASE,
  type SocketId,
} from "@wasmnet/protocol";
import type { BandwidthBudget } from "../../core/limits.ts";
import type { SocketObserver } from "../../core/observer.ts";
import { type CoreSession, coreSessionOf, formatHostPort } from "../../core/core.ts";
import type { Resolver } from "../../core/sockets/resolver.ts";
import { ResolveRequests, type SessionHooks, UdpEntry } from "./session_udp.ts";
import {
  DEFAULT_MAX_QUEUED_WRITE_BYTES,
  DEFAULT_SESSION_QUEUED_WRITE_BYTES,
  DRAIN_FLUSH_MS,
  TcpStream,
  WriteBudget,
} from "../../core/sockets/tcp.ts";
import {
  DEFAULT_UPLOAD_WINDOW,
  flowRoom,
  flowViolation,
  PROTOCOL_V2,
  sendQuietly,
  SocketFlow,
} from "./flow.ts";
import { SocketTable, type TableEntry } from "./socket_table.ts";
import { DEFAULT_SEND_BUFFER_BYTES, SendBufferGate, type WebSocketPort } from "../../core/websocket.ts";

export type { WebSocketPort };

/**
 * Default bound of the WebSocket send buffer per session ({@link DEFAULT_SEND_BUFFER_BYTES}, 8 MiB): the
 * session stops reading its TCP sockets above it (see `SendBufferGate`).
 */
export const DEFAULT_MAX_BUFFERED_BYTES = DEFAULT_SEND_BUFFER_BYTES;

/**
 * Largest read of a JSON-framed socket. Its `data` event is the base64 of the read in a string: 64 KiB makes
 * an 87 KiB string, which V8 keeps in its regular heap; a 120 KiB read makes a 160 KiB string, which V8 puts
 * in its large-object space, freshly mapped pages for every message (measured: 4,400 page faults per 256 MiB
 * downloaded, against about 100).
 */
export const JSON_READ_BYTES = 64 * 1024;

/** Everything a session needs from the server. */
export interface SessionOptions {
  policy: Policy;
  /** The interface the server listens on: the default allowed bind address. */
  serverHost: string;
  /** The client's IP, for logs and limits. */
  clientIp: string;
  /** The bandwidth this client address shares with its other sessions (`max_bandwidth_mbps_per_ip`). */
  clientBudget?: BandwidthBudget;
  /** Told about every socket the core opens for this session (metrics; src/core/observer.ts). */
  observer?: SocketObserver;
  /** The server's signal: when it aborts, the session closes everything it owns. */
  signal?: AbortSignal;
  /** Session id for logs (default: random). */
  id?: string;
  resolver?: Resolver;
  log?: DecisionLog;
  /**
   * The socket core's handle for this session (the server passes one, with its observer and quota). When
   * set, it supplies the id, resolver and log, and `id`, `resolver` and `log` above are not used.
   */
  core?: CoreSession;
  /**
   * Bound of bytes waiting in the WebSocket's send buffer. Above it, the session stops reading its TCP
   * sockets until the buffer drains below half of it (default {@link DEFAULT_MAX_BUFFERED_BYTES}).
   */
  maxBufferedBytes?: number;
  /** Bound of bytes waiting to be written to one TCP socket (default 64 MiB); past it: `BUFFER_FULL`. */
  maxQueuedWriteBytes?: number;
  /** v1: bound of bytes waiting to be written across all of the session's TCP sockets (default 64 MiB). */
  maxSessionQueuedWriteBytes?: number;
  /** Protocol v2: per-socket credit windows both ways (docs/protocol.md, "Flow control (v2)"). Off: the original protocol. */
  flowControl?: boolean;
  /** v2: the send window granted to the client per TCP socket (default 4 MiB, at most `maxQueuedWriteBytes`). */
  uploadWindow?: number;
  /**
   * Reuse one read buffer per TCP socket (no garbage on the data path). Only when `port.send` copies the
   * message before returning, as Deno's WebSocket does; a port that keeps messages must leave it off.
   */
  reuseReadBuffers?: boolean;
}

interface TcpEntry extends TableEntry {
  kind: "tcp";
  framing: Framing;
  stream: TcpStream;
  /** Cancels the connect while it is in flight; dropped once it settles (an idle socket holds no signal). */
  dial?: AbortController;
  /** A `close` was asked for: it is answered by `closed` whatever else happens. */
  closeAsked: boolean;
  /** The entry already reported its end (error or denied for a failed connect). */
  settled: boolean;
  /** Protocol v2 credit windows (flow.ts); undefined on a v1 session. */
  flow?: SocketFlow;
}

interface ListenerEntry extends TableEntry {
  kind: "listener";
  framing: Framing;
  listener: Deno.TcpListener;
}

type Entry = TcpEntry | ListenerEntry | UdpEntry;

/** The wasmnet protocol on one WebSocket. Feed it messages with {@link Session.receive}. */
export class Session {
  /** Session id for logs. */
  readonly id: string;
  readonly #port: WebSocketPort;
  readonly #options: SessionOptions;
  readonly #table = new SocketTable<Entry>();
  readonly #controller = new AbortController();
  /** Every socket of the session is opened through it (src/core/core.ts). */
  readonly #core: CoreSession;
  /** Pauses reading TCP while the WebSocket's send buffer is over its bound. */
  readonly #room: SendBufferGate;
  /** Bytes waiting for the TCP peers, across every socket of the session (v1 uploads cannot be paused). */
  readonly #writeBudget: WriteBudget;
  #nextServerId = SERVER_ID_BASE;
  /** The first message's framing was reported to the port's observer (metrics count sessions by it). */
  #framed = false;
  /** UDP and DNS handlers (session_udp.ts) reach the session through these. */
  readonly #hooks: SessionHooks;
  readonly #resolves: ResolveRequests;

  /** Starts a session on `port`. The session closes when `options.signal` aborts or {@link close} is called. */
  constructor(port: WebSocketPort, options: SessionOptions) {
    this.#port = port;
    this.#options = options;
    this.#core = coreSessionOf("wasmnet", options, this.#controller.signal);
    this.id = this.#core.id;
    this.#room = new SendBufferGate(port, options.maxBufferedBytes);
    this.#writeBudget = new WriteBudget(
      options.maxSessionQueuedWriteBytes ?? DEFAULT_SESSION_QUEUED_WRITE_BYTES,
    );
    this.#hooks = {
      policy: options.policy,
      emit: (event, framing) => this.#emit(event, framing),
      reportError: (id, framing, err) => this.#reportError(id, framing, err),
      core: this.#core,
      hasRoom: () => this.#room.hasRoom,
    };
    this.#resolves = new ResolveRequests(this.#hooks, this.#controller.signal);
    options.signal?.addEventListener("abort", () => this.close(), {
      once: true,
      signal: this.#controller.signal,
    });
  }

  /** True once the session has closed. */
  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Number of open sockets and listeners (for tests and metrics). */
  get socketCount(): number {
    return this.#table.size;
  }

  /**
   * What socket `id` holds server-side (tests and metrics): payload bytes sent as `data`, the client's credit
   * left (v2), and bytes queued towards the network. Undefined if `id` is not an open TCP socket.
   */
  socketStats(id: SocketId): { sentBytes: number; credit: number; queuedBytes: number } | undefined {
    const entry = this.#table.get(id);
    if (entry?.kind !== "tcp") return undefined;
    const flow = entry.flow;
    return {
      sentBytes: flow?.sentBytes ?? 0,
      credit: flow?.download.available ?? Infinity,
      queuedBytes: entry.stream.queuedBytes,
    };
  }

  /** Bytes waiting in this session's WebSocket send buffer (shared by all its sockets). */
  get bufferedAmount(): number {
    return this.#port.bufferedAmount;
  }

  /** Handles one WebSocket message. Never throws: bad input is answered with `error`. */
  receive(message: string | Uint8Array): void {
    if (this.closed) return;
    const decoded = decodeRequest(message);
    if (!this.#framed) (this.#framed = true), this.#port.observer?.framed?.(decoded.framing);
    if (!decoded.ok) {
      this.#emit({ ev: "error", id: decoded.id, msg: decoded.msg, code: decoded.code }, decoded.framing);
      return;
    }
    try {
      this.#dispatch(decoded.request, decoded.framing);
    } catch (err) {
      this.#reportError(decoded.request.id, decoded.framing, toWasmnetError(err));
    }
  }

  /** Closes every socket and listener of the session. No events are sent (the WebSocket is gone). */
  close(): void {
    if (this.closed) return;
    this.#controller.abort();
    this.#room.close();
    for (const entry of this.#table.drain()) this.#destroy(entry);
    this.#core.close();
  }

  /**
   * How a drain ends the session: like {@link shutdown}, but every connected TCP socket first writes out
   * what the client already sent (for up to `flushMs`) and closes in order. Resolves once all have closed.
   */
  async finish(code = 1001, reason = "server shutting down", flushMs = DRAIN_FLUSH_MS): Promise<void> {
    if (this.closed) return;
    const flushing: Promise<void>[] = [];
    for (const entry of this.#table.drain()) {
      if (entry.kind !== "tcp") {
        this.#destroy(entry);
        continue;
      }
      entry.settled = true; // no events: the WebSocket is closing
      entry.dial?.abort();
      flushing.push(entry.stream.closeWithin(flushMs));
    }
    this.shutdown(code, reason);
    await Promise.all(flushing);
  }

  /** Closes the session and its WebSocket with `code` (1001 when the server shuts down). */
  shutdown(code = 1001, reason = "server shutting down"): void {
    this.close();
    try {
      this.#port.close(code, reason);
    } catch {
      // already closed
    }
  }

  #dispatch(request: Request, framing: Framing): void {
    switch (request.op) {
      case "connect":
        return this.#connect(request.id, request.addr, request.port, framing);
      case "bind":
        return this.#bind(request.id, request.addr, request.port, framing);
      case "listen":
        return this.#listen(request.id, framing);
      case "send":
        return this.#send(request.id, request.data, framing);
      case "close":
        return this.#close(request.id, framing);
      case "shutdown":
        return this.#shutdown(request.id);
      case "connect_tls":
        return this.#connect(request.id, request.addr, request.port, framing, true);
      case "connect_udp":
        return this.#connectUdp(request.id, request.addr, request.port, framing);
      case "send_to":
        return this.#udpEntry(request.id).sendTo(request.addr, request.port, request.data);
      case "resolve":
        return this.#resolves.start(request.id, request.name, framing);
      case "credit":
        return this.#credit(request.id, request.bytes);
      default:
        throw new WasmnetError("UNKNOWN_OP", `"${(request as Request).op}" is not supported by this server`);
    }
  }

  /** Checks that a new socket may be opened under `id`; throws the reason if not. */
  #admit(id: SocketId, kind: "tcp" | "listener" | "udp"): void {
    const limits = this.#options.policy.config.network;
    if (id >= SERVER_ID_BASE) {
      throw new WasmnetError(
        "BAD_REQUEST",
        `ids from ${SERVER_ID_BASE} up are reserved for the server's conn_ids`,
      );
    }
    if (this.#table.has(id)) throw new WasmnetError("DUPLICATE_ID", `id ${id} is already in use`);
    if (this.#table.size >= limits.max_connections) {
      throw new WasmnetError(
        "LIMIT_EXCEEDED",
        `this session already has ${limits.max_connections} open sockets (max_connections)`,
      );
    }
    if (kind !== "listener" && this.#table.connecting >= limits.max_pending_connects) {
      throw new WasmnetError(
        "LIMIT_EXCEEDED",
        `this session already has ${limits.max_pending_connects} connects in flight (max_pending_connects)`,
      );
    }
    if (kind === "listener" && this.#table.listeners >= limits.max_listeners) {
      throw new WasmnetError(
        "LIMIT_EXCEEDED",
        `this session already has ${limits.max_listeners} listeners (max_listeners)`,
      );
    }
  }

  #connect(id: SocketId, host: string, port: number, framing: Framing, tls = false): void {
    this.#admit(id, "tcp");
    const entry = this.#newTcpEntry(id, framing, true);
    entry.dial = new AbortController();
    const dial = this.#core.connect(tls ? "connect_tls" : "connect", host, port, {
      signal: entry.dial.signal,
      tls,
    });
    dial.finally(() => (entry.dial = undefined)).then(
      (conn) => {
        entry.connecting = false;
        if (this.#table.get(id) !== entry) return conn.close();
        this.#emit({ ev: "connected", id }, framing);
        entry.flow?.opened();
        entry.stream.attach(this.#core.limit(conn, (e) => entry.stream.destroy(e)));
      },
      (err) => {
        if (this.#table.get(id) !== entry) return;
        entry.settled = true;
        this.#table.remove(id, entry);
        entry.stream.destroy();
        this.#reportError(id, framing, toWasmnetError(err, "CONNECT_FAILED"));
        if (entry.closeAsked) this.#emit({ ev: "closed", id }, framing);
      },
    );
  }

  #newTcpEntry(id: SocketId, framing: Framing, connecting: boolean): TcpEntry {
    // Data path (issue 5): binary reads land after 9 bytes of headroom and go out as one view, header
    // written in place; v2 sockets read no more than the client's credit (flow.ts).
    const flow = this.#options.flowControl ? this.#newFlow(id, framing) : undefined;
    // Every field is in the literal, so entries share one shape (idle sockets stay small).
    const entry: TcpEntry = {
      kind: "tcp",
      connecting,
      framing,
      dial: undefined,
      closeAsked: false,
      settled: false,
      flow,
      stream: undefined as unknown as TcpStream,
    };
    entry.stream = new TcpStream(
      {
        onData: (data) => {
          flow?.sent(data.length);
          if (framing === "json") return this.#emit({ ev: "data", id, data }, framing);
          if (!this.closed) sendQuietly(this.#port, frameDataInPlace(id, data));
        },
        onEnd: (error) => this.#onStreamEnd(id, entry, error),
        onWritten: flow && ((bytes) => flow.written(bytes)),
      },
      flow ? () => flowRoom(flow, () => this.#waitForRoom()) : () => this.#waitForRoom(),
      this.#options.maxQueuedWriteBytes,
      {
        headroom: framing === "binary" ? BINARY_HEADER_BYTES : 0,
        readLimit: flow && (() => flow.readLimit()),
        maxReadBytes: framing === "json" ? JSON_READ_BYTES : undefined,
        reuseBuffer: this.#options.reuseReadBuffers,
        // v2 sockets are bounded by their window; v1 uploads share the session's budget.
        budget: flow ? undefined : this.#writeBudget,
      },
    );
    this.#table.add(id, entry);
    return entry;
  }

  #onStreamEnd(id: SocketId, entry: TcpEntry, error?: WasmnetError): void {
    entry.dial?.abort();
    entry.flow?.close();
    if (entry.settled || this.closed) return;
    entry.settled = true;
    this.#table.remove(id, entry);
    if (error) this.#reportError(id, entry.framing, error);
    this.#emit({ ev: "closed", id }, entry.framing);
  }

  #bind(id: SocketId, addr: string, port: number, framing: Framing): void {
    this.#admit(id, "listener");
    const listener = this.#core.bindListener(addr, port);
    const entry: ListenerEntry = { kind: "listener", connecting: false, framing, listener };
    this.#table.add(id, entry);
    this.#emit({ ev: "listening", id, port: listener.addr.port }, framing);
    this.#core.acceptLoop(listener, (conn) => this.#accepted(id, entry, conn)).catch((err) => {
      if (this.#table.remove(id, entry)) {
        this.#reportError(id, framing, toWasmnetError(err, "NETWORK_ERROR"));
        this.#emit({ ev: "closed", id }, framing);
      }
    });
  }

  #accepted(listenerId: SocketId, listener: ListenerEntry, conn: Deno.TcpConn): void {
    const remote = formatHostPort(conn.remoteAddr.hostname, conn.remoteAddr.port);
    const limit = this.#options.policy.config.network.max_connections;
    if (this.closed || this.#table.size >= limit) {
      conn.close();
      this.#core.decided({
        op: "accept",
        target: remote,
        decision: "deny",
        rule: "network.max_connections",
        reason: `session has ${limit} open sockets`,
      });
      return;
    }
    const connId = this.#nextServerId++;
    const entry = this.#newTcpEntry(connId, listener.framing, false);
    this.#emit({ ev: "accepted", id: listenerId, conn_id: connId, remote }, listener.framing);
    entry.flow?.opened();
    entry.stream.attach(this.#core.limit(conn, (e) => entry.stream.destroy(e)));
  }

  #listen(id: SocketId, _framing: Framing): void {
    const entry = this.#table.get(id);
    if (!entry) throw new WasmnetError("UNKNOWN_ID", `no socket with id ${id}`);
    if (entry.kind !== "listener") {
      throw new WasmnetError("BAD_REQUEST", `id ${id} is not a bound listener (bind first)`);
    }
    // Bound listeners already accept; the backlog is the runtime's (Deno does not expose it).
  }

  #send(id: SocketId, data: Uint8Array, _framing: Framing): void {
    const entry = this.#table.get(id);
    if (!entry) throw new WasmnetError("UNKNOWN_ID", `no socket with id ${id}`);
    if (entry.kind === "udp") return entry.send(data);
    if (entry.kind !== "tcp") {
      throw new WasmnetError("BAD_REQUEST", `id ${id} is a listener; send needs a connected socket`);
    }
    if (entry.closeAsked) throw new WasmnetError("SEND_FAILED", `socket ${id} is closing`);
    if (entry.flow && !entry.flow.received(data.length)) {
      return entry.stream.destroy(flowViolation(id, data.length, entry.flow));
    }
    const refused = entry.stream.write(data);
    if (refused?.code === "BUFFER_FULL") {
      // v1 has no way to pause the browser: drop this socket rather than hold unbounded bytes.
      entry.stream.destroy(refused);
    } else if (refused) {
      throw refused;
    }
  }

  /** v2 `credit`: the client grants more `data` on `id`. Grants for sockets already gone are ignored. */
  #credit(id: SocketId, bytes: number): void {
    const entry = this.#table.get(id);
    if (!this.#options.flowControl) {
      throw new WasmnetError(
        "UNKNOWN_OP",
        `"credit" needs protocol v2 (Sec-WebSocket-Protocol: ${PROTOCOL_V2})`,
      );
    }
    if (entry?.kind !== "tcp" || !entry.flow) return;
    if (!entry.flow.download.grant(bytes)) entry.stream.destroy(flowViolation(id, bytes, entry.flow));
  }

  #newFlow(id: SocketId, framing: Framing): SocketFlow {
    const window = Math.min(
      this.#options.uploadWindow ?? DEFAULT_UPLOAD_WINDOW,
      this.#options.maxQueuedWriteBytes ?? DEFAULT_MAX_QUEUED_WRITE_BYTES,
    );
    return new SocketFlow(window, (bytes) => this.#emit({ ev: "credit", id, bytes }, framing));
  }

  /** Half-close of a TCP socket: the peer reads end-of-stream after what was sent; `closed` when it closes too. */
  #shutdown(id: SocketId): void {
    const entry = this.#table.get(id);
    if (!entry) throw new WasmnetError("UNKNOWN_ID", `no socket with id ${id}`);
    if (entry.kind !== "tcp") {
      throw new WasmnetError(
        "BAD_REQUEST",
        `id ${id} is not a TCP socket; shutdown needs a connected socket`,
      );
    }
    entry.stream.shutdown();
  }

  #close(id: SocketId, _framing: Framing): void {
    const entry = this.#table.get(id);
    if (!entry) throw new WasmnetError("UNKNOWN_ID", `no socket with id ${id}`);
    if (entry.kind === "udp") return entry.close();
    if (entry.kind === "listener") {
      this.#table.remove(id, entry);
      this.#destroy(entry);
      this.#emit({ ev: "closed", id }, entry.framing);
      return;
    }
    if (entry.closeAsked) return; // one close is answered by one `closed`
    entry.closeAsked = true;
    if (entry.connecting && entry.stream.queuedBytes === 0) {
      // Nothing to deliver: cancel the dial now rather than hold a slot until it ends.
      entry.settled = true;
      this.#table.remove(id, entry);
      entry.dial?.abort();
      entry.stream.destroy();
      this.#emit({ ev: "closed", id }, entry.framing);
      return;
    }
    entry.stream.close(); // writes what was accepted (after the connect, if in flight), then `closed`
  }

  #destroy(entry: Entry): void {
    if (entry.kind === "udp") {
      entry.destroy();
    } else if (entry.kind === "listener") {
      try {
        entry.listener.close();
      } catch {
        // already closed
      }
    } else {
      entry.settled = true;
      entry.dial?.abort();
      entry.stream.destroy();
    }
  }

  #connectUdp(id: SocketId, host: string, port: number, framing: Framing): void {
    this.#admit(id, "udp");
    const entry: UdpEntry = new UdpEntry(id, framing, this.#hooks, () => this.#table.remove(id, entry));
    this.#table.add(id, entry);
    entry.open(host, port);
  }

  /** The UDP socket under `id`, for `send_to`. */
  #udpEntry(id: SocketId): UdpEntry {
    const entry = this.#table.get(id);
    if (!entry) throw new WasmnetError("UNKNOWN_ID", `no socket with id ${id}`);
    if (entry.kind !== "udp") {
      throw new WasmnetError("BAD_REQUEST", `id ${id} is not a UDP socket (connect_udp first)`);
    }
    return entry;
  }

  #reportError(id: SocketId, framing: Framing, err: WasmnetError): void {
    this.#emit({ ev: eventForCode(err.code), id, msg: err.message, code: err.code }, framing);
  }

  #emit(event: Event, framing: Framing): void {
    if (this.closed) return;
    try {
      this.#port.send(encodeEvent(event, framing, this.#options.flowControl));
    } catch {
      // The WebSocket closed under us; the server will close the session.
    }
  }

  /** Resolves when the WebSocket's send buffer is below the bound (undefined when it already is). */
  #waitForRoom(): Promise<void> | undefined {
    return this.#room.wait();
  }
}
