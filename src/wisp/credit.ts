/**
 * Wisp flow control for one TCP stream, client → server, as a pure state machine.
 *
 * The server announces a buffer of `window` packets (CONTINUE on stream 0); the client spends one credit per
 * DATA packet and must stop at zero until a CONTINUE for its stream sets its credit again. The server renews
 * credit as it writes packets to the TCP socket: once `window / 4` packets (at least 1) have been written
 * since the last renewal, it sends CONTINUE(window − packets still buffered).
 *
 * A CONTINUE is absolute (the client replaces its credit with it), so packets the client sent while a
 * CONTINUE was travelling are not counted by the client against the new value. A well-behaved client can
 * therefore have at most `window` packets buffered plus `window` in flight; {@link InboundCredit.accept}
 * treats more than `2 × window` packets buffered as an overrun (the session closes the stream with 0x49).
 * Byte-wise, the TCP stream's own bound applies ({@link TcpStream}'s `BUFFER_FULL`), and no credit is renewed
 * while more than half of it is queued.
 *
 * Written packets are counted from bytes: the stream reports how many bytes are still queued, and each
 * packet's end offset is remembered until it has been written (at most `2 × window` offsets).
 *
 * @module
 */

/** Credit accounting for one stream. */
export class InboundCredit {
  /** Packets the server can buffer for this stream (the value announced on stream 0). */
  readonly window: number;
  readonly #threshold: number;
  /** End offsets (cumulative bytes) of packets not yet fully written, oldest first. */
  #ends: number[] = [];
  #head = 0;
  #acceptedBytes = 0;
  #written = 0;
  #writtenAtGrant = 0;
  #lastGrant: number;

  /** `window`: packets announced per stream (≥ 1). */
  constructor(window: number) {
    if (!Number.isInteger(window) || window < 1) {
      throw new RangeError(`window must be a positive integer, got ${window}`);
    }
    this.window = window;
    this.#threshold = Math.max(1, Math.floor(window / 4));
    this.#lastGrant = window;
  }

  /** Packets received and not yet written. */
  get buffered(): number {
    return this.#ends.length - this.#head;
  }

  /** Packets written so far. */
  get written(): number {
    return this.#written;
  }

  /**
   * One DATA packet of `bytes` bytes arrived. Returns false (and counts nothing) if it overruns the
   * buffer: more than `2 × window` packets would be waiting.
   */
  accept(bytes: number): boolean {
    if (this.buffered >= 2 * this.window) return false;
    this.#acceptedBytes += bytes;
    this.#ends.push(this.#acceptedBytes);
    return true;
  }

  /** The TCP stream still has `queuedBytes` bytes to write: counts the packets that are now written. */
  update(queuedBytes: number): void {
    const writtenBytes = this.#acceptedBytes - queuedBytes;
    while (this.#head < this.#ends.length && this.#ends[this.#head] <= writtenBytes) {
      this.#head++;
      this.#written++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ends.length) {
      this.#ends = this.#ends.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * The CONTINUE value to send now, or undefined if no renewal is due. `bytesRoomy` is false while the
   * stream's byte queue is more than half full (no renewal then).
   */
  renewal(bytesRoomy = true): number | undefined {
    if (!bytesRoomy) return undefined;
    const since = this.#written - this.#writtenAtGrant;
    if (since === 0) return undefined;
    // Renew every `threshold` packets written, or as soon as everything is written if the last grant
    // was too small to reach the threshold (the client may be stalled on it).
    if (since < this.#threshold && !(this.buffered === 0 && this.#lastGrant < this.#threshold)) {
      return undefined;
    }
    this.#writtenAtGrant = this.#written;
    this.#lastGrant = Math.max(0, this.window - this.buffered);
    return this.#lastGrant;
  }
}
