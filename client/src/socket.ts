/**
 * `WasmnetSocket`: a TCP connection as a pair of web streams, shaped like the web platform's TCP socket
 * APIs (`opened`, `closed`, `readable`, `writable`, `close()`), so stream code can pipe through wasmnet.
 *
 * @module
 */

import { WasmnetError } from "./errors.ts";
import { type SocketId, toBytes } from "./wire.ts";

/** Options of {@link WasmnetClient.openSocket}. */
export interface WasmnetSocketOptions {
  /** Ask the server for TLS to the host (`connect_tls`); the streams carry plaintext. Default false. */
  tls?: boolean;
  /** Bytes the readable buffers before it stops pulling from the socket's queue. Default 256 KiB. */
  readableHighWaterMark?: number;
  /** Bytes the writable buffers before `writer.ready` waits. Default 64 KiB. */
  writableHighWaterMark?: number;
  /**
   * A write resolves once the WebSocket's outgoing buffer is below this many bytes. Default 8 MiB: the
   * page has no drain event and Chromium stretches chained timers to about 4 ms, in which a fast link
   * drains megabytes, so a smaller bound lets the buffer run dry between checks.
   */
  sendBufferLimit?: number;
}

/** What {@link WasmnetSocket.opened} resolves to: the streams and where they lead. */
export interface WasmnetSocketInfo {
  /** Bytes from the peer. */
  readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  writable: WritableStream<StreamChunk>;
  /** Host name or address asked for. */
  remoteAddress: string;
  /** Port asked for. */
  remotePort: number;
}

/** What the writable accepts; text is sent as UTF-8. */
export type StreamChunk = string | Uint8Array | ArrayBuffer | ArrayBufferView;

/** How the client feeds a socket; the socket hands one to the client through {@link SocketChannel.attach}. */
export interface SocketSink {
  /** The connection is up. */
  opened(): void;
  /** Bytes arrived, in order. */
  data(bytes: Uint8Array): void;
  /** The socket is gone: normally (no error) or not. */
  closed(error?: WasmnetError): void;
}

/** The client's side of a stream socket: how the socket sends, waits and closes. Made by `openSocket`. */
export interface SocketChannel {
  /** Registers the socket as the consumer of its id's events. */
  attach(sink: SocketSink): void;
  /** Sends bytes; false when the socket is no longer open. */
  send(data: Uint8Array): boolean;
  /** Bytes waiting in the WebSocket's send buffer. */
  bufferedAmount(): number;
  /** Asks the server to close; resolves once closed. */
  close(): Promise<void>;
  /** Bytes moved from the socket's queue into the readable (where flow control grants credit). */
  consumed(bytes: number): void;
  /** Half-close: the peer reads end-of-stream; false where the server has no half-close. */
  shutdown?(): boolean;
}

/** Default {@link WasmnetSocketOptions.sendBufferLimit}. */
export const DEFAULT_SEND_BUFFER_LIMIT = 8 * 1024 * 1024;
const DRAIN_POLL_MS = 1;

/**
 * A TCP connection through wasmnet as web streams. Reading slowly leaves bytes in this socket's queue
 * instead of in the stream (and, with flow control, on the server); each write resolves only once the
 * WebSocket's send buffer is below a limit, so a writer cannot outrun the network. Both streams are usable
 * before `opened` resolves: the first writes travel with the connect, and a refused connect errors both
 * streams (the next read, write or close rejects with the refusal).
 *
 * Made by {@link WasmnetClient.openSocket}; not constructed directly.
 */
export class WasmnetSocket {
  /** The socket id on the client (usable with the callback API too, e.g. `client.close(id)`). */
  readonly id: SocketId;
  /** Host name or address asked for. */
  readonly remoteAddress: string;
  /** Port asked for. */
  readonly remotePort: number;
  /** Bytes from the peer; closes when the peer closes, errors when the connection fails. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer; each write waits for the WebSocket to drain below `sendBufferLimit`. */
  readonly writable: WritableStream<StreamChunk>;
  /** Resolves when connected; rejects with a {@link WasmnetError} (denied or failed) if not. */
  readonly opened: Promise<WasmnetSocketInfo>;
  /** Resolves when the socket has closed normally; rejects with the reason otherwise. */
  readonly closed: Promise<void>;

  #channel: SocketChannel;
  #queue: Uint8Array[] = [];
  #readController!: ReadableStreamDefaultController<Uint8Array>;
  #writeController!: WritableStreamDefaultController;
  #readableDone = false;
  #writableDone = false;
  #ended = false;
  #error?: WasmnetError;
  #isOpen = false;
  #resolveOpened!: (info: WasmnetSocketInfo) => void;
  #rejectOpened!: (error: WasmnetError) => void;
  #resolveClosed!: () => void;
  #rejectClosed!: (error: WasmnetError) => void;
  #sendBufferLimit: number;

  /** Wires the socket to a client channel; use `client.openSocket(host, port)` instead. */
  constructor(
    remoteAddress: string,
    remotePort: number,
    id: SocketId,
    options: WasmnetSocketOptions,
    channel: SocketChannel,
  ) {
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.#channel = channel;
    this.#sendBufferLimit = options.sendBufferLimit ?? DEFAULT_SEND_BUFFER_LIMIT;
    this.opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Callers may watch only one of the two; neither should surface as an unhandled rejection.
    this.opened.catch(() => {});
    this.closed.catch(() => {});

    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#readController = controller;
      },
      pull: () => this.#drain(),
      cancel: () => {
        this.#readableDone = true;
        this.#queue = [];
        this.#closeIfBothDone();
      },
    }, {
      highWaterMark: options.readableHighWaterMark ?? 256 * 1024,
      size: (chunk) => chunk.byteLength,
    });

    this.writable = new WritableStream<StreamChunk>({
      start: (controller) => {
        this.#writeController = controller;
      },
      // Writes do not wait for the connection: the first bytes go with the connect (the server writes them
      // once connected). A refusal errors the writable, so the next write (or close) rejects with it.
      write: async (chunk) => {
        if (!this.#channel.send(toBytes(chunk))) {
          throw this.#error ?? closedError(this.id);
        }
        await this.#drained();
      },
      close: async () => {
        await this.opened;
        await this.#drained();
        this.#writableDone = true;
        // Half-close where the server has it: the peer reads end-of-stream, the readable goes on.
        if (!this.#ended) this.#channel.shutdown?.();
        this.#closeIfBothDone();
      },
      abort: async () => {
        this.#writableDone = true;
        await this.#channel.close();
      },
    }, {
      highWaterMark: options.writableHighWaterMark ?? 64 * 1024,
      size: (chunk) => typeof chunk === "string" ? chunk.length : chunk.byteLength,
    });

    channel.attach({
      opened: () => this.#onOpened(),
      data: (bytes) => this.#onData(bytes),
      closed: (error) => this.#onClosed(error),
    });
  }

  /**
   * Closes the connection (both directions); bytes already queued stay readable, then the readable ends.
   * Resolves once closed, and never rejects.
   */
  async close(): Promise<void> {
    this.#writableDone = true;
    await this.#channel.close();
    await this.closed.catch(() => {});
  }

  #onOpened(): void {
    this.#isOpen = true;
    this.#resolveOpened({
      readable: this.readable,
      writable: this.writable,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
    });
  }

  #onData(bytes: Uint8Array): void {
    if (this.#readableDone) return;
    this.#queue.push(bytes);
    this.#drain();
  }

  #onClosed(error?: WasmnetError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (!this.#isOpen) {
      const reason = error ?? closedError(this.id);
      this.#rejectOpened(reason);
      this.#rejectClosed(reason);
      this.#readController.error(reason);
      this.#writeController.error(reason);
      return;
    }
    this.#writeController.error(error ?? closedError(this.id)); // a no-op if the writable already closed
    this.#drain();
    if (error) this.#rejectClosed(error);
    else this.#resolveClosed();
  }

  /** Moves queued bytes into the readable while it wants more; ends it once the queue is empty and closed. */
  #drain(): void {
    if (this.#readableDone) return;
    const controller = this.#readController;
    while (this.#queue.length && (controller.desiredSize ?? 0) > 0) {
      const chunk = this.#queue.shift()!;
      controller.enqueue(chunk);
      this.#channel.consumed(chunk.byteLength);
    }
    if (this.#ended && !this.#queue.length) {
      this.#readableDone = true;
      if (this.#error) controller.error(this.#error);
      else controller.close();
    }
  }

  #closeIfBothDone(): void {
    if (this.#readableDone && this.#writableDone && !this.#ended) {
      void this.#channel.close();
    }
  }

  async #drained(): Promise<void> {
    while (
      !this.#ended && this.#channel.bufferedAmount() > this.#sendBufferLimit
    ) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    if (this.#ended && this.#error) throw this.#error;
  }
}

function closedError(id: SocketId): WasmnetError {
  return new WasmnetError(`wasmnet: socket ${id} is closed`, "closed");
}
