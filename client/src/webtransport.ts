/**
 * The wasmnet protocol over WebTransport behind the client's transport interface, {@link WebSocketLike}
 * ({@link WebTransportSocket}); `auto` is in transport_auto.ts. The socket table in client.ts does not know
 * which transport it talks through.
 *
 * Over WebTransport (docs/protocol.md, "WebTransport"): binary messages only; control on the first stream;
 * every TCP socket on a bidirectional stream of its own; UDP `send`/`send_to` as datagrams when they fit.
 *
 * @module
 */

import type { WebSocketLike } from "./types.ts";
import {
  decodeHelloAnswer,
  encodeHello,
  frame,
  FrameReader,
  messageHead,
  StreamBindings,
  WEBTRANSPORT_PROTOCOL_VERSION,
} from "@wasmnet/protocol/webtransport";
import { REQUEST_TYPE } from "@wasmnet/protocol";

/** What `/.well-known/wasmnet` says about WebTransport. */
export interface WebTransportInfo {
  /** `https://host:port/` of the QUIC listener. */
  url: string;
  /** For a self-signed certificate: its SHA-256 (base64), for `serverCertificateHashes`. */
  certificateHashes?: { algorithm: string; value: string }[];
  /** An origin ticket, when the server limits origins (valid for a minute). */
  ticket?: string;
}

/** Transport choice of `new WasmnetClient(url, { transport })`. */
export type Transport = "websocket" | "webtransport" | "auto";

/** Default time `auto` gives WebTransport (discovery, handshake, hello) before it uses the WebSocket. */
export const DEFAULT_WEBTRANSPORT_TIMEOUT_MS = 3000;

/** Largest message the client accepts on a stream (the server's default `max_message_bytes` is 1 MiB). */
const MAX_INBOUND_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Datagrams written and not yet taken by the browser; past it a datagram is dropped (UDP semantics). */
const MAX_DATAGRAMS_IN_FLIGHT = 256;

/** The protocol name {@link WebTransportSocket.protocol} reports when the server agreed to v2. */
export const PROTOCOL_V2 = "wasmnet.v2";

/** The well-known URL of a server's `ws://` or `wss://` URL. */
export function wellKnownUrl(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = "/.well-known/wasmnet";
  url.search = "";
  return url.href;
}

/** Asks the server where its WebTransport is; null when it has none. Throws if the server cannot be asked. */
export async function discoverWebTransport(
  wsUrl: string,
  signal?: AbortSignal,
): Promise<WebTransportInfo | null> {
  const response = await fetch(wellKnownUrl(wsUrl), { signal });
  if (!response.ok) throw new Error(`${wellKnownUrl(wsUrl)} answered ${response.status}`);
  const doc = await response.json() as { webtransport?: WebTransportInfo | null };
  const info = doc.webtransport;
  if (!info || typeof info.url !== "string") return null;
  return info;
}

/** True when this runtime has a `WebTransport` constructor. */
export function hasWebTransport(): boolean {
  return typeof (globalThis as { WebTransport?: unknown }).WebTransport === "function";
}

/** An event listener of the transport adapters. */
export type MessageListener = (event: Record<string, unknown>) => void;

/** Event plumbing shared by both adapters. */
export class Events {
  readonly #listeners = new Map<string, MessageListener[]>();
  on(type: string, fn: MessageListener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), fn]);
  }
  emit(type: string, event: Record<string, unknown>): void {
    for (const fn of this.#listeners.get(type) ?? []) fn(event);
  }
}

/** Splits a stream's bytes into messages (a `FrameReader`; named by shape so the typings need no import). */
interface MessageSplitter {
  push(chunk: Uint8Array): Uint8Array[];
}

/** One bidirectional stream as the client writes it. */
class ClientStream {
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  /** Messages written before the stream exists. */
  #pending: Uint8Array[] = [];
  failed = false;

  constructor(
    opened: Promise<WebTransportBidirectionalStream>,
    private readonly owner: WebTransportSocket,
    frames: MessageSplitter = new FrameReader(MAX_INBOUND_MESSAGE_BYTES),
  ) {
    opened.then((stream) => {
      this.#writer = stream.writable.getWriter();
      for (const message of this.#pending.splice(0)) this.#write(message);
      owner.readStream(stream.readable, this, frames);
    }, () => this.fail());
  }

  /**
   * Writes one message (framed: a copy, so the caller may reuse its buffer, as `WebSocket.send` allows);
   * queued, copied, until the stream exists.
   */
  write(message: Uint8Array): void {
    if (this.#writer) this.#write(message);
    else this.#pending.push(message.slice());
  }

  #write(message: Uint8Array): void {
    const framed = frame(message);
    this.owner.buffered += framed.length;
    this.#writer!.write(framed).then(
      () => (this.owner.buffered -= framed.length),
      () => (this.owner.buffered -= framed.length, this.fail()),
    );
  }

  /** The stream broke (or could not be opened): what never went out goes on the control stream instead. */
  fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.owner.streamFailed(this, this.#pending.splice(0));
  }
}

/**
 * **Workaround for denoland/deno#36822** (Deno 2.9.6 never sends FIN on a closed send stream and frees
 * streams only on GC, so a browser's 100th new stream on one session fails): streams are never closed; a
 * socket's stream goes back here when the socket's last event arrives, and the next socket reuses it. When
 * the runtime is fixed, delete this class and open a fresh stream per socket (`take` → always undefined).
 */
class StreamPool {
  readonly #idle: ClientStream[] = [];
  /** An idle stream, if any. */
  take(): ClientStream | undefined {
    return this.#idle.pop();
  }
  /** `stream`'s socket has ended: the stream is free for the next one. */
  give(stream: ClientStream): void {
    if (!stream.failed) this.#idle.push(stream);
  }
  /** `stream` broke: never hand it out again. */
  drop(stream: ClientStream): void {
    const i = this.#idle.indexOf(stream);
    if (i >= 0) this.#idle.splice(i, 1);
  }
  /** Streams waiting for a socket (for tests). */
  get size(): number {
    return this.#idle.length;
  }
}

/** Counts of a WebTransport session, for tests and diagnostics. */
export interface WebTransportStats {
  /** Bidirectional streams opened for sockets (the control stream not counted). */
  streamsOpened: number;
  datagramsSent: number;
  datagramsReceived: number;
  /** Socket streams waiting in the pool for the next socket. */
  idleStreams: number;
}

/** Options of {@link WebTransportSocket}. */
export interface WebTransportSocketOptions {
  /** Ask for protocol v2 (flow control). */
  v2: boolean;
  /** Where the server's WebTransport is; discovered from the well-known URL when absent. */
  info?: WebTransportInfo;
  /** Time allowed for discovery, handshake and hello; past it the socket fails (default 10 s). */
  timeoutMs?: number;
}

/**
 * The wasmnet protocol over WebTransport, shaped as a {@link WebSocketLike}: `open` once the server has
 * answered the hello, `message` for every event from any stream or datagram, `close` when the session ends
 * (a refusal closes with the HTTP status as code and the server's reason).
 */
export class WebTransportSocket implements WebSocketLike {
  readyState = 0;
  binaryType = "arraybuffer";
  protocol = "";
  /** Bytes handed to streams and not yet taken by the browser. */
  buffered = 0;
  /** Set once the session is up (or null when it never came up). */
  transport: WebTransport | null = null;
  /** What went where (tests and diagnostics). */
  readonly stats: WebTransportStats = {
    streamsOpened: 0,
    datagramsSent: 0,
    datagramsReceived: 0,
    idleStreams: 0,
  };
  readonly #events = new Events();
  readonly #bindings = new StreamBindings<ClientStream>();
  readonly #pool = new StreamPool();
  #control: ClientStream | undefined;
  #datagrams: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #datagramsInFlight = 0;
  #closed = false;

  /** Starts connecting at once; `wsUrl`'s query (a `token`) is passed on to the session URL. */
  constructor(readonly wsUrl: string, readonly options: WebTransportSocketOptions) {
    this.#start().catch((error) => this.#end(0, String((error as Error)?.message ?? error), true));
  }

  get bufferedAmount(): number {
    return this.buffered;
  }

  addEventListener(type: string, listener: MessageListener): void {
    this.#events.on(type, listener);
  }

  /** Routes one binary message: a socket's stream, a datagram, or the control stream. */
  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) return;
    if (typeof data === "string") {
      throw new TypeError("wasmnet over WebTransport speaks the binary framing only");
    }
    const head = messageHead(data);
    if (head === null) return this.#control!.write(data);
    const { type, id } = head;
    if (type === REQUEST_TYPE.connect || type === REQUEST_TYPE.connect_tls) {
      const stream = this.#pool.take() ?? this.#openStream();
      this.#bindings.bind(id, stream);
      return stream.write(data);
    }
    const bound = this.#bindings.streamOf(id);
    if (bound && !bound.failed) return bound.write(data);
    const udpSend = type === REQUEST_TYPE.send || type === REQUEST_TYPE.send_to;
    if (udpSend && this.#bindings.isUdp(id) && this.#datagrams && this.transport) {
      if (data.length <= this.transport.datagrams.maxDatagramSize) {
        // Dropped when the datagram queue is full, as a full socket buffer drops UDP.
        if (this.#datagramsInFlight < MAX_DATAGRAMS_IN_FLIGHT) {
          this.stats.datagramsSent++;
          this.#datagramsInFlight++;
          this.#datagrams.write(data.slice()).catch(() => {}).finally(() => this.#datagramsInFlight--);
        }
        return;
      }
    }
    this.#control!.write(data);
  }

  close(code = 0, reason = ""): void {
    this.#end(code, reason, false);
  }

  /** Reads messages from one of our streams (called by {@link ClientStream}). */
  async readStream(
    readable: ReadableStream<Uint8Array>,
    stream: ClientStream,
    frames: MessageSplitter,
  ): Promise<void> {
    const reader = readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        for (const message of frames.push(value)) this.#deliver(message);
      }
    } catch {
      // reset, or the session ended
    }
    if (!this.#closed) stream.fail();
  }

  /**
   * A stream broke or could not be opened (the server's stream limit): its sockets' later messages go on
   * the control stream, starting with `unsent`; the session ends if it was the control stream.
   */
  streamFailed(stream: ClientStream, unsent: Uint8Array[]): void {
    this.#pool.drop(stream);
    this.#bindings.dropStream(stream);
    if (stream === this.#control) return this.#end(1006, "the control stream failed", true);
    for (const message of unsent) this.#control?.write(message);
  }

  #openStream(): ClientStream {
    this.stats.streamsOpened++;
    return new ClientStream(this.transport!.createBidirectionalStream(), this);
  }

  #deliver(message: Uint8Array): void {
    const head = messageHead(message);
    if (head) {
      const freed = this.#bindings.settle(head.type, head.id);
      if (freed) this.#pool.give(freed);
      this.stats.idleStreams = this.#pool.size;
    }
    this.#events.emit("message", { data: message });
  }

  async #start(): Promise<void> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs ?? 10_000);
    const info = this.options.info ?? await discoverWebTransport(this.wsUrl, deadline);
    if (!info) throw new Error("the server does not offer WebTransport");
    const url = new URL(info.url);
    const query = new URL(this.wsUrl).searchParams;
    for (const [k, v] of query) url.searchParams.set(k, v);
    if (info.ticket) url.searchParams.set("ticket", info.ticket);
    const hashes = info.certificateHashes?.map((h) => ({
      algorithm: h.algorithm,
      value: Uint8Array.from(atob(h.value), (c) => c.charCodeAt(0)),
    }));
    const wt = new WebTransport(url.href, hashes ? { serverCertificateHashes: hashes } : {});
    this.transport = wt;
    wt.closed.then(
      (info) => this.#end(info?.closeCode ?? 0, info?.reason ?? "session closed", false),
      (error) => this.#end(1006, String(error?.message ?? error), true),
    );
    const timedOut = new Promise<never>((_, reject) =>
      deadline.addEventListener("abort", () => reject(new Error("WebTransport timed out")), { once: true })
    );
    await Promise.race([wt.ready, timedOut]);
    const control = await Promise.race([wt.createBidirectionalStream(), timedOut]);
    const writer = control.writable.getWriter();
    await writer.write(frame(encodeHello({ wasmnet: WEBTRANSPORT_PROTOCOL_VERSION, v2: this.options.v2 })));
    // The answer is the first frame back; what follows on the control stream is read as messages.
    const reader = control.readable.getReader();
    const frames = new FrameReader(MAX_INBOUND_MESSAGE_BYTES);
    let messages: Uint8Array[] = [];
    while (messages.length === 0) {
      const { value, done } = await Promise.race([reader.read(), timedOut]);
      if (done) throw new Error("the server closed the control stream before answering");
      messages = frames.push(value);
    }
    const answer = decodeHelloAnswer(messages[0]);
    if (answer === null) throw new Error("the server's answer to the hello is not one");
    if (!answer.ok) {
      wt.close({ closeCode: 0, reason: "refused" });
      this.#end(answer.status, answer.msg, true);
      return;
    }
    this.protocol = answer.v2 ? PROTOCOL_V2 : "";
    writer.releaseLock();
    reader.releaseLock();
    this.#control = new ClientStream(Promise.resolve(control), this, frames);
    this.#datagrams = wt.datagrams.writable.getWriter();
    this.#readDatagrams(wt);
    this.readyState = 1;
    this.#events.emit("open", {});
    for (const message of messages.slice(1)) this.#deliver(message);
  }

  async #readDatagrams(wt: WebTransport): Promise<void> {
    const reader = wt.datagrams.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        this.stats.datagramsReceived++;
        this.#deliver(value);
      }
    } catch {
      // the session ended
    }
  }

  #end(code: number, reason: string, failed: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.readyState = 3;
    try {
      this.transport?.close({ closeCode: 0, reason: reason.slice(0, 100) });
    } catch {
      // closed already
    }
    if (failed) this.#events.emit("error", { message: reason });
    this.#events.emit("close", { code, reason });
  }
}
