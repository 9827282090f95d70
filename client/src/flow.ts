/**
 * Flow control (wasmnet protocol v2) on the client: per-socket credit both ways, as plain counters. The
 * server grants the client a send window (`credit` events); the client grants the server a receive window
 * (`credit` requests) as the page consumes data: for a stream socket, as its ReadableStream is pulled, so a
 * page that stops reading stops the bytes coming. See docs/protocol.md, "Flow control (v2)".
 *
 * @module
 */

import { INITIAL_WINDOW } from "@wasmnet/protocol";

/** The wire constants of v2, from the protocol package: the subprotocol name and every socket's first window. */
export { INITIAL_WINDOW, PROTOCOL_V2 } from "@wasmnet/protocol";

/** Default receive window the client grants per socket (1 MiB). */
export const DEFAULT_RECEIVE_WINDOW = 1024 * 1024;

/**
 * One socket's credit on the client. Sends past the server's grant wait in `queue` (the page's memory; a
 * stream socket's writable stops accepting once this plus the WebSocket buffer passes its limit).
 */
export class ClientFlow {
  /** The receive window this client grants (at least {@link INITIAL_WINDOW}). */
  readonly window: number;
  /** Bytes the server still lets us send. */
  sendCredit = INITIAL_WINDOW;
  /** Bytes waiting for send credit, in order. */
  readonly queue: Uint8Array[] = [];
  /** Total of {@link queue}. */
  queuedBytes = 0;
  #pendingGrant = 0;

  /** `window` is the receive window to grant the server (raised to {@link INITIAL_WINDOW} if smaller). */
  constructor(window = DEFAULT_RECEIVE_WINDOW) {
    this.window = Math.max(INITIAL_WINDOW, Math.min(window, 0xffff_ffff));
  }

  /** The grant that takes the server from the initial window to ours (send it once the socket is open). */
  opening(): number {
    return this.window - INITIAL_WINDOW;
  }

  /** Of `data`, what may be sent now (within credit, in order); the rest is queued. */
  take(data: Uint8Array): Uint8Array[] {
    this.queue.push(data);
    this.queuedBytes += data.length;
    return this.#release();
  }

  /** The server granted `bytes`: returns queued chunks that may go now. */
  granted(bytes: number): Uint8Array[] {
    this.sendCredit += bytes;
    return this.#release();
  }

  /** The page consumed `bytes`: returns a grant to send now (0 until a quarter window has been consumed). */
  consumed(bytes: number): number {
    this.#pendingGrant += bytes;
    if (this.#pendingGrant < this.window / 4) return 0;
    const grant = this.#pendingGrant;
    this.#pendingGrant = 0;
    return grant;
  }

  /** Everything queued, credit ignored (the server turned out not to speak v2). */
  flushAll(): Uint8Array[] {
    const all = this.queue.splice(0);
    this.queuedBytes = 0;
    return all;
  }

  #release(): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.queue.length && this.sendCredit > 0) {
      const head = this.queue[0];
      const n = Math.min(head.length, this.sendCredit);
      out.push(n === head.length ? head : head.subarray(0, n));
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queuedBytes -= n;
      this.sendCredit -= n;
    }
    return out;
  }
}
