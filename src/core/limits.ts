/**
 * Per-session limits on the data path: a token bucket for `network.max_bandwidth_mbps` (both directions of
 * every socket of a session share one bucket), an idle timer per socket (`network.socket_idle_timeout_secs`)
 * and, at the WebSocket, the largest message (`server.max_message_bytes`, close 1009) and the session idle
 * timer (`server.session_idle_timeout_secs`, close {@link SESSION_IDLE_CLOSE_CODE}).
 *
 * The socket limits wrap the `Deno.Conn` a stream reads and writes ({@link SocketLimiter.wrap}), so the
 * session and `TcpStream` stay unaware of them; with neither limit configured the connection is returned
 * as it is (no cost on the data path).
 *
 * @module
 */

import { WasmnetError } from "./errors.ts";
import type { NetworkConfig, Policy } from "../policy/mod.ts";

/** Close code sent when a session sat idle longer than `server.session_idle_timeout_secs` (4000-4999: private use; "408" as in HTTP's timeout). */
export const SESSION_IDLE_CLOSE_CODE = 4408;

/** Close code for a message larger than `server.max_message_bytes` (RFC 6455: "message too big"). */
export const MESSAGE_TOO_BIG_CLOSE_CODE = 1009;

/** The largest single read or write charged at once, so the rate stays smooth at small rates. */
const MAX_CHARGE_BYTES = 64 * 1024;

/**
 * A bandwidth budget a connection waits for and is charged to: a session's own {@link TokenBucket}, or one
 * shared by every session of a client address (`max_bandwidth_mbps_per_ip`, src/cluster/bandwidth.ts).
 */
export interface BandwidthBudget {
  /** Charges `bytes` (may go into debt). */
  take(bytes: number): void;
  /** Resolves once the budget is out of debt, or at once when `signal` aborts. */
  ready(signal: AbortSignal): Promise<void>;
}

/**
 * A token bucket that may go into debt: {@link take} always succeeds and {@link delayMs} says how long to
 * wait until the debt is paid. Charging after a read (whose size is known only then) and waiting before the
 * next one caps the average rate at `bytesPerSec`, with bursts of at most `capacity`.
 */
export class TokenBucket implements BandwidthBudget {
  readonly bytesPerSec: number;
  readonly capacity: number;
  #tokens: number;
  #last: number;
  readonly #now: () => number;

  /** A full bucket. `now` (milliseconds) is for tests. */
  constructor(bytesPerSec: number, capacity: number, now: () => number = () => performance.now()) {
    if (!(bytesPerSec > 0) || !(capacity > 0)) throw new RangeError("rate and capacity must be positive");
    this.bytesPerSec = bytesPerSec;
    this.capacity = capacity;
    this.#now = now;
    this.#tokens = capacity;
    this.#last = now();
  }

  /** A bucket for `mbps` megabits per second (1 Mbit/s = 125,000 bytes/s), 100 ms of burst (at least 16 KiB). */
  static forMbps(mbps: number, now?: () => number): TokenBucket {
    const rate = mbps * 125_000;
    return new TokenBucket(rate, Math.max(rate / 10, 16 * 1024), now);
  }

  /** Tokens available now (negative: debt). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Charges `bytes` (may go into debt). */
  take(bytes: number): void {
    this.#refill();
    this.#tokens -= bytes;
  }

  /** Milliseconds until the bucket is out of debt (0: go now). */
  delayMs(): number {
    this.#refill();
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.bytesPerSec) * 1000);
  }

  /** Resolves once the bucket is out of debt, or at once when `signal` aborts. */
  async ready(signal: AbortSignal): Promise<void> {
    for (let wait = this.delayMs(); wait > 0 && !signal.aborted; wait = this.delayMs()) {
      await sleep(wait, signal);
    }
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.capacity, this.#tokens + ((now - this.#last) / 1000) * this.bytesPerSec);
    this.#last = now;
  }
}

/** Sleeps `ms`, or less if `signal` aborts (never rejects, never leaves a timer behind). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * The socket limits of one session: one bandwidth bucket shared by all its sockets and both directions,
 * and an idle timer per socket. Build with {@link SocketLimiter.forPolicy}; {@link close} with the session.
 */
export class SocketLimiter {
  /** Null when `max_bandwidth_mbps` is 0 (unlimited). */
  readonly bucket: TokenBucket | null;
  /** The session's own bucket and the client address's shared budget, whichever are set. */
  readonly #budgets: BandwidthBudget[];
  /** 0 when sockets never time out. */
  readonly idleMs: number;
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal;

  /** Limits from `network` config values; `signal` (the session's) ends every wait when it aborts. */
  constructor(
    network: Pick<NetworkConfig, "max_bandwidth_mbps" | "socket_idle_timeout_secs">,
    signal?: AbortSignal,
    clientBudget?: BandwidthBudget,
  ) {
    this.bucket = network.max_bandwidth_mbps > 0 ? TokenBucket.forMbps(network.max_bandwidth_mbps) : null;
    this.#budgets = [this.bucket, clientBudget].filter((b): b is BandwidthBudget => b != null);
    this.idleMs = network.socket_idle_timeout_secs * 1000;
    this.#signal = signal ? AbortSignal.any([signal, this.#controller.signal]) : this.#controller.signal;
  }

  /**
   * The limits of a session under `policy` (narrowed policies included), ending with `signal`;
   * `clientBudget` is the bandwidth its client address shares with its other sessions, if capped.
   */
  static forPolicy(policy: Policy, signal?: AbortSignal, clientBudget?: BandwidthBudget): SocketLimiter {
    return new SocketLimiter(policy.config.network, signal, clientBudget);
  }

  /**
   * The connection a stream should use: reads and writes wait for the bucket and are charged to it, and
   * when no read or write completes for `idleMs`, `onIdle` is called with an `IDLE_TIMEOUT` error (the
   * caller destroys the stream, which closes the connection). Returns `conn` itself when there is no limit.
   */
  wrap<C extends Deno.Conn>(conn: C, onIdle: (error: WasmnetError) => void): C {
    if (this.#budgets.length === 0 && this.idleMs === 0) return conn;
    return new LimitedConn(conn, this.#budgets, this.idleMs, onIdle, this.#signal) as unknown as C;
  }

  /** Releases pending waits (the session is over). */
  close(): void {
    this.#controller.abort();
  }
}

/** A `Deno.Conn` whose reads and writes are metered; everything else is passed through. */
class LimitedConn {
  readonly #inner: Deno.Conn;
  readonly #budgets: readonly BandwidthBudget[];
  readonly #idleMs: number;
  readonly #onIdle: (error: WasmnetError) => void;
  readonly #signal: AbortSignal;
  #lastActive = performance.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    inner: Deno.Conn,
    budgets: readonly BandwidthBudget[],
    idleMs: number,
    onIdle: (error: WasmnetError) => void,
    signal: AbortSignal,
  ) {
    this.#inner = inner;
    this.#budgets = budgets;
    this.#idleMs = idleMs;
    this.#onIdle = onIdle;
    this.#signal = signal;
    if (idleMs > 0) this.#arm(idleMs);
  }

  /** The connection this one meters (src/core/sockets/reset.ts reaches the socket through it). */
  get innerConn(): Deno.Conn {
    return this.#inner;
  }

  get localAddr() {
    return this.#inner.localAddr;
  }
  get remoteAddr() {
    return this.#inner.remoteAddr;
  }
  get readable() {
    return this.#inner.readable;
  }
  get writable() {
    return this.#inner.writable;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    for (const budget of this.#budgets) await budget.ready(this.#signal);
    const view = this.#budgets.length > 0 && buffer.length > MAX_CHARGE_BYTES
      ? buffer.subarray(0, MAX_CHARGE_BYTES)
      : buffer;
    const n = await this.#inner.read(view);
    if (n !== null && n > 0) {
      for (const budget of this.#budgets) budget.take(n);
      this.#lastActive = performance.now();
    }
    return n;
  }

  async write(bytes: Uint8Array): Promise<number> {
    for (const budget of this.#budgets) await budget.ready(this.#signal);
    const view = this.#budgets.length > 0 && bytes.length > MAX_CHARGE_BYTES
      ? bytes.subarray(0, MAX_CHARGE_BYTES)
      : bytes;
    const n = await this.#inner.write(view);
    for (const budget of this.#budgets) budget.take(n);
    this.#lastActive = performance.now();
    return n;
  }

  closeWrite(): Promise<void> {
    return this.#inner.closeWrite();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#inner.close();
  }

  ref(): void {
    this.#inner.ref();
  }

  unref(): void {
    this.#inner.unref();
  }

  setNoDelay(noDelay?: boolean): void {
    (this.#inner as Deno.TcpConn).setNoDelay?.(noDelay);
  }

  setKeepAlive(keepAlive?: boolean): void {
    (this.#inner as Deno.TcpConn).setKeepAlive?.(keepAlive);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Checks for idleness every `ms`; cheap on the data path (no timer reset per chunk). */
  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      if (this.#closed) return;
      const idle = performance.now() - this.#lastActive;
      if (idle >= this.#idleMs) {
        this.#onIdle(
          new WasmnetError(
            "IDLE_TIMEOUT",
            `no traffic for ${Math.round(this.#idleMs / 1000)} s (socket_idle_timeout_secs)`,
          ),
        );
      } else {
        this.#arm(this.#idleMs - idle);
      }
    }, Math.max(1, ms));
  }
}

/** What the WebSocket layer enforces for one session. */
export interface MessageLimits {
  /** Largest message accepted; a larger one closes the WebSocket with 1009. */
  maxMessageBytes: number;
  /** Close the session after this long without a message either way (0: never). */
  idleMs: number;
}

/** The message limits of `policy` (`[server] max_message_bytes`, `session_idle_timeout_secs`). */
export function messageLimits(policy: Policy): MessageLimits {
  return {
    maxMessageBytes: policy.config.server.max_message_bytes,
    idleMs: policy.config.server.session_idle_timeout_secs * 1000,
  };
}

const limitsByRequest = new WeakMap<Request, MessageLimits>();

/**
 * Attaches the limits the server decided for an admitted request; {@link upgradeToPort} (the one place every
 * endpoint upgrades through) applies them, so no endpoint can forget them.
 */
export function setMessageLimits(request: Request, limits: MessageLimits): void {
  limitsByRequest.set(request, limits);
}

/** The limits attached to `request`, if any. */
export function messageLimitsFor(request: Request): MessageLimits | undefined {
  return limitsByRequest.get(request);
}

/**
 * The size of a WebSocket message in bytes (UTF-8 for text), exact only as far as it matters: the result is
 * greater than `limit` exactly when the message is. Text is only scanned when its length alone cannot tell.
 */
export function messageSize(data: string | Uint8Array, limit: number): number {
  if (typeof data !== "string") return data.length;
  if (data.length > limit) return data.length; // each UTF-16 unit is at least one byte
  if (data.length * 3 <= limit) return data.length; // each UTF-16 unit is at most three bytes
  let bytes = 0;
  for (let i = 0; i < data.length && bytes <= limit; i++) {
    const c = data.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) (bytes += 4), i++;
    else bytes += 3;
  }
  return bytes;
}

/**
 * Enforces {@link MessageLimits} on one WebSocket: call {@link accept} for every incoming message (false:
 * too big, the socket was closed with 1009 and the message must be dropped) and {@link touch} for every
 * outgoing one; {@link stop} when the socket closes.
 */
export class MessageGuard {
  readonly #limits: MessageLimits;
  readonly #close: (code: number, reason: string) => void;
  #last = performance.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** `close` closes the WebSocket with a code and reason. */
  constructor(limits: MessageLimits, close: (code: number, reason: string) => void) {
    this.#limits = limits;
    this.#close = close;
    if (limits.idleMs > 0) this.#arm(limits.idleMs);
  }

  /** Checks an incoming message; false means it was too big and the WebSocket is being closed. */
  accept(data: string | Uint8Array): boolean {
    if (this.#stopped) return false;
    const max = this.#limits.maxMessageBytes;
    if (messageSize(data, max) > max) {
      this.stop();
      this.#close(MESSAGE_TOO_BIG_CLOSE_CODE, `message larger than ${max} bytes (max_message_bytes)`);
      return false;
    }
    this.#last = performance.now();
    return true;
  }

  /** Records outgoing traffic (a session that is sending is not idle). */
  touch(): void {
    this.#last = performance.now();
  }

  /** Stops the idle timer. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      if (this.#stopped) return;
      const idle = performance.now() - this.#last;
      if (idle >= this.#limits.idleMs) {
        this.stop();
        this.#close(SESSION_IDLE_CLOSE_CODE, "session idle (session_idle_timeout_secs)");
      } else {
        this.#arm(this.#limits.idleMs - idle);
      }
    }, Math.max(1, ms));
  }
}
