/**
 * A caching resolver: wraps any {@link Resolver} (by default the system's) with a lookup timeout, a bounded
 * LRU cache of answers and coalescing of concurrent lookups of the same name.
 *
 * Bounds, and what happens when they fill:
 * - **Cache**: at most `entries` names. Adding one more evicts the least recently used name. An answer is
 *   kept for `ttlSecs` (the system resolver does not report record TTLs, so this is the only limit), then
 *   looked up again. Failures are not cached: the next lookup tries again.
 * - **Lookups in flight**: one per name at a time; callers asking for a name already being looked up wait
 *   for the same answer. Each caller's own `signal` only stops its own wait, never the shared lookup, which
 *   ends by itself within `timeoutMs`.
 * - **Time**: every lookup ends within `timeoutMs` with `RESOLVE_FAILED`, even if the wrapped resolver never
 *   answers.
 * - **System lookups at once**: at most `maxInFlight` (default {@link MAX_LOOKUPS_IN_FLIGHT}) on the server,
 *   counted until the wrapped resolver really returns (a timed-out `getaddrinfo` still holds a thread);
 *   past it a new name fails at once with `RESOLVE_FAILED` (issue 13: unique names must not pile up).
 *
 * The cache is shared by every session of a server (see {@link defaultResolver}); answers hold no client data.
 *
 * @module
 */

import { WasmnetError } from "../errors.ts";
import type { Policy } from "../../policy/mod.ts";
import { raceDeadline, type Resolver, systemResolver } from "./resolver.ts";

/** Settings of {@link cachingResolver}; the policy's `[dns]` section in the same units. */
export interface CachingResolverOptions {
  /** Names kept at most; 0 disables the cache (lookups are still coalesced and timed). */
  entries: number;
  /** Seconds an answer is kept; 0 disables the cache. */
  ttlSecs: number;
  /** Time allowed for one lookup, in milliseconds. */
  timeoutMs: number;
  /** Clock in milliseconds (tests pass a fake one). Default `Date.now`. */
  now?: () => number;
  /** Lookups of the wrapped resolver running at once, server-wide. Default {@link MAX_LOOKUPS_IN_FLIGHT}. */
  maxInFlight?: number;
}

/** Default bound of system lookups running at once on one server. */
export const MAX_LOOKUPS_IN_FLIGHT = 256;

/** A resolver with a cache; `size` and `clear` are for tests and operators. */
export interface CachingResolver extends Resolver {
  /** Names currently cached (expired ones included until they are touched or evicted). */
  readonly size: number;
  /** Drops every cached answer. */
  clear(): void;
}

interface CacheEntry {
  addresses: readonly string[];
  expires: number;
}

/** Wraps `inner` with a timeout, a bounded LRU cache and lookup coalescing (see the module doc). */
export function cachingResolver(inner: Resolver, options: CachingResolverOptions): CachingResolver {
  const now = options.now ?? Date.now;
  const caching = options.entries > 0 && options.ttlSecs > 0;
  const ttlMs = options.ttlSecs * 1000;
  // A Map iterates in insertion order: re-inserting on every hit keeps the least recently used first.
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<readonly string[]>>();
  const maxInFlight = options.maxInFlight ?? MAX_LOOKUPS_IN_FLIGHT;
  const running = { count: 0 };

  const lookup = (name: string): Promise<readonly string[]> => {
    const pending = inFlight.get(name);
    if (pending) return pending;
    if (running.count >= maxInFlight) {
      return Promise.reject(
        new WasmnetError(
          "RESOLVE_FAILED",
          `too many lookups in flight on this server (${maxInFlight}); try again`,
        ),
      );
    }
    const started = withTimeout(name, inner, options.timeoutMs, running).then((addresses) => {
      if (caching) {
        cache.delete(name);
        cache.set(name, { addresses, expires: now() + ttlMs });
        while (cache.size > options.entries) cache.delete(cache.keys().next().value!);
      }
      return addresses;
    }).finally(() => inFlight.delete(name));
    inFlight.set(name, started);
    return started;
  };

  const resolve = async (name: string, signal?: AbortSignal): Promise<string[]> => {
    const key = name.toLowerCase();
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      if (hit.expires > now()) {
        cache.set(key, hit);
        return [...hit.addresses];
      }
    }
    const answer = await raceDeadline(lookup(key), signal); // the lookup has its own timeout
    return [...answer];
  };

  return Object.defineProperties(resolve, {
    size: { get: () => cache.size },
    clear: { value: () => cache.clear() },
  }) as CachingResolver;
}

/** Runs one lookup, failing with `RESOLVE_FAILED` after `timeoutMs` (the timer is always cleared). */
function withTimeout(
  name: string,
  inner: Resolver,
  timeoutMs: number,
  running: { count: number },
): Promise<readonly string[]> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new WasmnetError("RESOLVE_FAILED", `looking up ${name} timed out after ${timeoutMs} ms`);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  let looking: Promise<string[]>;
  try {
    looking = inner(name, controller.signal);
  } catch (err) {
    looking = Promise.reject(err);
  }
  running.count++;
  looking.then(() => running.count--, () => running.count--);
  return Promise.race([looking, timedOut]).catch((err) => {
    if (err instanceof WasmnetError) throw err;
    throw new WasmnetError("RESOLVE_FAILED", `cannot resolve ${name}: ${(err as Error)?.message ?? err}`, {
      cause: err,
    });
  }).finally(() => clearTimeout(timer));
}

/** The resolver a server (or a session without one) uses by default: the system's, cached per the policy's `[dns]`. */
export function defaultResolver(policy: Policy): CachingResolver {
  const dns = policy.config.dns;
  return cachingResolver(systemResolver(dns.timeout_ms), {
    entries: dns.cache_entries,
    ttlSecs: dns.cache_ttl_secs,
    timeoutMs: dns.timeout_ms,
  });
}
