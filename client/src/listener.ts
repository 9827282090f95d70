/**
 * `WasmnetListener`: a TCP listener on the server as a stream of accepted {@link WasmnetSocket}s, the
 * inbound half of the streams API (`client.openListener(addr, port)`), so a program that serves
 * connections uses the same socket shape as one that opens them.
 *
 * @module
 */

import { WasmnetError } from "./errors.ts";
import type { SocketId } from "./wire.ts";
import type { WasmnetSocket } from "./socket.ts";

/** A listener bound on the server; its accepted connections arrive as stream sockets. */
export class WasmnetListener implements AsyncIterable<WasmnetSocket> {
  /** The listener's socket id (usable with the callback API, e.g. `client.close(id)`). */
  readonly id: SocketId;
  /** The port the server bound (the one asked for, or the one it picked for port 0). */
  readonly port: number;
  /**
   * Accepted connections, in order, each already open. Ends when the listener closes; errors if it fails.
   * Connections not taken wait here (the server's `max_connections` bounds how many).
   */
  readonly accepted: ReadableStream<WasmnetSocket>;
  /** Resolves when the listener has closed normally; rejects with the reason otherwise. */
  readonly closed: Promise<void>;

  readonly #close: () => Promise<void>;
  #reader: ReadableStreamDefaultReader<WasmnetSocket> | undefined;

  /** Made by `client.openListener`; `closeListener` asks the server to close it. */
  constructor(
    id: SocketId,
    port: number,
    accepted: ReadableStream<WasmnetSocket>,
    closed: Promise<void>,
    closeListener: () => Promise<void>,
  ) {
    this.id = id;
    this.port = port;
    this.accepted = accepted;
    this.closed = closed;
    this.closed.catch(() => {});
    this.#close = closeListener;
  }

  /** The next accepted connection; rejects once the listener is closed (or failed) and none are left. */
  async accept(): Promise<WasmnetSocket> {
    this.#reader ??= this.accepted.getReader();
    const { value, done } = await this.#reader.read();
    if (done) throw new WasmnetError(`wasmnet: listener ${this.id} is closed`, "closed");
    return value;
  }

  /** `for await (const socket of listener)`: every accepted connection until the listener closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<WasmnetSocket> {
    for (;;) {
      let socket: WasmnetSocket;
      try {
        socket = await this.accept();
      } catch (err) {
        if ((err as WasmnetError).kind === "closed") return;
        throw err;
      }
      yield socket;
    }
  }

  /** Stops accepting; connections already accepted stay open. Resolves once the server confirms. */
  close(): Promise<void> {
    return this.#close();
  }
}
