/**
 * One WebSocket speaking Wisp (v1, or v2 with INFO/extensions), on the same policy, limits and decision log as
 * wasmnet's own protocol: every CONNECT goes through the socket core (op `wisp` / `wisp_udp`), the
 * `[network]` limits count Wisp streams like wasmnet sockets, and refusals become precise close reasons
 * ({@link closeReasonFor}).
 *
 * Bounds, both ways:
 * - client → TCP: per-stream credit ({@link InboundCredit}, `bufferPackets` packets announced with CONTINUE)
 *   and the TCP stream's byte bound; overrunning either closes the stream with 0x49, never a silent drop.
 * - TCP → client: before each read the stream waits until the WebSocket's `bufferedAmount` is below
 *   `maxBufferedBytes`, so a slow browser pushes back on the target through TCP.
 * - UDP → client: a datagram that arrives while the WebSocket buffer is over its bound is dropped (UDP is
 *   lossy by contract) and counted in {@link WispSession.droppedDatagrams}.
 *
 * Longer than 500 lines: the handshake (INFO, password), TCP and UDP streams and their credit are one
 * state machine over one stream table; packets, credit and close reasons are already apart
 * (`packets.ts`, `credit.ts`, `reasons.ts`).
 *
 * @module
 */

import { toWasmnetError, type WasmnetError } from "../../core/errors.ts";
import type { BandwidthBudget } from "../../core/limits.ts";
import type { SocketObserver } from "../../core/observer.ts";
import { type CoreSession, coreSessionOf } from "../../core/core.ts";
import type { DecisionLog } from "../../core/log.ts";
import type { Policy } from "../../policy/mod.ts";
import type { Resolver } from "../../core/sockets/resolver.ts";
import { DRAIN_FLUSH_MS, TcpStream } from "../../core/sockets/tcp.ts";
import type { UdpSocket } from "../../core/sockets/udp.ts";
import { SendBufferGate, type WebSocketPort } from "../../core/websocket.ts";
import { InboundCredit } from "./credit.ts";
import {
  CloseReason,
  decodeCredentials,
  decodePacket,
  encodeDataInPlace,
  encodePacket,
  type Extension,
  ExtensionId,
  HEADER_BYTES,
  motdExtension,
  type Packet,
  StreamType,
} from "./packets.ts";
import { closeReasonFor } from "./reasons.ts";

/** Wisp-specific settings (the policy supplies everything else). */
export interface WispOptions {
  /** Packets buffered per TCP stream, announced with CONTINUE on stream 0. Default 128. */
  bufferPackets?: number;
  /** v2 MOTD extension text; empty or absent: no MOTD. */
  motd?: string;
  /** v2 password extension: username → password. Absent or empty: no password asked. */
  passwords?: Readonly<Record<string, string>>;
  /** Offer and accept UDP streams. Default true. */
  udp?: boolean;
  /** Bound of the WebSocket's send buffer; TCP reads pause above it (default 8 MiB, as wasmnet sessions). */
  maxBufferedBytes?: number;
  /**
   * Bytes queued towards one TCP target before the stream is closed with 0x49 (default 16 MiB). Credit is
   * counted in packets, so a client within its credit stays under this while its packets average at most
   * `maxQueuedWriteBytes / bufferPackets` (128 KiB with the defaults); libcurl.js, epoxy and v86 send ≤ 16 KiB.
   */
  maxQueuedWriteBytes?: number;
  /** Bytes queued towards all TCP targets of the session together before a stream is closed with 0x49 (default 64 MiB). */
  maxSessionQueuedBytes?: number;
  /** v2 with a password: time allowed for the client's INFO, in ms (default 10 s). */
  handshakeTimeoutMs?: number;
  /**
   * Reuse one read buffer per TCP stream (no allocation per read). Only when the port's `send` copies the
   * message before returning, as Deno's WebSocket does (the endpoint sets it); a port that keeps messages
   * must leave it off.
   */
  reuseReadBuffers?: boolean;
}

/** Everything a Wisp session needs. */
export interface WispSessionOptions extends WispOptions {
  policy: Policy;
  /** The client's IP, for logs. */
  clientIp: string;
  /** The bandwidth this client address shares with its other sessions (`max_bandwidth_mbps_per_ip`). */
  clientBudget?: BandwidthBudget;
  /** Told about every socket the core opens for this session (metrics; src/core/observer.ts). */
  observer?: SocketObserver;
  /** 1 or 2 (v2 when the client offered a `Sec-WebSocket-Protocol`). */
  version: 1 | 2;
  log?: DecisionLog;
  resolver?: Resolver;
  /** Session id for logs (default: random). */
  id?: string;
  /**
   * The socket core's handle for this session (the server passes one, with its observer and quota). When
   * set, it supplies the id, resolver and log, and `id`, `resolver` and `log` above are not used.
   */
  core?: CoreSession;
}

/** Default packets per stream (the value wisp-js and wisp-mux use). */
export const DEFAULT_BUFFER_PACKETS = 128;

/** Default bound of bytes queued towards one TCP target. */
export const DEFAULT_STREAM_QUEUED_BYTES = 16 * 1024 * 1024;

/** Default bound of bytes queued towards all TCP targets of one session. */
export const DEFAULT_SESSION_QUEUED_BYTES = 64 * 1024 * 1024;

/** Datagrams a UDP stream keeps while its socket is being bound; later ones are dropped. */
export const MAX_PENDING_DATAGRAMS = 16;

interface TcpWispStream {
  kind: "tcp";
  id: number;
  stream: TcpStream;
  credit: InboundCredit;
  controller: AbortController;
  connecting: boolean;
  lastActivity: number;
  ended: boolean;
}

interface UdpWispStream {
  kind: "udp";
  id: number;
  socket: UdpSocket | undefined;
  /** Datagrams that arrived while the socket was binding (at most {@link MAX_PENDING_DATAGRAMS}). */
  pending: Uint8Array[];
  controller: AbortController;
  connecting: boolean;
  lastActivity: number;
  ended: boolean;
}

type WispStream = TcpWispStream | UdpWispStream;

/** The Wisp protocol on one WebSocket. Call {@link start} once, then feed it with {@link receive}. */
export class WispSession {
  /** Session id for logs. */
  readonly id: string;
  /** The protocol version spoken. */
  readonly version: 1 | 2;
  /** UDP datagrams dropped because the WebSocket's buffer was full. */
  droppedDatagrams = 0;
  readonly #port: WebSocketPort;
  readonly #options: WispSessionOptions;
  readonly #streams = new Map<number, WispStream>();
  readonly #controller = new AbortController();
  /** Every stream's socket is opened through it (src/core/core.ts); its limiter paces TCP streams. */
  readonly #core: CoreSession;
  readonly #window: number;
  /** Pauses reading targets while the WebSocket's send buffer is over its bound. */
  readonly #room: SendBufferGate;
  readonly #maxQueued: number;
  readonly #maxSessionQueued: number;
  /** TCP streams with packets not yet written (their credit needs watching). */
  readonly #draining = new Set<TcpWispStream>();
  #state: "new" | "awaiting-info" | "open" = "new";
  #clientExtensions = new Set<number>();
  #clientInfoSeen = false;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;

  /** A session on `port`; nothing is sent until {@link start}. */
  constructor(port: WebSocketPort, options: WispSessionOptions) {
    this.#port = port;
    this.#options = options;
    this.#core = coreSessionOf("wisp", options, this.#controller.signal);
    this.id = this.#core.id;
    this.version = options.version;
    this.#window = options.bufferPackets ?? DEFAULT_BUFFER_PACKETS;
    this.#room = new SendBufferGate(port, options.maxBufferedBytes);
    this.#maxQueued = options.maxQueuedWriteBytes ?? DEFAULT_STREAM_QUEUED_BYTES;
    this.#maxSessionQueued = options.maxSessionQueuedBytes ?? DEFAULT_SESSION_QUEUED_BYTES;
  }

  /** True once the session has closed. */
  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Open streams (for tests and metrics). */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Sends the opening packets: v1 CONTINUE(0); v2 INFO, then CONTINUE(0) unless a password is asked. */
  start(): void {
    if (this.#state !== "new") return;
    const idle = this.#options.policy.config.network.socket_idle_timeout_secs;
    if (idle > 0) {
      this.#idleTimer = setInterval(() => this.#checkIdle(idle * 1000), Math.min(1000, idle * 250));
    }
    if (this.version === 1) {
      // v1 has no INFO to carry credentials: a server that asks for a password cannot admit v1 clients.
      if (this.#passwordRequired) {
        return this.#fail(
          CloseReason.AUTH_MISSING_CREDENTIALS,
          "this server requires Wisp v2 with a password",
        );
      }
      return this.#open();
    }
    this.#send({ type: "info", streamId: 0, major: 2, minor: 0, extensions: this.#serverExtensions() });
    if (this.#passwordRequired) {
      this.#state = "awaiting-info";
      this.#handshakeTimer = setTimeout(() => {
        this.#fail(CloseReason.AUTH_MISSING_CREDENTIALS, "no INFO packet with credentials in time");
      }, this.#options.handshakeTimeoutMs ?? 10_000);
    } else {
      this.#open();
    }
  }

  /** Handles one WebSocket message. Never throws. */
  receive(message: string | Uint8Array): void {
    if (this.closed) return;
    if (typeof message === "string") {
      return this.#fail(CloseReason.INVALID, "Wisp packets are binary messages, got text");
    }
    const decoded = decodePacket(message);
    if (!decoded.ok) {
      if (decoded.streamId && this.#streams.has(decoded.streamId)) {
        return this.#closeStream(this.#streams.get(decoded.streamId)!, CloseReason.INVALID, decoded.problem);
      }
      return this.#fail(CloseReason.INVALID, decoded.problem);
    }
    const packet = decoded.packet;
    if (this.#state === "awaiting-info") {
      if (packet.type !== "info") {
        return this.#fail(
          CloseReason.AUTH_MISSING_CREDENTIALS,
          `expected the client's INFO, got ${packet.type.toUpperCase()}`,
        );
      }
      return this.#authenticate(packet);
    }
    switch (packet.type) {
      case "info":
        return this.#clientInfo(packet);
      case "connect":
        return this.#connect(packet);
      case "data":
        return this.#data(packet.streamId, packet.data);
      case "close":
        return this.#clientClose(packet.streamId);
      case "continue":
        // Only the server sends CONTINUE; a client's is harmless and ignored.
        return;
    }
  }

  /** Closes every stream. Nothing more is sent. */
  close(): void {
    if (this.closed) return;
    this.#controller.abort();
    this.#room.close();
    clearTimeout(this.#drainTimer);
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#idleTimer);
    this.#core.close();
    for (const s of this.#streams.values()) this.#dispose(s);
    this.#streams.clear();
    this.#draining.clear();
  }

  /**
   * How a drain ends the session: like {@link shutdown}, but every TCP stream first writes out what the
   * client already sent (for up to `flushMs`) and closes in order. Resolves once all have closed.
   */
  async finish(code = 1001, reason = "server shutting down", flushMs = DRAIN_FLUSH_MS): Promise<void> {
    if (this.closed) return;
    const flushing: Promise<void>[] = [];
    for (const s of [...this.#streams.values()]) {
      if (s.kind !== "tcp") continue;
      s.ended = true; // no CLOSE packets: the WebSocket is closing
      this.#streams.delete(s.id);
      this.#draining.delete(s);
      flushing.push(s.stream.closeWithin(flushMs));
    }
    this.shutdown(code, reason);
    await Promise.all(flushing);
  }

  /** Closes the session and its WebSocket with `code` (1001 when the server shuts down). */
  shutdown(code = 1001, reason = "server shutting down"): void {
    this.close();
    try {
      this.#port.close(code, truncateUtf8(reason, 120));
    } catch {
      // already closed
    }
  }

  get #passwordRequired(): boolean {
    return Object.keys(this.#options.passwords ?? {}).length > 0;
  }

  #serverExtensions(): Extension[] {
    const exts: Extension[] = [];
    if (this.#options.udp !== false) exts.push({ id: ExtensionId.UDP, payload: new Uint8Array(0) });
    // The server's password record is one byte: 1 = credentials required (as wisp-js and wisp-mux send it).
    if (this.#passwordRequired) exts.push({ id: ExtensionId.PASSWORD, payload: Uint8Array.of(1) });
    if (this.#options.motd) exts.push(motdExtension(this.#options.motd));
    exts.push({ id: ExtensionId.STREAM_CONFIRMATION, payload: new Uint8Array(0) });
    return exts;
  }

  #open(): void {
    this.#state = "open";
    clearTimeout(this.#handshakeTimer);
    this.#send({ type: "continue", streamId: 0, remaining: this.#window });
  }

  #clientInfo(packet: Extract<Packet, { type: "info" }>): void {
    if (this.version === 1 || this.#clientInfoSeen) return; // v1 has no INFO; a second one changes nothing
    this.#clientInfoSeen = true;
    this.#clientExtensions = new Set(packet.extensions.map((e) => e.id));
  }

  #authenticate(packet: Extract<Packet, { type: "info" }>): void {
    this.#clientInfo(packet);
    const record = packet.extensions.find((e) => e.id === ExtensionId.PASSWORD);
    if (!record) {
      return this.#fail(
        CloseReason.AUTH_MISSING_CREDENTIALS,
        "the server requires a password (extension 0x02)",
      );
    }
    const creds = decodeCredentials(record.payload);
    if ("problem" in creds) return this.#fail(CloseReason.AUTH_MISSING_CREDENTIALS, creds.problem);
    const expected = Object.hasOwn(this.#options.passwords!, creds.username)
      ? this.#options.passwords![creds.username]
      : undefined;
    const ok = expected !== undefined && constantTimeEqual(creds.password, expected);
    this.#core.decided({
      op: "wisp_auth",
      target: creds.username,
      decision: ok ? "allow" : "deny",
      rule: "wisp.password_users",
      reason: ok ? undefined : "wrong username or password",
    });
    if (!ok) return this.#fail(CloseReason.AUTH_BAD_PASSWORD, "wrong username or password");
    this.#open();
  }

  #connect(packet: Extract<Packet, { type: "connect" }>): void {
    const { streamId: id, streamType, host, port } = packet;
    if (id === 0) return this.#fail(CloseReason.INVALID, "CONNECT on stream 0");
    const existing = this.#streams.get(id);
    if (existing) return this.#closeStream(existing, CloseReason.INVALID, `stream ${id} is already open`);
    const refuse = (reason: number, why: string) => {
      this.#send({ type: "close", streamId: id, reason });
      this.#logRefusal(host, port, why);
    };
    if (streamType !== StreamType.TCP && streamType !== StreamType.UDP) {
      return refuse(CloseReason.INVALID, `unknown stream type 0x${streamType.toString(16)}`);
    }
    if (streamType === StreamType.UDP && this.#options.udp === false) {
      return refuse(CloseReason.INVALID, "UDP streams are disabled");
    }
    // Empty hosts, port 0 and odd spellings are the policy's to refuse (0x48), like every other target.
    const limits = this.#options.policy.config.network;
    if (this.#streams.size >= limits.max_connections) {
      return refuse(
        CloseReason.THROTTLED,
        `session already has ${limits.max_connections} open streams (network.max_connections)`,
      );
    }
    let connecting = 0;
    for (const s of this.#streams.values()) if (s.connecting) connecting++;
    if (connecting >= limits.max_pending_connects) {
      return refuse(
        CloseReason.THROTTLED,
        `session already has ${limits.max_pending_connects} connects in flight (network.max_pending_connects)`,
      );
    }
    if (streamType === StreamType.UDP) return this.#connectUdp(id, host, port);
    const stream: TcpWispStream = {
      kind: "tcp",
      id,
      credit: new InboundCredit(this.#window),
      controller: new AbortController(),
      connecting: true,
      lastActivity: performance.now(),
      ended: false,
      stream: undefined as unknown as TcpStream,
    };
    stream.stream = new TcpStream(
      {
        onData: (data) => {
          stream.lastActivity = performance.now();
          // The header is written into the read buffer's headroom: no copy before the runtime's own.
          this.#sendRaw(encodeDataInPlace(id, data));
        },
        onEnd: (error) => this.#onTcpEnd(stream, error),
      },
      () => this.#waitForRoom(),
      this.#maxQueued,
      { headroom: HEADER_BYTES, reuseBuffer: this.#options.reuseReadBuffers },
    );
    this.#streams.set(id, stream);
    this.#core.connect("wisp", host, port, {
      signal: this.#streamSignal(stream.controller.signal),
      timeoutMs: limits.connection_timeout_secs * 1000,
    }).then(
      (conn) => {
        stream.connecting = false;
        if (stream.ended || this.closed) return conn.close();
        // An idle TCP stream ends with IDLE_TIMEOUT, which closes it with 0x47.
        stream.stream.attach(this.#core.limit(conn, (e) => stream.stream.destroy(e)));
        if (this.#clientExtensions.has(ExtensionId.STREAM_CONFIRMATION)) {
          this.#send({
            type: "continue",
            streamId: id,
            remaining: Math.max(0, this.#window - stream.credit.buffered),
          });
        }
      },
      (err) => {
        stream.connecting = false;
        if (stream.ended) return;
        const e = toWasmnetError(err, "CONNECT_FAILED");
        this.#closeStream(stream, closeReasonFor(e), e.message);
      },
    );
  }

  #connectUdp(id: number, host: string, port: number): void {
    const stream: UdpWispStream = {
      kind: "udp",
      id,
      socket: undefined,
      pending: [],
      controller: new AbortController(),
      connecting: true,
      lastActivity: performance.now(),
      ended: false,
    };
    this.#streams.set(id, stream);
    const udp = this.#options.policy.config.udp;
    this.#core.openUdp(
      "wisp_udp",
      host,
      port,
      {
        onDatagram: (data, addr, fromPort) => {
          const socket = stream.socket;
          // A Wisp UDP stream is connected: only the target's datagrams belong to it.
          if (!socket || addr !== socket.target.address || fromPort !== socket.target.port) return;
          stream.lastActivity = performance.now();
          if (!this.#room.hasRoom) {
            this.droppedDatagrams++;
            return;
          }
          this.#send({ type: "data", streamId: id, data });
        },
        onError: (err) => {
          if (stream.socket?.isClosed) this.#closeStream(stream, closeReasonFor(err), err.message);
        },
      },
      { maxDatagramBytes: udp.max_datagram_bytes, maxDatagramsPerSec: udp.max_datagrams_per_sec },
      this.#streamSignal(stream.controller.signal),
    ).then(
      (socket) => {
        stream.connecting = false;
        if (stream.ended || this.closed) return socket.close();
        stream.socket = socket;
        for (const data of stream.pending.splice(0)) {
          if (!stream.ended) this.#sendDatagram(stream, socket, data);
        }
      },
      (err) => {
        stream.connecting = false;
        if (stream.ended) return;
        const e = toWasmnetError(err, "CONNECT_FAILED");
        this.#closeStream(stream, closeReasonFor(e), e.message);
      },
    );
  }

  #data(id: number, data: Uint8Array): void {
    const stream = this.#streams.get(id);
    // Data for a stream that just closed (either side) can still be on the wire: nothing to deliver it to.
    if (!stream) return;
    stream.lastActivity = performance.now();
    if (stream.kind === "udp") {
      if (!stream.socket) {
        // Still binding: keep a few datagrams (sent once bound); past that they are lost, as UDP allows.
        if (stream.pending.length < MAX_PENDING_DATAGRAMS) stream.pending.push(data);
        return;
      }
      return this.#sendDatagram(stream, stream.socket, data);
    }
    stream.credit.update(stream.stream.queuedBytes);
    if (!stream.credit.accept(data.length)) {
      return this.#closeStream(
        stream,
        CloseReason.THROTTLED,
        `client sent more than ${
          2 * this.#window
        } packets beyond what was written (flow-control credit overrun)`,
      );
    }
    let queued = data.length;
    for (const s of this.#draining) queued += s.stream.queuedBytes;
    if (queued > this.#maxSessionQueued) {
      return this.#closeStream(
        stream,
        CloseReason.THROTTLED,
        `more than ${this.#maxSessionQueued} bytes waiting to be written for this session's streams`,
      );
    }
    const refused = stream.stream.write(data);
    // SEND_FAILED: the target already closed and the stream is finishing; its CLOSE (0x02) follows.
    if (refused?.code === "SEND_FAILED") return;
    if (refused) {
      const reason = refused.code === "BUFFER_FULL" ? CloseReason.THROTTLED : CloseReason.NETWORK_ERROR;
      return this.#closeStream(stream, reason, refused.message);
    }
    this.#draining.add(stream);
    this.#renew(stream);
    this.#watchDrain();
  }

  #sendDatagram(stream: UdpWispStream, socket: UdpSocket, data: Uint8Array): void {
    const refused = socket.send(data);
    if (refused?.code === "BAD_REQUEST") this.#closeStream(stream, CloseReason.INVALID, refused.message);
    // LIMIT_EXCEEDED (rate): the datagram is dropped, as UDP allows; the stream stays open.
  }

  #clientClose(id: number): void {
    if (id === 0) return this.shutdown(1000, "client closed stream 0");
    const stream = this.#streams.get(id);
    if (!stream) return;
    stream.ended = true;
    this.#streams.delete(id);
    this.#dispose(stream);
  }

  /** Sends CONTINUE for `stream` if its credit is due for renewal. */
  #renew(stream: TcpWispStream): void {
    stream.credit.update(stream.stream.queuedBytes);
    if (stream.credit.buffered === 0) this.#draining.delete(stream);
    const grant = stream.credit.renewal(stream.stream.queuedBytes <= this.#maxQueued / 2);
    if (grant !== undefined) this.#send({ type: "continue", streamId: stream.id, remaining: grant });
  }

  /** While packets wait to be written, checks every 2 ms whether credit can be renewed. */
  #watchDrain(): void {
    if (this.#drainTimer !== undefined || this.closed) return;
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      for (const s of [...this.#draining]) {
        if (s.ended) this.#draining.delete(s);
        else this.#renew(s);
      }
      if (this.#draining.size > 0) this.#watchDrain();
    }, 2);
  }

  #onTcpEnd(stream: TcpWispStream, error?: WasmnetError): void {
    stream.controller.abort();
    if (stream.ended || this.closed) return;
    this.#closeStream(stream, error ? closeReasonFor(error) : CloseReason.VOLUNTARY, error?.message);
  }

  /** Ends a stream from the server's side: CLOSE with `reason`, resources freed, a log line if refused. */
  #closeStream(stream: WispStream, reason: number, why?: string): void {
    if (stream.ended) return;
    stream.ended = true;
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    this.#dispose(stream);
    this.#send({ type: "close", streamId: stream.id, reason });
    if (
      why &&
      (reason === CloseReason.THROTTLED || reason === CloseReason.INVALID ||
        reason === CloseReason.TRANSFER_TIMEOUT)
    ) {
      this.#logRefusal(`stream ${stream.id}`, 0, why);
    }
  }

  #dispose(stream: WispStream): void {
    stream.ended = true;
    stream.controller.abort();
    if (stream.kind === "tcp") {
      this.#draining.delete(stream);
      stream.stream.destroy();
    } else {
      stream.socket?.close();
    }
  }

  /** Fails the whole connection: CLOSE on stream 0 with `reason`, then the WebSocket closes. */
  #fail(reason: number, why: string): void {
    if (this.closed) return;
    this.#logRefusal("session", 0, why);
    this.#send({ type: "close", streamId: 0, reason });
    this.shutdown(1008, truncateUtf8(why, 120));
  }

  #checkIdle(limitMs: number): void {
    const now = performance.now();
    for (const s of [...this.#streams.values()]) {
      // TCP streams time out through the limiter (as wasmnet's sockets do); UDP ones here.
      if (s.kind === "udp" && !s.connecting && now - s.lastActivity > limitMs) {
        this.#closeStream(
          s,
          CloseReason.TRANSFER_TIMEOUT,
          `no data for ${limitMs / 1000} s (network.socket_idle_timeout_secs)`,
        );
      }
    }
  }

  #logRefusal(host: string, port: number, reason: string): void {
    this.#core.decided({
      op: "wisp",
      target: port ? `${host}:${port}` : host,
      decision: "deny",
      rule: "wisp",
      reason,
    });
  }

  /** A stream's dial ends with the stream or the session. */
  #streamSignal(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([this.#controller.signal, signal]);
  }

  #send(packet: Packet): void {
    this.#sendRaw(encodePacket(packet));
  }

  /** Sends an encoded packet (nothing once the session is closed). */
  #sendRaw(bytes: Uint8Array): void {
    if (this.closed) return;
    try {
      this.#port.send(bytes);
    } catch {
      // The WebSocket closed under us; the endpoint closes the session.
    }
  }

  /** Resolves when the WebSocket's send buffer is below the bound (undefined when it already is). */
  #waitForRoom(): Promise<void> | undefined {
    return this.#room.wait();
  }
}

/** Compares two strings without an early exit on the first difference. */
function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** `text` cut to at most `maxBytes` of UTF-8 (WebSocket close reasons are limited to 123 bytes). */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  return new TextDecoder().decode(bytes.subarray(0, maxBytes)).replace(/\uFFFD+$/, "");
}
