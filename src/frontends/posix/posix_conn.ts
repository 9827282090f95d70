/**
 * One TCP connection with POSIX call semantics for the POSIX socket proxy: the program pulls bytes with
 * `recv` (which waits while nothing is there), and `send` answers once its bytes are handed to the kernel,
 * so a blocking `send` blocks exactly as long as the network pushes back.
 *
 * Bound: at most `maxBuffered` received bytes wait for `recv`; while the buffer is full the connection is
 * not read, so the kernel's receive window pushes back on the peer.
 *
 * @module
 */

import { Errno } from "./posix_codec.ts";

/** Default bound of received bytes waiting for `recv`, per connection. */
export const DEFAULT_RECV_BUFFER_BYTES = 256 * 1024;

const READ_CHUNK = 64 * 1024;

/** How a `recv` waits. */
export interface RecvMode {
  /** `MSG_PEEK`: leave the bytes in the buffer. */
  peek: boolean;
  /** `MSG_WAITALL`: wait for `length` bytes (or the end of the stream). */
  waitAll: boolean;
  /** Non-blocking socket or `MSG_DONTWAIT`: `EAGAIN` instead of waiting. */
  nonblocking: boolean;
}

/** A connected TCP socket as the POSIX proxy sees it. */
export class PosixConn {
  readonly conn: Deno.TcpConn;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #eof = false;
  #errno = 0;
  #closed = false;
  #writeShut = false;
  #writes: Promise<unknown> = Promise.resolve();
  #changed: (() => void)[] = [];
  #room: (() => void) | undefined;
  readonly #maxBuffered: number;

  /** Starts reading `conn` into the receive buffer. */
  constructor(conn: Deno.TcpConn, maxBuffered = DEFAULT_RECV_BUFFER_BYTES) {
    this.conn = conn;
    this.#maxBuffered = maxBuffered;
    this.#readLoop();
  }

  /** Bytes received and not yet taken by `recv`. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Takes up to `length` bytes. Resolves with the bytes (empty at the end of the stream), or with an errno
   * (`EAGAIN` when non-blocking and nothing is there, `ECONNRESET` after a reset). `signal` abandons the wait.
   */
  async recv(length: number, mode: RecvMode, signal: AbortSignal): Promise<Uint8Array | { errno: number }> {
    if (length === 0) return new Uint8Array();
    while (!signal.aborted) {
      const want = mode.waitAll ? length : 1;
      const ended = this.#eof || this.#errno !== 0 || this.#closed;
      if (this.#buffered >= want || (this.#buffered > 0 && (ended || mode.nonblocking))) {
        return this.#take(Math.min(length, this.#buffered), mode.peek);
      }
      if (this.#buffered === 0 && this.#errno !== 0) return { errno: this.#errno };
      if (ended) {
        return this.#buffered > 0
          ? this.#take(Math.min(length, this.#buffered), mode.peek)
          : new Uint8Array();
      }
      if (mode.nonblocking) return { errno: Errno.EAGAIN };
      await this.#nextChange(signal);
    }
    return { errno: Errno.EBADF };
  }

  /** Writes all of `bytes` (after earlier sends); resolves with the count or an errno (`EPIPE`, `ECONNRESET`). */
  send(bytes: Uint8Array): Promise<number | { errno: number }> {
    const result = this.#writes.then(async () => {
      if (this.#closed || this.#writeShut) return { errno: Errno.EPIPE };
      if (this.#errno !== 0) return { errno: this.#errno };
      try {
        let rest = bytes;
        while (rest.length > 0) rest = rest.subarray(await this.conn.write(rest));
        return bytes.length;
      } catch (err) {
        return { errno: err instanceof Deno.errors.ConnectionReset ? Errno.ECONNRESET : Errno.EPIPE };
      }
    });
    this.#writes = result;
    return result;
  }

  /** `shutdown`: `SHUT_RD` ends what `recv` sees, `SHUT_WR` sends FIN after queued sends. */
  shutdown(read: boolean, write: boolean): void {
    if (read) {
      this.#eof = true;
      this.#chunks = [];
      this.#buffered = 0;
      this.#wake();
    }
    if (write && !this.#writeShut) {
      this.#writeShut = true;
      this.#writes = this.#writes.then(() => this.conn.closeWrite().catch(() => {}));
    }
  }

  /** Ends the connection with `errno` (e.g. `ETIMEDOUT` when idle too long): `recv` and `send` report it. */
  fail(errno: number): void {
    if (this.#errno === 0) this.#errno = errno;
    this.close();
  }

  /**
   * How a drain ends the connection: the sends already accepted are written (for up to `ms`), then it
   * closes. Resolves once closed.
   */
  async closeWithin(ms: number): Promise<void> {
    if (this.#closed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([this.#writes.then(() => {}), deadline]);
    clearTimeout(timer);
    this.close();
  }

  /** Closes the connection now; waiting `recv`s see the end of the stream. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#room?.();
    this.#room = undefined;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    this.#wake();
  }

  #take(n: number, peek: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const chunk = this.#chunks[i];
      const part = chunk.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.length;
      if (!peek) {
        if (part.length === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(part.length);
      } else {
        i++;
      }
    }
    if (!peek) {
      this.#buffered -= n;
      if (this.#buffered < this.#maxBuffered) {
        this.#room?.();
        this.#room = undefined;
      }
    }
    return out;
  }

  async #readLoop(): Promise<void> {
    try {
      while (!this.#closed && !this.#eof) {
        if (this.#buffered >= this.#maxBuffered) {
          await new Promise<void>((r) => (this.#room = r));
          continue;
        }
        const buf = new Uint8Array(READ_CHUNK);
        const n = await this.conn.read(buf);
        if (n === null) break;
        if (this.#eof) break; // SHUT_RD while reading: drop
        // A short read is copied so the buffer's bound counts memory, not a 64 KiB buffer per few bytes.
        this.#chunks.push(n < READ_CHUNK / 2 ? buf.slice(0, n) : buf.subarray(0, n));
        this.#buffered += n;
        this.#wake();
      }
    } catch (err) {
      if (!this.#closed) {
        this.#errno = err instanceof Deno.errors.ConnectionReset ? Errno.ECONNRESET : Errno.EIO;
      }
    }
    this.#eof = true;
    this.#wake();
  }

  #nextChange(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.#changed.push(done);
    });
  }

  #wake(): void {
    for (const r of this.#changed.splice(0)) r();
  }
}
