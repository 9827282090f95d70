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
    const timeout = AbortSignal.timeout(timeoutMs);
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const lookedUp = lookup(name, { all: true, verbatim: true }).then((rows) => rows.map((r) => r.address));
    try {
      return await raceAbort(lookedUp, abort);
    } catch (err) {
      if (timeout.aborted) {
        throw new WasmnetError("RESOLVE_FAILED", `looking up ${name} timed out after ${timeoutMs} ms`);
      }
      if (err instanceof WasmnetError) throw err;
      throw new WasmnetError("RESOLVE_FAILED", `cannot resolve ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
}

/** Resolves with `promise`, or rejects as soon as `signal` aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
