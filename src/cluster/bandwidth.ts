/**
 * `[network] max_bandwidth_mbps_per_ip`: one bandwidth budget for all sessions of a client address (IPv4,
 * or IPv6 /64), across every replica when a store is shared.
 *
 * - Without a store: one {@link TokenBucket} per client address in this process, at the rate divided by the
 *   worker count (each of N workers enforces its share, as for the session caps).
 * - With a store: each replica keeps a small local balance per address and tops it up from the shared
 *   bucket in the store (one request in flight per address, for at most 50 ms of traffic at a time), so the
 *   whole deployment draws from one bucket. While the store is down, the replica falls back to a local
 *   bucket at rate / `replicas` (an admitted session is slowed to its share, never cut).
 *
 * Budgets are reference-counted: the first session of an address creates it, the last one to end drops it.
 *
 * @module
 */

import { type BandwidthBudget, sleep, TokenBucket } from "../core/limits.ts";
import type { LimitStore } from "./store.ts";

/** Bytes per second in one megabit per second. */
const BYTES_PER_MBIT = 125_000;

/** Options of {@link ClientBandwidth}. */
export interface ClientBandwidthOptions {
  /** `max_bandwidth_mbps_per_ip` (0: no budget at all). */
  mbps: number;
  /** The shared store; absent: count in this process. */
  store?: LimitStore;
  /** Divides the rate when counting locally: workers without a store, `[cluster] replicas` while it is down. */
  localShare: number;
  /** Told when a store call fails (the caller counts the outage). */
  onStoreError?: (error: unknown) => void;
}

/** The per-address budgets of one process. */
export class ClientBandwidth {
  readonly #options: ClientBandwidthOptions;
  readonly #budgets = new Map<string, { budget: BandwidthBudget; users: number }>();

  /** Budgets at `options.mbps` per client address. */
  constructor(options: ClientBandwidthOptions) {
    this.#options = options;
  }

  /** Whether addresses have a budget at all. */
  get enabled(): boolean {
    return this.#options.mbps > 0;
  }

  /**
   * The budget of client `key` for one session, and the function to call when that session ends; null when
   * `max_bandwidth_mbps_per_ip` is 0.
   */
  acquire(key: string): { budget: BandwidthBudget; release: () => void } | null {
    if (!this.enabled) return null;
    let entry = this.#budgets.get(key);
    if (entry === undefined) {
      entry = { budget: this.#create(key), users: 0 };
      this.#budgets.set(key, entry);
    }
    entry.users++;
    let released = false;
    const held = entry;
    return {
      budget: entry.budget,
      release: () => {
        if (released) return;
        released = true;
        if (--held.users === 0 && this.#budgets.get(key) === held) this.#budgets.delete(key);
      },
    };
  }

  #create(key: string): BandwidthBudget {
    const rate = this.#options.mbps * BYTES_PER_MBIT;
    const store = this.#options.store;
    if (store === undefined) return localBucket(rate / this.#options.localShare);
    return new StoreBudget(
      store,
      `ip:${key}`,
      rate,
      localBucket(rate / this.#options.localShare),
      (err) => this.#options.onStoreError?.(err),
    );
  }
}

/** A bucket like a session's: 100 ms of burst, at least 16 KiB. */
function localBucket(bytesPerSec: number): TokenBucket {
  return new TokenBucket(bytesPerSec, Math.max(bytesPerSec / 10, 16 * 1024));
}

/** How long a failed store is left alone before a budget asks it again. */
const STORE_RETRY_MS = 1000;

/**
 * A budget drawn from the shared bucket in the store: a local balance, topped up by at most 50 ms of traffic
 * (at least 16 KiB) per request; the local `fallback` bucket decides while the store is failing.
 */
class StoreBudget implements BandwidthBudget {
  readonly #store: LimitStore;
  readonly #key: string;
  readonly #rate: number;
  readonly #burst: number;
  readonly #chunk: number;
  readonly #fallback: TokenBucket;
  readonly #onError: (error: unknown) => void;
  #balance = 0;
  #inFlight: Promise<void> | null = null;
  #failedUntil = 0;

  constructor(
    store: LimitStore,
    key: string,
    rate: number,
    fallback: TokenBucket,
    onError: (error: unknown) => void,
  ) {
    this.#store = store;
    this.#key = key;
    this.#rate = rate;
    this.#burst = Math.max(rate / 10, 16 * 1024);
    this.#chunk = Math.max(rate / 20, 16 * 1024);
    this.#fallback = fallback;
    this.#onError = onError;
  }

  take(bytes: number): void {
    if (this.#degraded) this.#fallback.take(bytes);
    else this.#balance -= bytes;
  }

  async ready(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.#degraded) return await this.#fallback.ready(signal);
      if (this.#balance >= 0) return;
      this.#inFlight ??= this.#topUp().finally(() => (this.#inFlight = null));
      const before = this.#balance;
      await this.#inFlight;
      if (this.#balance < 0 && this.#balance <= before && !this.#degraded) {
        // The shared bucket is empty for now: wait about as long as it takes to refill what we owe.
        await sleep(Math.min(100, Math.ceil((-this.#balance / this.#rate) * 1000)), signal);
      }
    }
  }

  get #degraded(): boolean {
    return this.#failedUntil > performance.now();
  }

  async #topUp(): Promise<void> {
    const want = Math.ceil(-this.#balance + this.#chunk);
    try {
      this.#balance += await this.#store.takeBandwidth(this.#key, this.#rate, this.#burst, want);
    } catch (err) {
      this.#failedUntil = performance.now() + STORE_RETRY_MS;
      this.#balance = 0; // what was owed is forgotten; the fallback bucket meters from here
      this.#onError(err);
    }
  }
}
