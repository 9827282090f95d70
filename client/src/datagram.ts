/**
 * `WasmnetDatagramSocket`: a UDP socket (`connect_udp`) as a pair of web streams of datagrams, shaped like
 * the web platform's UDP socket API (`opened`, `closed`, `readable`, `writable`, `close()`), where each
 * chunk is one datagram: `{ data, remoteAddress?, remotePort? }`.
 *
 * - Reading: every datagram from the target or (as the server allows) from another source is one chunk,
 *   with its source. The readable holds at most `readableHighWaterMark` datagrams; **when it is full, newly
 *   arriving datagrams are dropped** (counted in {@link WasmnetDatagramSocket.dropped}), as UDP would drop
 *   them, rather than growing without bound.
 * - Writing: a chunk without `remoteAddress` goes to the target (`send`), one with `remoteAddress` and
 *   `remotePort` to that destination (`send_to`, checked by the server's policy). Plain bytes or text are a
 *   datagram to the target. Each write resolves once the WebSocket's send buffer is below
 *   `sendBufferLimit`. A datagram the server refuses (too large, over the rate, denied) is dropped, as the
 *   network would drop it; the socket stays open.
 *
 * Made by `WasmnetClient.openDatagramSocket`; built only on the client's public callback API
 * ({@link DatagramClient}).
 *
 * @module
 */

import { WasmnetError } from "./errors.ts";
import type { SocketId } from "./wire.ts";
import type { StreamChunk } from "./socket.ts";
import type { CloseCallback, DataCallback, DataFromCallback, SendData, UdpSocket } from "./types.ts";

/**
 * The calls of `WasmnetClient`'s public API a datagram socket is built on (a `WasmnetClient` is one).
 */
export interface DatagramClient {
  connectUdp(host: string, port: number): Promise<UdpSocket>;
  send(id: SocketId, data: SendData): boolean;
  sendTo(id: SocketId, addr: string, port: number, data: SendData): boolean;
  onData(id: SocketId, callback: DataCallback): void;
  onDataFrom(id: SocketId, callback: DataFromCallback): void;
  onClose(id: SocketId, callback: CloseCallback): void;
  close(id: SocketId): Promise<void>;
}

/** One datagram, read or written. */
export interface DatagramMessage {
  /** The datagram's bytes (text is sent as UTF-8 when writing). */
  data: Uint8Array | ArrayBuffer | ArrayBufferView | string;
  /** Reading: where it came from. Writing: where to send it (default: the socket's target). */
  remoteAddress?: string;
  /** Reading: its source port. Writing: the destination port (needed with `remoteAddress`). */
  remotePort?: number;
}

/** A datagram as the readable delivers it. */
export interface ReceivedDatagram extends DatagramMessage {
  data: Uint8Array;
  remoteAddress: string;
  remotePort: number;
}

/** Options of `WasmnetClient.openDatagramSocket`. */
export interface WasmnetDatagramSocketOptions {
  /** Datagrams the readable holds before newer ones are dropped. Default 256. */
  readableHighWaterMark?: number;
  /** Datagrams the writable buffers before `writer.ready` waits. Default 16. */
  writableHighWaterMark?: number;
  /** A write resolves once the WebSocket's outgoing buffer is below this many bytes. Default 1 MiB. */
  sendBufferLimit?: number;
}

/** What {@link WasmnetDatagramSocket.opened} resolves to. */
export interface WasmnetDatagramSocketInfo {
  /** Datagrams received, one per chunk, with their source. */
  readable: ReadableStream<ReceivedDatagram>;
  /** Datagrams to send, one per chunk. */
  writable: WritableStream<DatagramMessage | StreamChunk>;
  /** The target host asked for. */
  remoteAddress: string;
  /** The target port asked for. */
  remotePort: number;
  /** The server's local UDP port (the source port peers see). */
  localPort: number;
}

const DRAIN_POLL_MS = 2;

/** A UDP socket through wasmnet as web streams of datagrams. Use `client.openDatagramSocket(host, port)`. */
export class WasmnetDatagramSocket {
  /** The target host asked for. */
  readonly remoteAddress: string;
  /** The target port asked for. */
  readonly remotePort: number;
  /** Datagrams received, one per chunk. */
  readonly readable: ReadableStream<ReceivedDatagram>;
  /** Datagrams to send, one per chunk. */
  readonly writable: WritableStream<DatagramMessage | StreamChunk>;
  /** Resolves once the server has bound the socket; rejects with a {@link WasmnetError} (denied or failed). */
  readonly opened: Promise<WasmnetDatagramSocketInfo>;
  /** Resolves when the socket has closed (by `close()` or the server); rejects if it failed. */
  readonly closed: Promise<void>;
  /** Datagrams dropped because the readable was full. */
  dropped = 0;

  #client: DatagramClient;
  #bufferedAmount: () => number;
  #sendBufferLimit: number;
  #id: SocketId | undefined;
  #readController!: ReadableStreamDefaultController<ReceivedDatagram>;
  #writeController!: WritableStreamDefaultController;
  #readableDone = false;
  #ended = false;
  #closing = false;
  #resolveClosed!: () => void;
  #rejectClosed!: (error: WasmnetError) => void;

  /** Opens the socket on `client`; `bufferedAmount` reports the bytes waiting to go out on its WebSocket. */
  constructor(
    client: DatagramClient,
    host: string,
    port: number,
    options: WasmnetDatagramSocketOptions,
    bufferedAmount: () => number,
  ) {
    this.#client = client;
    this.remoteAddress = host;
    this.remotePort = port;
    this.#bufferedAmount = bufferedAmount;
    this.#sendBufferLimit = options.sendBufferLimit ?? 1 << 20;
    this.closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.readable = new ReadableStream<ReceivedDatagram>({
      start: (controller) => {
        this.#readController = controller;
      },
      cancel: () => {
        this.#readableDone = true;
      },
    }, { highWaterMark: options.readableHighWaterMark ?? 256 });
    this.writable = new WritableStream<DatagramMessage | StreamChunk>({
      start: (controller) => {
        this.#writeController = controller;
      },
      write: async (chunk) => {
        await this.opened;
        const id = this.#id!;
        const message = isMessage(chunk) ? chunk : { data: chunk };
        const sent = message.remoteAddress === undefined
          ? this.#client.send(id, message.data)
          : this.#client.sendTo(id, message.remoteAddress, message.remotePort ?? 0, message.data);
        if (!sent) throw closedError(id);
        while (!this.#ended && this.#bufferedAmount() > this.#sendBufferLimit) {
          await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
        }
      },
    }, { highWaterMark: options.writableHighWaterMark ?? 16 });
    this.opened = client.connectUdp(host, port).then(({ id, port: localPort }) => {
      this.#id = id;
      client.onData(id, (data) => this.#receive(data, host, port));
      client.onDataFrom(id, (data, addr, fromPort) => this.#receive(data, addr, fromPort));
      client.onClose(id, (error) => this.#onClosed(error));
      return {
        readable: this.readable,
        writable: this.writable,
        remoteAddress: host,
        remotePort: port,
        localPort,
      };
    }, (error: WasmnetError) => {
      this.#onClosed(error);
      throw error;
    });
    // Callers may watch only one of the two; neither should surface as an unhandled rejection.
    this.opened.catch(() => {});
    this.closed.catch(() => {});
  }

  /** Closes the socket; datagrams already in the readable stay readable. Resolves once closed; never rejects. */
  async close(): Promise<void> {
    this.#closing = true;
    try {
      await this.opened;
    } catch {
      return;
    }
    await this.#client.close(this.#id!);
    await this.closed.catch(() => {});
  }

  #receive(data: Uint8Array, remoteAddress: string, remotePort: number): void {
    if (this.#readableDone) return;
    if ((this.#readController.desiredSize ?? 0) <= 0) {
      this.dropped++;
      return;
    }
    this.#readController.enqueue({ data, remoteAddress, remotePort });
  }

  #onClosed(error?: WasmnetError): void {
    if (this.#ended) return;
    this.#ended = true;
    // Errors on an open UDP socket are about single datagrams; after our own close() they are not a failure.
    const failure = this.#closing && this.#id !== undefined ? undefined : error;
    const reason = failure ?? closedError(this.#id ?? 0);
    this.#writeController.error(reason);
    if (!this.#readableDone) {
      this.#readableDone = true;
      if (failure) this.#readController.error(failure);
      else this.#readController.close();
    }
    if (failure) this.#rejectClosed(failure);
    else this.#resolveClosed();
  }
}

function isMessage(chunk: DatagramMessage | StreamChunk): chunk is DatagramMessage {
  return typeof chunk === "object" && chunk !== null && !ArrayBuffer.isView(chunk) &&
    !(chunk instanceof ArrayBuffer) && "data" in chunk;
}

function closedError(id: SocketId): WasmnetError {
  return new WasmnetError(`wasmnet: datagram socket ${id} is closed`, "closed");
}
