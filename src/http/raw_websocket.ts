/**
 * The server's own WebSocket over an accepted TCP connection, so every resource a client can make it hold
 * has a bound enforced as bytes arrive (hand-written because Deno's WebSocket, the only one that runs on
 * Deno's HTTP server, accumulates a fragmented message without any bound, and no well-kept library runs
 * on a `Deno.Conn`; see docs/security.md):
 *
 * - one message, however it is fragmented: a frame whose length would pass `maxMessageBytes` is refused
 *   from its header (close 1009) before its payload is read;
 * - replies: everything sent is queued (frames up to 128 KiB packed into shared 256 KiB chunks: a burst of tiny
 *   replies costs its bytes, not an allocation each) and charged its size plus
 *   {@link QUEUED_FRAME_OVERHEAD}; while the queue
 *   holds more than `readPauseBytes` the socket stops reading the client (a request flood is throttled by
 *   its own unread replies), and a client throttled for `floodCloseMs` is closed with
 *   {@link REPLY_FLOOD_CLOSE_CODE};
 * - a client that stops reading: a write that makes no progress for `sendTimeoutMs` drops the connection;
 * - the close handshake: the peer gets {@link CLOSE_HANDSHAKE_MS} to answer a close frame;
 * - a client that vanished without a FIN: pinged after {@link KEEPALIVE_MS} of silence, dropped when the ping goes unanswered as long.
 *
 * @module
 */

import {
  CloseCode,
  closeCodeOf,
  closePayload,
  encodeServerFrame,
  type FrameHeader,
  isFrameError,
  Opcode,
  parseClientFrameHeader,
  serverFrameSize,
  unmask,
  writeServerFrame,
} from "./ws_frames.ts";

/** Close code for a session throttled too long by its own unread replies ("429" as in HTTP). */
export const REPLY_FLOOD_CLOSE_CODE = 4429;

/** Bytes charged per queued frame on top of its length, so a flood of tiny replies is bounded by count too. */
export const QUEUED_FRAME_OVERHEAD = 16;

/** A client silent this long is pinged; the ping unanswered as long, dropped (Deno's WebSocket default, 30 s). */
export const KEEPALIVE_MS = 30_000;

/** How long the peer has to answer our close frame before the connection is dropped. */
export const CLOSE_HANDSHAKE_MS = 2000;

/** Bounds of one {@link RawWebSocket}. */
export interface RawWebSocketOptions {
  /** Largest message, summed over its fragments (close 1009 once passed). */
  maxMessageBytes: number;
  /** Queued send bytes above which the socket stops reading the client. */
  readPauseBytes: number;
  /** A client kept from being read this long (its replies unread) is closed with 4429. */
  floodCloseMs: number;
  /** A write that makes no progress this long drops the connection (the client stopped reading). */
  sendTimeoutMs: number;
  /** Silence before a ping; twice this, the connection is dropped. Default {@link KEEPALIVE_MS}. */
  keepaliveMs?: number;
}

const READ_CHUNK = 256 * 1024;
/** Longest stretch of message handling before the read loop yields to other connections. */
const TURN_MS = 2;
/** Most bytes read and dropped after a refused frame, waiting for the peer's close. */
const DISCARD_BYTES = 1024 * 1024;
/** Written send chunks kept per socket for reuse, while it is sending (dropped when its queue is idle). */
const SPARE_CHUNKS = 2;
/** Largest chunk a burst of replies grows to. */
const REPLY_CHUNK = 64 * 1024;
/** Frames from this size on (a socket's data, not a reply) are written into a full CHUNK. */
const DATA_FRAME = 16 * 1024;
/** Smallest read buffer and send chunk (an idle session holds this much, not the largest). */
const MIN_BUFFER = 4 * 1024;
/** Frames up to this size are copied into a shared chunk; larger ones are queued as they are. */
const SMALL_FRAME = 128 * 1024;
/** Size of a shared chunk of small frames (also the most small-frame bytes handed to one `write`). */
const CHUNK = 256 * 1024;

/** One buffer waiting to be written: a large frame, or a chunk of small ones (`len` bytes used). */
interface Pending {
  buf: Uint8Array;
  len: number;
  charged: number;
  /** A data chunk of CHUNK bytes, kept for reuse once written. */
  reusable?: boolean;
}
// ignoreBOM: a leading U+FEFF is part of the message (Deno's WebSocket keeps it too), not stripped.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/**
 * One server-side WebSocket. Set the `on*` callbacks, then {@link start} once the 101 response is written.
 * `send` copies its argument before returning (callers may reuse their buffers).
 */
export class RawWebSocket {
  /** The socket is open (called once, from {@link start}). */
  onopen: (() => void) | undefined;
  /** One whole message: text as a string, binary as bytes. */
  onmessage: ((data: string | Uint8Array) => void) | undefined;
  /** The connection is gone (called once), with the close code seen: the peer's, else ours, else 1006. */
  onclose: ((code: number) => void) | undefined;

  readonly #conn: Deno.Conn;
  readonly #options: RawWebSocketOptions;
  #pending: Uint8Array;
  #queue: Pending[] = [];
  /** The last entry of the queue still takes small frames (not yet handed to the writer). */
  #tailOpen = false;
  /** Size of the next send chunk (adapts between MIN_BUFFER and CHUNK). */
  #chunkSize = MIN_BUFFER;
  /** Written chunks of CHUNK bytes kept for reuse (at most SPARE_CHUNKS). */
  #spare: Uint8Array[] = [];
  #queued = 0;
  #writing = false;
  #writeStarted = 0;
  #drained: (() => void) | undefined;
  #closeSent = false;
  #sentCode = 0;
  #peerCode = 0;
  #closeAt = 0;
  #done = false;
  #pausedSince = 0;
  /** When the client last sent anything, and when it was last pinged for being silent. */
  #heardAt = performance.now();
  #pingedAt = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Wraps `conn`; `head` holds bytes the HTTP parser read past the request (the first frames). */
  constructor(conn: Deno.Conn, head: Uint8Array, options: RawWebSocketOptions) {
    this.#conn = conn;
    this.#pending = head;
    this.#options = options;
  }

  /** Bytes queued and not yet written (plus the per-frame overhead). */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Starts reading; fires `onopen`. */
  start(): void {
    // One coarse timer per socket watches for stalled writes, throttling and the close handshake.
    this.#timer = setInterval(() => this.#watch(), 500);
    Deno.unrefTimer(this.#timer);
    this.onopen?.();
    this.#readLoop().catch(() => {}).finally(() => this.#finish());
  }

  /**
   * The upgrade failed before {@link start} (its 101 could not be written): drops the connection and calls
   * `onclose` (1006) without `onopen`, so a session set up on this socket hears that it ended. No-op once
   * started (the read loop reports the close then).
   */
  abandon(): void {
    if (this.#timer !== undefined) return;
    this.#abort();
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.(1006);
  }

  /** Queues one message (string: text frame; bytes: binary frame). Dropped once closing. */
  send(message: string | Uint8Array): void {
    if (this.#closeSent || this.#done) return;
    const bytes = typeof message === "string" ? encoder.encode(message) : message;
    this.#enqueue(typeof message === "string" ? Opcode.text : Opcode.binary, bytes);
  }

  /** Starts the close handshake (code 1000 by default); the connection ends when the peer answers. */
  close(code: number = CloseCode.normal, reason = ""): void {
    if (this.#closeSent || this.#done) return;
    this.#enqueue(Opcode.close, closePayload(code, reason));
    this.#closeSent = true;
    this.#sentCode = code;
    this.#closeAt = performance.now();
  }

  /**
   * A send chunk of at least `size` bytes: a written one reused when there is one (a steady download
   * writes into the same few buffers instead of fresh pages), else a new one.
   */
  #takeChunk(size: number): Uint8Array {
    if (size === CHUNK && this.#spare.length > 0) return this.#spare.pop()!;
    return new Uint8Array(size);
  }

  /** Queues one frame (a copy of `payload`: callers may reuse their buffers). */
  #enqueue(opcode: number, payload: Uint8Array): void {
    const size = serverFrameSize(payload.length);
    const charged = size + QUEUED_FRAME_OVERHEAD;
    if (size <= SMALL_FRAME) {
      let tail = this.#tailOpen ? this.#queue[this.#queue.length - 1] : undefined;
      if (tail === undefined || tail.buf.length - tail.len < size) {
        // Chunks grow while a burst keeps filling them, from MIN_BUFFER to CHUNK (an idle session that
        // sends one reply allocates a small one).
        if (tail !== undefined) this.#chunkSize = Math.min(REPLY_CHUNK, this.#chunkSize * 2);
        // Data-sized frames go straight to a full chunk (reused while a transfer runs); replies get a
        // chunk that grows with their burst, up to REPLY_CHUNK, and is never kept.
        const data = size >= DATA_FRAME;
        const want = data ? CHUNK : Math.max(this.#chunkSize, size);
        tail = { buf: this.#takeChunk(want), len: 0, charged: 0, reusable: data };
        this.#queue.push(tail);
        this.#tailOpen = true;
      }
      tail.len += writeServerFrame(tail.buf, tail.len, opcode, payload);
      tail.charged += charged;
    } else {
      this.#queue.push({ buf: encodeServerFrame(opcode, payload), len: size, charged });
      this.#tailOpen = false;
    }
    this.#queued += charged;
    if (!this.#writing) this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#done) {
        const entry = this.#queue.shift()!;
        if (this.#queue.length === 0) this.#tailOpen = false; // the writer has it: new frames go elsewhere
        if (entry.len < entry.buf.length / 2) this.#chunkSize = Math.max(MIN_BUFFER, this.#chunkSize / 2);
        this.#writeStarted = performance.now();
        let rest = entry.buf.subarray(0, entry.len);
        while (rest.length > 0) {
          rest = rest.subarray(await this.#conn.write(rest));
          this.#writeStarted = performance.now();
        }
        this.#queued -= entry.charged;
        if (entry.reusable && this.#spare.length < SPARE_CHUNKS) this.#spare.push(entry.buf);
        if (this.#drained && this.#queued <= this.#options.readPauseBytes / 2) {
          const resume = this.#drained;
          this.#drained = undefined;
          resume();
        }
      }
    } catch {
      this.#abort();
    } finally {
      this.#writing = false;
      this.#writeStarted = 0;
    }
  }

  async #readLoop(): Promise<void> {
    const maxMessage = this.#options.maxMessageBytes;
    // The message being assembled: its fragments are written side by side into one buffer that grows by
    // doubling up to the bound, so a message costs its bytes however it is split (a fragment is not an
    // object of its own: a flood of empty or one-byte fragments holds nothing).
    let message = EMPTY;
    let messageBytes = 0;
    let messageOpcode = 0;
    let frame: FrameHeader | undefined;
    /** Where the current frame's payload goes: a slice of `message`, or a control frame's own buffer. */
    let payload: Uint8Array | undefined;
    let filled = 0;
    let buffer = this.#pending;
    this.#pending = EMPTY;
    // The read buffer adapts: it doubles when a read fills it (up to READ_CHUNK) and shrinks to fit when a
    // read uses under a quarter of it, so a session idle after a burst holds little, not READ_CHUNK.
    let chunk = new Uint8Array(MIN_BUFFER);
    let pendingSize = 0;
    let turnStart = performance.now();
    let delivered = 0;
    for (;;) {
      // Parse everything buffered; stop early while the replies it caused are over the bound.
      while (!this.#done) {
        if (this.#queued > this.#options.readPauseBytes) await this.#throttle();
        // Fair share of the event loop: a burst of small messages yields after TURN_MS of work, so one
        // session's flood cannot hold up every other session (a timer, so it also slows the flood).
        if (++delivered % 64 === 0 && performance.now() - turnStart > TURN_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          turnStart = performance.now();
        }
        if (this.#done) return;
        if (frame === undefined) {
          const parsed = parseClientFrameHeader(buffer, maxMessage);
          if (parsed === null) break;
          if (isFrameError(parsed)) return this.#fail(parsed.error, parsed.reason);
          if (parsed.opcode < 0x8) {
            if ((parsed.opcode === Opcode.continuation) !== (messageOpcode !== 0)) {
              return this.#fail(CloseCode.protocolError, "unexpected continuation");
            }
            const needed = messageBytes + parsed.length;
            if (needed > maxMessage) {
              return this.#fail(CloseCode.tooBig, `message larger than ${maxMessage} bytes`);
            }
            if (parsed.opcode !== Opcode.continuation) messageOpcode = parsed.opcode;
            if (needed > message.length) {
              // A whole message in one frame gets exactly its size; a fragmented one doubles.
              const grown = new Uint8Array(
                messageBytes === 0 && parsed.fin
                  ? needed
                  : Math.min(maxMessage, Math.max(needed, 2 * message.length)),
              );
              grown.set(message.subarray(0, messageBytes));
              message = grown;
            }
            payload = message.subarray(messageBytes, needed);
          } else {
            payload = new Uint8Array(parsed.length); // at most 125 bytes
          }
          frame = parsed;
          filled = 0;
          buffer = buffer.subarray(parsed.headerBytes);
        }
        const take = Math.min(buffer.length, payload!.length - filled);
        payload!.set(buffer.subarray(0, take), filled);
        filled += take;
        buffer = buffer.subarray(take);
        if (filled < payload!.length) break;
        unmask(payload!, frame.mask);
        const { opcode, fin } = frame;
        const body = payload!;
        frame = payload = undefined;
        if (opcode >= 0x8) {
          if (!this.#control(opcode, body)) return;
          continue;
        }
        messageBytes += body.length;
        if (!fin) continue;
        // The handler owns what it gets: the buffer itself when it is exactly full, else a copy.
        const whole = messageBytes === message.length && message !== EMPTY
          ? message
          : message.slice(0, messageBytes);
        const kind = messageOpcode;
        message = EMPTY;
        messageBytes = 0;
        messageOpcode = 0;
        if (this.#closeSent) continue; // closing: messages are no longer delivered
        if (kind === Opcode.text) {
          let text: string;
          try {
            text = decoder.decode(whole);
          } catch {
            return this.#fail(CloseCode.invalidData, "text message is not UTF-8");
          }
          this.onmessage?.(text);
        } else {
          this.onmessage?.(whole);
        }
      }
      if (this.#done) return;
      if (pendingSize > 0) {
        chunk = new Uint8Array(pendingSize); // `buffer` is fully parsed: nothing views the old one now
        pendingSize = 0;
      }
      // Unparsed bytes left are a partial header (at most 13): copied out before `chunk` is reused.
      const carry = buffer.length > 0 ? buffer.slice() : undefined;
      const n = await this.#conn.read(chunk);
      if (n === null) return;
      turnStart = this.#heardAt = performance.now();
      if (carry === undefined) buffer = chunk.subarray(0, n);
      else {
        buffer = new Uint8Array(carry.length + n);
        buffer.set(carry);
        buffer.set(chunk.subarray(0, n), carry.length);
      }
      // Resized only after `buffer` (which may view `chunk`) has been taken apart: a fresh one is allocated.
      const resize = n === chunk.length && chunk.length < READ_CHUNK
        ? chunk.length * 2
        : n < chunk.length / 4 && chunk.length > MIN_BUFFER
        ? Math.max(MIN_BUFFER, 2 ** Math.ceil(Math.log2(2 * n + 1))) // back to what the last read needed
        : 0;
      if (resize > 0) pendingSize = resize;
    }
  }

  /** Handles a control frame; false when the connection is done (the peer sent close). */
  #control(opcode: number, body: Uint8Array): boolean {
    if (opcode === Opcode.ping) {
      if (!this.#closeSent) this.#enqueue(Opcode.pong, body);
      return true;
    }
    if (opcode === Opcode.pong) return true;
    // Close: answer (unless we started it) and end once the answer is written. An invalid code is a
    // protocol error (1002), a reason that is not UTF-8 invalid data (1007, RFC 6455 §8.1); either is
    // answered with that code, not echoed.
    const code = closeCodeOf(body);
    const answer = code === null
      ? CloseCode.protocolError
      : !isUtf8(body.subarray(2))
      ? CloseCode.invalidData
      : code === 1005
      ? CloseCode.normal
      : code;
    this.#peerCode = code === null || answer === CloseCode.invalidData ? answer : code;
    if (!this.#closeSent) {
      this.#enqueue(Opcode.close, closePayload(answer));
      this.#closeSent = true;
      this.#sentCode = answer;
    }
    this.#closeAt = performance.now();
    return false;
  }

  /** Waits (reading nothing) until the queue drains to half the pause bound. */
  #throttle(): Promise<void> {
    this.#pausedSince = performance.now();
    return new Promise<void>((resume) => {
      this.#drained = () => {
        this.#pausedSince = 0;
        resume();
      };
    });
  }

  /**
   * Protocol violation or over a bound: close frame with `code`, then read and discard whatever the peer
   * still sends until it closes (or {@link CLOSE_HANDSHAKE_MS} passes), so the close frame is not lost to
   * a reset caused by unread bytes.
   */
  async #fail(code: number, reason: string): Promise<void> {
    if (!this.#closeSent) {
      this.#enqueue(Opcode.close, closePayload(code, reason));
      this.#closeSent = true;
      this.#sentCode = code;
    }
    this.#closeAt = performance.now();
    // At most DISCARD_BYTES: a client still pushing after that loses the close frame to a reset.
    const sink = new Uint8Array(READ_CHUNK);
    for (let left = DISCARD_BYTES; left > 0 && !this.#done;) {
      const n = await this.#conn.read(sink);
      if (n === null) return;
      left -= n;
    }
    this.#abort();
  }

  #watch(): void {
    const now = performance.now();
    if (!this.#writing && this.#queue.length === 0) this.#spare = []; // idle: hold no spare chunks
    const { sendTimeoutMs, floodCloseMs } = this.#options;
    if (this.#writeStarted > 0 && now - this.#writeStarted > sendTimeoutMs) return this.#abort();
    if (this.#pausedSince > 0 && now - this.#pausedSince > floodCloseMs && !this.#closeSent) {
      this.close(REPLY_FLOOD_CLOSE_CODE, "too many requests: replies not read");
      this.#release();
    }
    if (this.#closeSent && this.#closeAt > 0 && now - this.#closeAt > CLOSE_HANDSHAKE_MS) this.#abort();
    // Keepalive, as Deno's WebSocket does (idleTimeout 30 s): a client silent this long gets a ping; one
    // that stays silent as long again is gone (no FIN ever came) and is dropped.
    const silent = now - this.#heardAt;
    const keepalive = this.#options.keepaliveMs ?? KEEPALIVE_MS;
    // Dropped only once a ping has gone unanswered that long: a stalled event loop (every session silent
    // at once) must not drop sessions that were never asked.
    const pingOut = this.#pingedAt >= this.#heardAt;
    if (pingOut && now - this.#pingedAt > keepalive) return this.#abort();
    if (silent > keepalive && !pingOut && !this.#closeSent) {
      this.#pingedAt = now;
      this.#enqueue(Opcode.ping, new Uint8Array(0));
    }
  }

  /** Lets a throttled read loop go on (to see the connection end). */
  #release(): void {
    const resume = this.#drained;
    this.#drained = undefined;
    resume?.();
  }

  /** Drops the connection now. */
  #abort(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#release();
  }

  /** The read side is over: let queued frames (a close answer) go out, bounded by the watch timer. */
  async #finish(): Promise<void> {
    while (!this.#done && (this.#writing || this.#queue.length > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    this.#abort();
    clearInterval(this.#timer);
    this.#queue = [];
    this.#spare = [];
    this.#queued = 0;
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.(this.#peerCode || this.#sentCode || 1006);
  }
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
