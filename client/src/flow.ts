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

/** Default receive window the client grants per socket at first (1 MiB). */
export const DEFAULT_RECEIVE_WINDOW = 1024 * 1024;

/** Default largest window autotuning grows a socket's receive window to (8 MiB). */
export const DEFAULT_MAX_RECEIVE_WINDOW = 8 * 1024 * 1024;

/** Options of {@link ClientFlow}. */
export interface ClientFlowOptions {
  /** The receive window granted at first (raised to {@link INITIAL_WINDOW} if smaller). */
  window?: number;
  /** The most autotuning may grow it to (default the larger of 8 MiB and `window`). */
  maxWindow?: number;
  /** The session's round-trip estimate in ms, undefined until one is known (no growth before). */
  rttMs?: () => number | undefined;
  /** The clock, in ms (tests pass their own). */
  now?: () => number;
}

/**
 * One socket's credit on the client. Sends past the server's grant wait in `queue` (the page's memory; a
 * stream socket's writable stops accepting once this plus the WebSocket buffer passes its limit).
 *
 * Receive-window autotuning (as TCP's receive-buffer autotuning, Linux `tcp_rcv_space_adjust`, and HTTP/2's
 * BDP estimation do): the page's consumption is counted per round trip (the client's estimate: the
 * shortest connect-to-`connected` time on the session, an upper bound of the page-server round trip).
 * When a round trip's worth comes to at least 3/4 of the window, the window, not the reader, limits the
 * rate (a sender allowed `window` bytes in flight delivers about `window` per round trip), so the window
 * grows fourfold, up to `maxWindow`, and the extra is granted at once. A reader that reads slowly consumes
 * less per round trip and never grows it; the memory bound per socket is `maxWindow`.
 */
export class ClientFlow {
  /** The receive window this client grants now (at least {@link INITIAL_WINDOW}; grows to {@link maxWindow}). */
  window: number;
  /** The most the window grows to. */
  readonly maxWindow: number;
  /** Bytes the server still lets us send. */
  sendCredit = INITIAL_WINDOW;
  /** Bytes waiting for send credit, in order. */
  readonly queue: Uint8Array[] = [];
  /** Total of {@link queue}. */
  queuedBytes = 0;
  #pendingGrant = 0;
  readonly #rttMs: () => number | undefined;
  readonly #now: () => number;
  /** Start of the current measuring interval and bytes consumed in it. */
  #epochStart = -1;
  #epochBytes = 0;

  /** A number is the first window (as `{ window }`); see {@link ClientFlowOptions}. */
  constructor(options: number | ClientFlowOptions = {}) {
    const o = typeof options === "number" ? { window: options } : options;
    this.window = Math.max(INITIAL_WINDOW, Math.min(o.window ?? DEFAULT_RECEIVE_WINDOW, 0xffff_ffff));
    this.maxWindow = Math.max(this.window, Math.min(o.maxWindow ?? DEFAULT_MAX_RECEIVE_WINDOW, 0xffff_ffff));
    this.#rttMs = o.rttMs ?? (() => undefined);
    this.#now = o.now ?? (() => performance.now());
  }

  /** The grant that takes the server from the initial window to ours (send it once the socket is open). */
  opening(): number {
    return this.window - INITIAL_WINDOW;
  }

  /** Of `data`, what may be sent now (within credit, in order, to be sent before returning); the rest is queued. */
  take(data: Uint8Array): Uint8Array[] {
    this.queue.push(data);
    this.queuedBytes += data.length;
    const now = this.#release();
    // What stays queued is copied: the caller may reuse its buffer once send() returns (a WASI program's
    // memory, a reused chunk); what goes now is copied by the send itself.
    const last = this.queue.length - 1;
    if (last >= 0 && this.queue[last].buffer === data.buffer) this.queue[last] = this.queue[last].slice();
    return now;
  }

  /** The server granted `bytes`: returns queued chunks that may go now. */
  granted(bytes: number): Uint8Array[] {
    this.sendCredit += bytes;
    return this.#release();
  }

  /**
   * The page consumed `bytes`: returns a grant to send now (0 until a quarter window has been consumed, or
   * the window grew).
   */
  consumed(bytes: number): number {
    this.#pendingGrant += bytes;
    const grown = this.#autotune(bytes);
    if (this.#pendingGrant < this.window / 4 && grown === 0) return 0;
    const grant = this.#pendingGrant + grown;
    this.#pendingGrant = 0;
    return grant;
  }

  /** Counts `bytes` in this round trip's interval; at its end, grows the window if it was the limit. */
  #autotune(bytes: number): number {
    const now = this.#now();
    if (this.#epochStart < 0) this.#epochStart = now;
    this.#epochBytes += bytes;
    const rtt = this.#rttMs();
    const elapsed = now - this.#epochStart;
    if (rtt === undefined || elapsed < rtt) return 0;
    // Bytes per round trip over the interval (longer than one when consumption comes in bursts).
    const limited = this.#epochBytes * rtt / elapsed >= this.window * 3 / 4;
    this.#epochStart = now;
    this.#epochBytes = 0;
    if (!limited || this.window >= this.maxWindow) return 0;
    // Four times, not twice: the window that limited delivered no more than itself per round trip, so the
    // link's real rate is unknown above it; doubling would take one more round trip at half speed per step.
    const next = Math.min(this.maxWindow, this.window * 4);
    const extra = next - this.window;
    this.window = next;
    return extra;
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
