/**
 * One TCP connection with explicit bounds in both directions.
 *
 * - Towards the network: writes are queued, bounded per stream (`maxQueuedBytes`) and, through a shared
 *   {@link WriteBudget}, per session; a write that would pass a bound is refused with `BUFFER_FULL` and the
 *   caller closes the socket (the wasmnet v1 protocol has no way to pause the browser). Bytes queued before
 *   the connection exists are written, in order, once it does. `shutdown()` half-closes after the queue.
 * - From the network: one read at a time (512 bytes growing to 120 KiB while reads come back full), into a
 *   fresh buffer or one reused per stream, and before each read the stream awaits `waitForRoom()`, so a full
 *   WebSocket (or a spent flow-control window) pauses reading the TCP socket and the kernel's receive window
 *   pushes back on the peer.
 *
 * @module
 */

import { WasmnetError } from "../errors.ts";
import { ResetHandle } from "./reset.ts";

/**
 * Largest read: large reads amortise per-message cost on the data path. Kept under glibc's 128 KiB mmap
 * threshold: Deno copies each outgoing WebSocket message into a fresh native buffer, and at 256 KiB those
 * copies were mapped and unmapped per message, a page fault every 4 KiB (docs/benchmarks.md).
 */
export const READ_CHUNK_BYTES = 120 * 1024;

/**
 * Smallest (and first) read. A pending read holds its buffer, so an idle socket costs this much; reads
 * double while they come back full and halve while they come back under 1/8 full (see {@link nextReadSize}).
 */
export const MIN_READ_BYTES = 512;

/**
 * The size of the next read after one of `size` bytes returned `n`: grow on full reads (up to `max`), shrink
 * on tiny ones.
 */
export function nextReadSize(size: number, n: number, max = READ_CHUNK_BYTES): number {
  if (n >= size) return Math.min(size * 2, max);
  if (n < size / 8) return Math.max(size / 2, MIN_READ_BYTES);
  return size;
}

/** At the end of a drain, how long a TCP socket may take to write out what the client already sent ({@link TcpStream.closeWithin}). */
export const DRAIN_FLUSH_MS = 5000;

/** Queued chunks are merged into writes of at most this many bytes (see `TcpStream` batching). */
export const COALESCE_BYTES = 1024 * 1024;

/**
 * Chunks smaller than this are always merged; larger ones already amortise their system call, and writing
 * them as they are saves a copy, unless the queue is behind ({@link CATCH_UP_BYTES}).
 */
export const MERGE_BELOW_BYTES = 32 * 1024;

/** A write queue over this is behind: large chunks are merged too (see `TcpStream` batching). */
export const CATCH_UP_BYTES = 2 * 1024 * 1024;

/**
 * Backlog at which a stream takes the handle that lets a cut end with a reset (one more descriptor while
 * it lasts; src/core/sockets/reset.ts). Below it the kernel holds what was accepted and a cut is a FIN.
 */
export const RESET_ARM_BYTES = 64 * 1024;

/**
 * Default bound of bytes waiting to be written to one TCP socket. Protocol v1 cannot pause the browser, so
 * this is how far an upload may run ahead of its TCP peer: on loopback with two busy cores, a v1 client that
 * keeps its own WebSocket buffer under 4 MiB was measured running 15-30 MiB ahead while the peer's
 * process waited for a core. v2 sockets never get near it (their window is 4 MiB).
 */
export const DEFAULT_MAX_QUEUED_WRITE_BYTES = 64 * 1024 * 1024;

/** Default bound of bytes waiting to be written across one session's TCP sockets (see {@link WriteBudget}). */
export const DEFAULT_SESSION_QUEUED_WRITE_BYTES = 64 * 1024 * 1024;

/**
 * A bound shared by the write queues of several streams (one session's sockets), so the memory a session
 * holds for its TCP peers is bounded however many sockets it opens.
 */
export class WriteBudget {
  #used = 0;

  /** At most `max` bytes queued across every stream that shares this budget. */
  constructor(readonly max: number) {}

  /** Bytes queued now, across the streams. */
  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` from the budget; false (and nothing taken) if that would pass `max`. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.max) return false;
    this.#used += bytes;
    return true;
  }

  /** Returns `bytes` (written to the kernel, or dropped). */
  give(bytes: number): void {
    this.#used -= bytes;
  }
}

/** Callbacks a stream reports to; called in order, `onEnd` exactly once. */
export interface StreamEvents {
  /** Bytes read from the peer. A returned promise delays the next read (backpressure). */
  onData(bytes: Uint8Array): void | Promise<void>;
  /** The stream is over: `error` is undefined for an orderly close (either side). */
  onEnd(error?: WasmnetError): void;
  /** `bytes` queued bytes were handed to the kernel (flow control renews the sender's credit here). */
  onWritten?(bytes: number): void;
}

/** Data-path options of a {@link TcpStream}. */
export interface TcpStreamOptions {
  /**
   * Spare bytes kept in front of every chunk passed to `onData`, in the same buffer, so a framing header can
   * be written there in place (binary wasmnet: 9). The buffer is fresh for each read: the receiver may keep it.
   */
  headroom?: number;
  /**
   * The most bytes the next read may return (flow-control credit). Asked after `waitForRoom`; a read never
   * exceeds it. Must be at least 1 once `waitForRoom` resolves.
   */
  readLimit?: () => number;
  /**
   * Read into one buffer per stream, reused while the read size holds, instead of a fresh buffer per read:
   * no allocation and no garbage on the data path. Only for receivers that are done with the chunk when
   * `onData` returns (the wasmnet session: Deno's `WebSocket.send` and `toBase64` copy synchronously).
   */
  reuseBuffer?: boolean;
  /** A session-wide bound on queued writes, checked after this stream's own (`BUFFER_FULL` past either). */
  budget?: WriteBudget;
  /** The largest read (default {@link READ_CHUNK_BYTES}). */
  maxReadBytes?: number;
}

/** A TCP connection that may not exist yet: writes before `attach` are queued and flushed after. */
export class TcpStream {
  #conn: Deno.Conn | undefined;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Taken once a backlog builds (src/core/sockets/reset.ts); null when the runtime offers none. */
  #reset: ResetHandle | null | undefined;
  #writing = false;
  #closing = false;
  #ended = false;
  /** Half-closed: no more writes; the write side is shut once the queue is written. */
  #writeShut = false;
  #drained: (() => void)[] = [];
  /** Waiting for the stream to end (see {@link closeWithin}). */
  #endWaiters: (() => void)[] = [];
  #mergeBuffer: Uint8Array | undefined;
  readonly #maxQueuedBytes: number;
  readonly #events: StreamEvents;
  readonly #waitForRoom: () => Promise<void> | void;
  readonly #headroom: number;
  readonly #readLimit: (() => number) | undefined;
  readonly #reuseBuffer: boolean;
  readonly #budget: WriteBudget | undefined;
  readonly #maxRead: number;

  /** `waitForRoom` is awaited before each read; it resolves when the reader's side can take more. */
  constructor(
    events: StreamEvents,
    waitForRoom: () => Promise<void> | void,
    maxQueuedBytes = DEFAULT_MAX_QUEUED_WRITE_BYTES,
    options: TcpStreamOptions = {},
  ) {
    this.#events = events;
    this.#waitForRoom = waitForRoom;
    this.#maxQueuedBytes = maxQueuedBytes;
    this.#headroom = options.headroom ?? 0;
    this.#readLimit = options.readLimit;
    this.#reuseBuffer = options.reuseBuffer ?? false;
    this.#budget = options.budget;
    this.#maxRead = Math.max(
      MIN_READ_BYTES,
      Math.min(options.maxReadBytes ?? READ_CHUNK_BYTES, READ_CHUNK_BYTES),
    );
  }

  /** Bytes accepted but not yet written to the kernel. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** True once the connection is attached and not yet ended. */
  get isOpen(): boolean {
    return this.#conn !== undefined && !this.#ended;
  }

  /** Gives the stream its connection: flushes queued writes and starts reading. */
  attach(conn: Deno.Conn): void {
    if (this.#ended) {
      conn.close();
      return;
    }
    this.#conn = conn;
    // A relay must not add Nagle's delay: the client already chose how to batch its writes.
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    this.#pump();
    if (this.#closing) this.#closeWhenDrained();
    else this.#readLoop();
  }

  /** Queues bytes for the peer. Returns an error (and queues nothing) when the bound would be passed. */
  write(bytes: Uint8Array): WasmnetError | undefined {
    if (this.#ended || this.#closing) return new WasmnetError("SEND_FAILED", "socket is closing");
    if (this.#writeShut) return new WasmnetError("SEND_FAILED", "socket is shut down for writing");
    if (bytes.length === 0) return undefined;
    if (this.#queuedBytes + bytes.length > this.#maxQueuedBytes) {
      return new WasmnetError(
        "BUFFER_FULL",
        `more than ${this.#maxQueuedBytes} bytes are waiting to be written to this socket (the peer is not reading)`,
      );
    }
    if (this.#budget && !this.#budget.take(bytes.length)) {
      return new WasmnetError(
        "BUFFER_FULL",
        `more than ${this.#budget.max} bytes are waiting to be written to this session's sockets`,
      );
    }
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) this.#pump(); // else the running pump takes it (no promise per queued chunk)
    return undefined;
  }

  /**
   * Half-close: what was accepted is written, then the write side is shut (the peer reads end-of-stream);
   * reading goes on until the peer closes too. Later writes are refused with `SEND_FAILED`.
   */
  shutdown(): void {
    if (this.#closing || this.#ended || this.#writeShut) return;
    this.#writeShut = true;
    if (this.#conn && this.#queue.length === 0 && !this.#writing) this.#shutWrite();
  }

  #shutWrite(): void {
    this.#conn?.closeWrite().catch(() => {}); // the peer may already be gone; reading reports that
  }

  /** Orderly close: what was accepted is written first, then the socket closes and `onEnd()` fires. */
  close(): void {
    if (this.#closing || this.#ended) return;
    this.#closing = true;
    if (this.#conn) this.#closeWhenDrained();
  }

  /**
   * Orderly close bounded in time (how a drain ends a session): what was accepted is written for up to `ms`,
   * then the socket closes (a FIN, not a reset); whatever is still queued at `ms` is dropped. A stream that
   * is not connected yet has nothing to write and ends at once. Resolves once the stream has ended.
   */
  closeWithin(ms: number): Promise<void> {
    if (this.#ended) return Promise.resolve();
    const ended = new Promise<void>((resolve) => this.#endWaiters.push(resolve));
    if (!this.#conn) {
      this.destroy();
      return ended;
    }
    const timer = setTimeout(() => this.destroy(), ms);
    this.close();
    return ended.finally(() => clearTimeout(timer));
  }

  /** Immediate close: queued bytes are dropped. `onEnd` fires with `error` (or none). */
  destroy(error?: WasmnetError): void {
    this.#end(error);
  }

  async #closeWhenDrained(): Promise<void> {
    if (this.#queuedBytes > 0) await new Promise<void>((r) => this.#drained.push(r));
    this.#end();
  }

  async #pump(): Promise<void> {
    const conn = this.#conn;
    if (!conn || this.#writing) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#ended) {
        // A backlog (or, below, a partial write) means the peer is slower than the client: take the handle
        // that can end the stream with a reset if it is cut (between writes: Deno refuses during one).
        if (this.#queuedBytes >= RESET_ARM_BYTES && this.#reset === undefined) {
          this.#reset = ResetHandle.open(conn);
        }
        const head = this.#coalesce();
        let rest = head;
        while (rest.length > 0) {
          const n = await conn.write(rest);
          // A partial write: the kernel's buffer is full and the next write waits for the peer.
          if (n < rest.length && this.#reset === undefined) this.#reset = ResetHandle.open(conn);
          rest = rest.subarray(n);
        }
        this.#queue.shift();
        this.#queuedBytes -= head.length;
        this.#budget?.give(head.length);
        this.#events.onWritten?.(head.length);
      }
    } catch (err) {
      if (!this.#ended) {
        this.#end(new WasmnetError("NETWORK_ERROR", `write failed: ${(err as Error).message}`));
      }
    } finally {
      this.#writing = false;
    }
    if (this.#queue.length === 0) {
      this.#mergeBuffer = undefined; // an idle socket holds no merge buffer
      if (this.#writeShut && !this.#ended && !this.#closing) this.#shutWrite();
      for (const r of this.#drained.splice(0)) r();
    }
  }

  /**
   * Batching where it pays: queued chunks are merged into one write of at most {@link COALESCE_BYTES}, one
   * copy instead of one system call (and one event-loop turn) each. Small chunks (a chatty client) are always
   * merged; large ones only once the queue is over {@link CATCH_UP_BYTES}, when the writer has fallen behind
   * the WebSocket (which hands over several messages per turn) and must write more per turn to catch up.
   * Returns the new head of the queue.
   */
  #coalesce(): Uint8Array {
    const q = this.#queue;
    const behind = this.#queuedBytes > CATCH_UP_BYTES;
    const mergeable = (chunk: Uint8Array) => behind || chunk.length < MERGE_BELOW_BYTES;
    if (q.length < 2 || !mergeable(q[0])) return q[0];
    let count = 0;
    let total = 0;
    while (count < q.length && mergeable(q[count]) && total + q[count].length <= COALESCE_BYTES) {
      total += q[count++].length;
    }
    if (count < 2) return q[0];
    // One buffer per stream, reused while the queue stays non-empty (the write before this one has completed).
    this.#mergeBuffer ??= new Uint8Array(COALESCE_BYTES);
    const merged = this.#mergeBuffer.subarray(0, total);
    let at = 0;
    for (const chunk of q.splice(0, count, merged)) {
      merged.set(chunk, at);
      at += chunk.length;
    }
    return merged;
  }

  async #readLoop(): Promise<void> {
    const conn = this.#conn!;
    const head = this.#headroom;
    let size = MIN_READ_BYTES;
    let buf = new Uint8Array(0);
    try {
      while (!this.#ended && !this.#closing) {
        const room = this.#waitForRoom();
        if (room) await room; // no extra turn of the event loop when there is room already
        if (this.#ended || this.#closing) return;
        const want = this.#readLimit ? Math.max(1, Math.min(size, this.#readLimit())) : size;
        // A reused buffer is sized to the read size (idle sockets keep a small one); fresh otherwise.
        if (!this.#reuseBuffer || buf.length !== head + size) {
          buf = new Uint8Array(head + (this.#reuseBuffer ? size : want));
        }
        const n = await conn.read(buf.subarray(head, head + want));
        if (n === null) break;
        size = nextReadSize(size, n === want ? size : n, this.#maxRead); // filling its credit counts as full
        const taken = this.#events.onData(buf.subarray(head, head + n));
        if (taken) await taken;
      }
    } catch (err) {
      if (this.#ended || this.#closing) return;
      this.#end(new WasmnetError("NETWORK_ERROR", `read failed: ${(err as Error).message}`));
      return;
    }
    if (this.#closing) return;
    // The peer closed its side: finish writing what was accepted, then close.
    this.#closing = true;
    await this.#closeWhenDrained();
  }

  #end(error?: WasmnetError): void {
    if (this.#ended) return;
    this.#ended = true;
    // Bytes accepted from the client and not written: the stream is cut, and the peer must see a reset.
    const cut = this.#queuedBytes > 0;
    if (cut) this.#reset?.reset();
    this.#queue = [];
    this.#budget?.give(this.#queuedBytes);
    this.#queuedBytes = 0;
    for (const r of this.#drained.splice(0)) r();
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    if (!cut) this.#reset?.release();
    this.#reset = undefined;
    this.#events.onEnd(error);
    for (const r of this.#endWaiters.splice(0)) r();
  }
}
