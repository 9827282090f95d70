/**
 * One WebTransport session carrying the wasmnet protocol (docs/protocol.md, "WebTransport"): the same
 * {@link Session} as on the WebSocket (so the same policy, limits, decision log and error codes), with its
 * messages spread over QUIC: control on the first stream, each TCP socket on its own bidirectional stream
 * (no head-of-line blocking between sockets), UDP data on datagrams when it fits.
 *
 * It runs against {@link WebTransportPort}, the part of a `WebTransport` it uses, so it can be driven
 * without a network.
 *
 * Backpressure: every stream write is counted until the runtime takes it; the total is the session's
 * `bufferedAmount`, which pauses reading TCP (SendBufferGate) exactly as the WebSocket's does. A stream that
 * sends a frame over `max_message_bytes` closes the session (as 1009 does on the WebSocket).
 *
 * Runtime bug (denoland/deno#36822, Deno 2.9.6): a Deno send stream never sends FIN when closed, and the
 * stream is freed only by garbage collection. Nothing here relies on FIN: every end is an in-band message
 * (`closed`, `shutdown`), streams stay open for the client to reuse, and the stream limit is raised to
 * cover the sockets a session may have. See {@link streamLimitFor}.
 *
 * @module
 */

import { type DecisionLog, silentLog } from "../../core/log.ts";
import { MessageGuard, type MessageLimits } from "../../core/limits.ts";
import type { PortObserver, WebSocketPort } from "../../core/websocket.ts";
import type { SocketObserver } from "../../core/observer.ts";
import type { CoreSession } from "../../core/core.ts";
import type { BandwidthBudget } from "../../core/limits.ts";
import type { Resolver } from "../../core/sockets/resolver.ts";
import type { Policy } from "../../policy/mod.ts";
import {
  frame,
  FrameReader,
  FrameTooLarge,
  messageHead,
  StreamBindings,
} from "@wasmnet/protocol/webtransport";
import { EVENT_TYPE, REQUEST_TYPE } from "@wasmnet/protocol";
import { Session } from "../wasmnet/session.ts";

/** A bidirectional stream, as `WebTransportBidirectionalStream`. */
export interface BidiStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

/** The part of a `WebTransport` a session uses. */
export interface WebTransportPort {
  readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
  readonly datagrams: {
    readonly readable: ReadableStream<Uint8Array>;
    readonly writable: WritableStream<Uint8Array>;
    readonly maxDatagramSize: number;
  };
  close(info?: { closeCode?: number; reason?: string }): void;
  readonly closed: Promise<unknown>;
}

/** What a session needs besides its transport. */
export interface WebTransportSessionOptions {
  policy: Policy;
  serverHost: string;
  clientIp: string;
  log?: DecisionLog;
  resolver?: Resolver;
  /** Protocol v2, as the hello asked. */
  v2: boolean;
  limits: MessageLimits;
  signal?: AbortSignal;
  /** Counts the session's messages (metrics, access log), when the server meters. */
  observer?: PortObserver;
  /** The client address's shared bandwidth (`max_bandwidth_mbps_per_ip`), when no `core` is given. */
  clientBudget?: BandwidthBudget;
  /** Told about every socket the core opens (metrics), when no `core` is given. */
  socketObserver?: SocketObserver;
  /** The socket core's handle for this session (the server passes one); see `SessionOptions.core`. */
  core?: CoreSession;
}

/**
 * The QUIC limit of concurrent bidirectional streams a client may open on one session. **Workaround for
 * denoland/deno#36822** (delete when the runtime sends FIN and frees streams): streams never close, so the
 * client reuses them, and at most one per open socket plus the control stream is ever needed; the QUIC
 * default (100) would cut a session whose policy allows more sockets.
 */
export function streamLimitFor(policy: Policy): number {
  return policy.config.network.max_connections + 2;
}

/** Datagrams written and not yet taken by the runtime (each at most ~1.2 KB). */
const MAX_DATAGRAMS_IN_FLIGHT = 256;

/** A stream's writer and the bytes written to it that the runtime has not taken yet. */
class StreamOut {
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  failed = false;
  constructor(stream: WritableStream<Uint8Array>) {
    this.writer = stream.getWriter();
  }
}

/**
 * Runs one session: reads the control stream's remaining frames, every socket stream and the datagrams,
 * feeds each message to the wasmnet {@link Session}, and sends each event on its socket's stream.
 */
export class WebTransportSession {
  /** The wasmnet session underneath (for tests and tracking). */
  readonly session: Session;
  readonly #wt: WebTransportPort;
  readonly #control: StreamOut;
  readonly #bindings = new StreamBindings<StreamOut>();
  readonly #guard: MessageGuard;
  readonly #maxFrame: number;
  #buffered = 0;
  #closed = false;
  readonly #observer: PortObserver | undefined;
  readonly #datagrams: WritableStreamDefaultWriter<Uint8Array>;
  #datagramsInFlight = 0;

  /**
   * Starts the session on `wt`. `control` is the first stream, whose hello has been read (its reader, still
   * locked, is handed over with `frames`, which holds any partial frame); `early` are the complete messages
   * that came after the hello in the same reads.
   */
  constructor(
    wt: WebTransportPort,
    control: { reader: ReadableStreamDefaultReader<Uint8Array>; writable: WritableStream<Uint8Array> },
    frames: FrameReader,
    early: readonly Uint8Array[],
    options: WebTransportSessionOptions,
  ) {
    this.#wt = wt;
    this.#maxFrame = options.limits.maxMessageBytes;
    this.#control = new StreamOut(control.writable);
    this.#datagrams = wt.datagrams.writable.getWriter();
    this.#guard = new MessageGuard(options.limits, (_code, reason) => this.shutdown(0, reason));
    const buffered = () => this.#buffered;
    this.#observer = options.observer;
    const port: WebSocketPort = {
      send: (message) => this.#send(message),
      close: (_code, reason) => this.#close(reason),
      get bufferedAmount() {
        return buffered();
      },
      observer: options.observer,
    };
    this.session = new Session(port, {
      policy: options.policy,
      serverHost: options.serverHost,
      clientIp: options.clientIp,
      log: options.log ?? silentLog,
      resolver: options.resolver,
      signal: options.signal,
      clientBudget: options.clientBudget,
      observer: options.socketObserver,
      core: options.core,
      flowControl: options.v2,
      // Stream writes keep the buffer until the runtime takes it: a fresh read buffer per read.
      reuseReadBuffers: false,
    });
    for (const message of early) this.#receive(message, undefined);
    this.#readStream(control.reader, frames, undefined);
    this.#acceptStreams();
    this.#readDatagrams();
    wt.closed.then(() => this.#close(), () => this.#close());
  }

  /** True once the session has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes every socket and the WebTransport session (server shutdown). */
  shutdown(_code = 0, reason = "server shutting down"): void {
    this.#close(reason);
  }

  #close(reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#guard.stop();
    this.#observer?.closed(1000);
    this.session.close();
    try {
      this.#wt.close({ closeCode: 0, reason: reason.slice(0, 100) });
    } catch {
      // already closed
    }
  }

  #receive(message: Uint8Array, stream: StreamOut | undefined): void {
    this.#observer?.received(message.length);
    if (this.#closed || !this.#guard.accept(message)) return;
    const head = messageHead(message);
    if (stream && head && (head.type === REQUEST_TYPE.connect || head.type === REQUEST_TYPE.connect_tls)) {
      this.#bindings.bind(head.id, stream);
    }
    this.session.receive(message);
  }

  #send(message: string | Uint8Array): void {
    if (this.#closed) return;
    this.#guard.touch();
    this.#observer?.sent(message.length);
    // The session answers in the framing of the request; only binary requests are read here.
    const bytes = typeof message === "string" ? new TextEncoder().encode(message) : message;
    const head = messageHead(bytes);
    if (head === null) return this.#write(this.#control, bytes);
    const { type, id } = head;
    if (
      (type === EVENT_TYPE.data || type === EVENT_TYPE.data_from) && this.#bindings.isUdp(id) &&
      bytes.length <= this.#wt.datagrams.maxDatagramSize
    ) {
      // At most MAX_DATAGRAMS_IN_FLIGHT wait for the runtime: past it the datagram is dropped, as a full
      // socket buffer drops UDP. A datagram lost is a UDP datagram lost: what UDP promises anyway.
      if (this.#datagramsInFlight < MAX_DATAGRAMS_IN_FLIGHT) {
        this.#datagramsInFlight++;
        this.#datagrams.write(bytes.slice()).catch(() => {}).finally(() => this.#datagramsInFlight--);
      }
      return;
    }
    const stream = this.#bindings.streamOf(id) ?? this.#control;
    this.#bindings.settle(type, id);
    this.#write(stream, bytes);
  }

  #write(stream: StreamOut, message: Uint8Array): void {
    if (stream.failed) stream = this.#control;
    const framed = frame(message);
    this.#buffered += framed.length;
    stream.writer.write(framed).then(
      () => (this.#buffered -= framed.length),
      () => {
        this.#buffered -= framed.length;
        if (stream === this.#control) return this.#close("control stream failed");
        stream.failed = true;
        this.#bindings.dropStream(stream);
      },
    );
  }

  async #acceptStreams(): Promise<void> {
    const reader = this.#wt.incomingBidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        const out = new StreamOut(value.writable);
        this.#readStream(value.readable.getReader(), new FrameReader(this.#maxFrame), out);
      }
    } catch {
      // the session ended
    } finally {
      reader.releaseLock();
      this.#close();
    }
  }

  /** Reads frames from one stream until it ends; `out` is undefined for the control stream. */
  async #readStream(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    frames: FrameReader,
    out: StreamOut | undefined,
  ): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        for (const message of frames.push(value)) this.#receive(message, out);
      }
    } catch (err) {
      if (err instanceof FrameTooLarge) {
        return this.#close(`${err.message} (max_message_bytes)`);
      }
      // the stream was reset: its sockets' events go on the control stream
    } finally {
      if (out === undefined) this.#close("control stream ended");
      else this.#bindings.dropStream(out);
    }
  }

  async #readDatagrams(): Promise<void> {
    const reader = this.#wt.datagrams.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        this.#receive(value, undefined);
      }
    } catch {
      // the session ended
    }
  }
}
