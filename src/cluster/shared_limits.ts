/**
 * Session leases in a shared {@link LimitStore}, and what happens when the store fails.
 *
 * Every session this replica admitted is remembered with the counters it holds, and its leases are renewed
 * every third of a lease. While the store answers, it decides. When it fails (unreachable, timed out, or a
 * reply of the wrong shape), the replica is *degraded*: `on_store_failure = "local"` lets admission fall back
 * to this process's share of each cap, `"closed"` refuses new sessions (503) and reports not ready. Sessions
 * already admitted are never cut for it. Renewals keep probing; the first one that succeeds re-creates every
 * live lease (a restarted, empty Redis included), gives back the leases of sessions that ended meanwhile,
 * and ends the outage, so the shared counts are right again within one renewal interval.
 *
 * @module
 */

import type { Counter, LimitStore } from "./store.ts";

/** While degraded, admissions probe the store at most this often. */
const PROBE_INTERVAL_MS = 1000;

/** `[cluster] on_store_failure`. */
export type StoreFailureMode = "local" | "closed";

/** Something worth an operator's attention: the store went away or came back. */
export interface ClusterNotice {
  event: "store_down" | "store_up";
  /** Why it went down (no secrets: error texts from the client, cut to 200 characters). */
  reason?: string;
}

/** Options of {@link SharedLimits}. */
export interface SharedLimitsOptions {
  /** Lease length (`[cluster] lease_secs` × 1000). */
  leaseMs: number;
  /** What admission does while the store is down. */
  onFailure: StoreFailureMode;
  /** Told when an outage starts and ends. */
  notice?: (notice: ClusterNotice) => void;
  /** The clock for probing, in milliseconds (tests move it). Default `performance.now`. */
  now?: () => number;
}

/** Counters for metrics. */
export interface SharedLimitsStats {
  /** Whether the store answered the last time it was asked. */
  up: boolean;
  /** Outages so far (transitions from up to down). */
  outages: number;
  /** Store operations that failed. */
  failures: number;
  /** Sessions this replica holds leases for. */
  held: number;
}

/** One replica's side of the shared session caps. */
export class SharedLimits {
  readonly store: LimitStore;
  readonly options: SharedLimitsOptions;
  readonly #held = new Map<string, string[]>();
  /** Leases of sessions that ended while the store was down: given back when it is up again. */
  readonly #unreleased = new Map<string, string[]>();
  #up = true;
  #outages = 0;
  #failures = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | null = null;
  /** When the store was last asked (renewal or probe), on {@link SharedLimitsOptions.now}'s clock. */
  #lastAsked = -Infinity;

  /** Uses `store`; call {@link start} to begin renewing. */
  constructor(store: LimitStore, options: SharedLimitsOptions) {
    this.store = store;
    this.options = options;
  }

  #now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }

  /** Whether the store is answering (false: degraded, `on_store_failure` applies). */
  get up(): boolean {
    return this.#up;
  }

  /** Counters for `/metrics`. */
  stats(): SharedLimitsStats {
    return { up: this.#up, outages: this.#outages, failures: this.#failures, held: this.#held.size };
  }

  /** Renews every third of a lease until {@link close}. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.options.leaseMs / 3)));
  }

  /**
   * Takes leases for `member` on every counter. Resolves 0 when taken, the 1-based index of the full
   * counter, or `"unavailable"` when the store is down (then nothing is held; see {@link holdLocally}).
   */
  async acquire(member: string, counters: readonly Counter[]): Promise<number | "unavailable"> {
    // Degraded: probe at most once a second, so a short blip ends for admission within about a second
    // instead of at the next renewal (a third of a lease).
    if (!this.#up && this.#now() - this.#lastAsked >= PROBE_INTERVAL_MS) await this.tick();
    if (!this.#up) return "unavailable";
    let full: number;
    try {
      full = await this.store.acquire(member, counters, this.options.leaseMs);
    } catch (err) {
      this.#down(err);
      return "unavailable";
    }
    if (full === 0) this.#hold(member, counters.map((c) => c.key));
    return full;
  }

  /**
   * Remembers a session admitted on local counts during an outage, so the store counts it once it is back.
   */
  holdLocally(member: string, keys: readonly string[]): void {
    this.#hold(member, keys);
  }

  /** Gives back every lease of `member` (now, or when the store is back). */
  release(member: string): void {
    const keys = this.#held.get(member);
    if (keys === undefined) return;
    this.#held.delete(member);
    if (!this.#up) {
      this.#unreleased.set(member, keys);
      return;
    }
    this.store.release(member, keys).catch((err) => {
      this.#unreleased.set(member, keys);
      this.#down(err);
    });
  }

  /**
   * Renews every held lease; while degraded, this is the probe that ends the outage. Concurrent calls share
   * one run.
   */
  tick(): Promise<void> {
    this.#ticking ??= this.#renew().finally(() => (this.#ticking = null));
    return this.#ticking;
  }

  /** Stops renewing and gives back what is held (best effort), then closes the store. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
    if (this.#up) {
      for (const [member, keys] of this.#held) await this.store.release(member, keys).catch(() => {});
    }
    this.#held.clear();
    await this.store.close().catch(() => {});
  }

  /** Tells of a failed store call made elsewhere (the bandwidth budgets): the outage starts now. */
  reportFailure(err: unknown): void {
    this.#down(err);
  }

  /** Adds `keys` to what `member` holds (a session takes its token's lease after its address's). */
  #hold(member: string, keys: readonly string[]): void {
    const had = this.#held.get(member) ?? [];
    this.#held.set(member, [...new Set([...had, ...keys])]);
  }

  async #renew(): Promise<void> {
    this.#lastAsked = this.#now();
    try {
      await this.store.renew(this.#held, this.options.leaseMs);
      for (const [member, keys] of this.#unreleased) {
        await this.store.release(member, keys);
        this.#unreleased.delete(member);
      }
    } catch (err) {
      this.#down(err);
      return;
    }
    if (!this.#up) {
      this.#up = true;
      this.options.notice?.({ event: "store_up" });
    }
  }

  #down(err: unknown): void {
    this.#failures++;
    if (!this.#up) return;
    this.#up = false;
    this.#outages++;
    this.options.notice?.({
      event: "store_down",
      reason: String((err as Error)?.message ?? err).slice(0, 200),
    });
  }
}
