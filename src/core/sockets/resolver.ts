/**
 * Name resolution, kept behind a function type so tests can answer with anything (including a different
 * answer on the second lookup, to prove we never look up twice).
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { WasmnetError } from "../errors.ts";

/** Resolves a host name to IP address strings (IPv4 and IPv6, the system's order). */
export type Resolver = (name: string, signal?: AbortSignal) => Promise<string[]>;

/**
 * The system resolver (getaddrinfo, so /etc/hosts counts), with a timeout. Failures are `RESOLVE_FAILED`.
 */
export function systemResolver(timeoutMs = 5000): Resolver {
  return async (name, signal) => {
    const lookedUp = lookup(name, { all: true, verbatim: true }).then((rows) => rows.map((r) => r.address));
    try {
      return await raceDeadline(lookedUp, signal, timeoutMs);
    } catch (err) {
      if (err instanceof DeadlineExceeded) {
        throw new WasmnetError("RESOLVE_FAILED", `looking up ${name} timed out after ${timeoutMs} ms`);
      }
      if (err instanceof WasmnetError) throw err;
      throw new WasmnetError("RESOLVE_FAILED", `cannot resolve ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
}

/** Rejection of {@link raceDeadline} when its time is up. */
export class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/**
 * Resolves with `promise`, or rejects as soon as `signal` aborts (with its reason) or `ms` pass
 * ({@link DeadlineExceeded}; no deadline when `ms` is undefined). The timer and the listener are gone once
 * it settles, so a socket that connected holds neither (`AbortSignal.timeout` would keep a timer and a
 * signal per socket for `ms`).
 */
export function raceDeadline<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  ms?: number,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => (done(), reject(signal!.reason));
    const timer = ms === undefined
      ? undefined
      : setTimeout(() => (done(), reject(new DeadlineExceeded(ms))), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then((value) => (done(), resolve(value)), (err) => (done(), reject(err)));
  });
}
