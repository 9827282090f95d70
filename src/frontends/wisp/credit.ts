/**
 * Wisp flow control for one TCP stream, client → server, as a pure state machine.
 *
 * The server announces a buffer of `window` packets (CONTINUE on stream 0); the client spends one credit per
 * DATA packet and must stop at zero until a CONTINUE for its stream sets its credit again. The server renews
 * credit as it writes packets to the TCP socket: once `window / 4` packets (at least 1) have been written
 * since the last renewal and at least as many packets as the previous CONTINUE allowed have arrived since it
 * was sent, it sends CONTINUE(window − packets still buffered), and nothing if that is not positive.
 *
 * A CONTINUE is absolute (the client replaces its credit with it), so packets the client sent while a
 * CONTINUE was travelling are not counted by the client against the new value, and a client that handles
 * several CONTINUEs at once (wisp-js flushes its queue after each) spends them all. Renewing every
 * `window / 4` packets written regardless let several CONTINUEs be in flight at once, and a fast wisp-js
 * upload passed `2 × window` packets (closed with 0x49). One grant at a time keeps a client within `window`
 * packets buffered plus `window` in flight (checked by simulation in `credit_test.ts`, not a proof), at the
 * cost of at most one round trip without credit per `window` packets. It cannot stall: until the grant's
 * packets have arrived, the client still holds credit from it. {@link InboundCredit.accept} treats more
 * than `2 × window` packets buffered as an overrun (the session closes the stream with 0x49).
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
  /** Packets accepted in all, and when the last CONTINUE was sent. */
  #accepted = 0;
  #acceptedAtGrant = 0;
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
    this.#accepted++;
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
   *
   * One grant at a time (see the module doc): none until as many packets as the last grant allowed have
   * arrived since it was sent. A grant of 0 is not sent: packets are still buffered, and writing them
   * brings the next renewal.
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
    // One grant at a time: the next only once as many packets as the last grant allowed have arrived since.
    if (this.#accepted - this.#acceptedAtGrant < this.#lastGrant) return undefined;
    const grant = this.window - this.buffered;
    if (grant <= 0) return undefined;
    this.#writtenAtGrant = this.#written;
    this.#acceptedAtGrant = this.#accepted;
    this.#lastGrant = grant;
    return grant;
  }
}
