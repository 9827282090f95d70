/**
 * The shared limits store: where the session caps and bandwidth budgets of a whole deployment are counted.
 * Two implementations of one interface: {@link MemoryStore} (in this process; the pure fake for tests and
 * the semantics every store must have) and `RedisStore` (redis_store.ts, shared by every replica).
 *
 * A session holds a *lease* on every counter it is counted under (`sessions`, `ip:<client key>`,
 * `token:<subject>`): a member with an expiry. Leases are renewed while the session lives and given back when
 * it ends; a replica that dies stops renewing, so its sessions stop counting within one lease.
 *
 * @module
 */

/** One counter a session is held under, with the cap that counter has. */
export interface Counter {
  /** Counter name without prefix: `sessions`, `ip:203.0.113.9`, `token:user-42`. */
  readonly key: string;
  /** Most members the counter may have at once. */
  readonly cap: number;
}

/** A store failed (unreachable, timed out, or answered something that is not what the script returns). */
export class StoreError extends Error {
  /** `message` says what failed; it never carries a password. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

/** What every shared limits store does. Every method may reject with {@link StoreError}. */
export interface LimitStore {
  /**
   * Takes a lease for `member` on every counter, atomically: all of them or none. Resolves 0 when taken, or
   * the 1-based index of the first counter that is full (nothing taken). A member that already holds a lease
   * on a counter is not refused by it (a retry never counts twice).
   */
  acquire(member: string, counters: readonly Counter[], leaseMs: number): Promise<number>;
  /** Gives back the leases of `member` on `keys` (missing ones are ignored). */
  release(member: string, keys: readonly string[]): Promise<void>;
  /**
   * Extends (or re-creates, after the store lost them) the leases of live sessions: `held` maps a member to
   * the counters it holds. Never refuses: a session that was admitted stays counted.
   */
  renew(held: ReadonlyMap<string, readonly string[]>, leaseMs: number): Promise<void>;
  /**
   * Takes up to `want` bytes from the shared bandwidth budget `key` (a token bucket refilled at `bytesPerSec`,
   * holding at most `burst`). Resolves with the bytes granted (0..want).
   */
  takeBandwidth(key: string, bytesPerSec: number, burst: number, want: number): Promise<number>;
  /** Closes connections; the store is not used afterwards. */
  close(): Promise<void>;
}

/**
 * A store in this process's memory, with the same lease and bucket semantics as the Redis scripts. `now`
 * (milliseconds) is injectable so tests can move time.
 */
export class MemoryStore implements LimitStore {
  readonly #counters = new Map<string, Map<string, number>>();
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;
  /** Set to make every call reject (a fake outage for tests). */
  failing = false;

  /** An empty store. */
  constructor(now: () => number = () => Date.now()) {
    this.#now = now;
  }

  /** Members holding an unexpired lease on `key`. */
  count(key: string): number {
    return this.#live(key).size;
  }

  /** Forgets everything (as a restarted Redis would). */
  clear(): void {
    this.#counters.clear();
    this.#buckets.clear();
  }

  acquire(member: string, counters: readonly Counter[], leaseMs: number): Promise<number> {
    return this.#run(() => {
      for (const [i, { key, cap }] of counters.entries()) {
        const live = this.#live(key);
        if (!live.has(member) && live.size >= cap) return i + 1;
      }
      const expiry = this.#now() + leaseMs;
      for (const { key } of counters) this.#live(key).set(member, expiry);
      return 0;
    });
  }

  release(member: string, keys: readonly string[]): Promise<void> {
    return this.#run(() => {
      for (const key of keys) this.#counters.get(key)?.delete(member);
    });
  }

  renew(held: ReadonlyMap<string, readonly string[]>, leaseMs: number): Promise<void> {
    return this.#run(() => {
      const expiry = this.#now() + leaseMs;
      for (const [member, keys] of held) for (const key of keys) this.#live(key).set(member, expiry);
    });
  }

  takeBandwidth(key: string, bytesPerSec: number, burst: number, want: number): Promise<number> {
    return this.#run(() => {
      const now = this.#now();
      const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * bytesPerSec);
      bucket.at = now;
      const granted = Math.max(0, Math.min(want, Math.floor(bucket.tokens)));
      bucket.tokens -= granted;
      this.#buckets.set(key, bucket);
      return granted;
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Runs `op` now, as a settled promise (rejected with {@link StoreError} while {@link failing}). */
  #run<T>(op: () => T): Promise<T> {
    if (this.failing) return Promise.reject(new StoreError("memory store is failing (test)"));
    return Promise.resolve(op());
  }

  /** The members of `key` whose lease has not expired (expired ones are dropped). */
  #live(key: string): Map<string, number> {
    let members = this.#counters.get(key);
    if (!members) this.#counters.set(key, members = new Map());
    const now = this.#now();
    for (const [member, expiry] of members) if (expiry <= now) members.delete(member);
    return members;
  }
}
