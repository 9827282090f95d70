/**
 * Policy reload without touching any front end: the server hands every session a *live view* of its policy,
 * a {@link Policy} whose every read answers from the policy in force now. A reload swaps the policy behind
 * the view ({@link PolicyHolder.replace}), so the next decision of every session, opened before the reload
 * or after, is made under the new file; nothing in flight is cut.
 *
 * A view narrowed for one session (token claims, `policy.narrow(…)`) stays live too: it is the current
 * policy narrowed by the same claims, recomputed once per reload.
 *
 * What a live view cannot change is whatever a session or the server copied out of the policy when it
 * started (the DNS cache's size, a session's bandwidth bucket and message limits): {@link notLiveChanges}
 * names those so a reload can say so in its log.
 *
 * @module
 */

import { type Narrowing, Policy, type PolicyConfig } from "../policy/mod.ts";

/** Holds the policy in force; {@link view} is what sessions get. */
export class PolicyHolder {
  #current: Policy;
  /** A Policy that always reads from the one in force. */
  readonly view: Policy;

  /** Starts with `initial` in force. */
  constructor(initial: Policy) {
    this.#current = initial;
    this.view = liveView(() => this.#current);
  }

  /** The policy in force now (a plain, frozen Policy). */
  get current(): Policy {
    return this.#current;
  }

  /** Puts `next` in force for every decision from now on. */
  replace(next: Policy): void {
    this.#current = next;
  }
}

/** A Policy whose properties and methods answer from `current()`; `narrow()` gives a live narrowed view. */
function liveView(current: () => Policy): Policy {
  const narrow = (narrowing: Narrowing): Policy => {
    let base: Policy | undefined;
    let narrowed: Policy | undefined;
    return liveView(() => {
      const now = current();
      if (now !== base) (base = now), (narrowed = now.narrow(narrowing));
      return narrowed!;
    });
  };
  // The target is a blank object with Policy's prototype (`instanceof Policy` holds); the real, frozen
  // policies stay behind the trap, so the proxy never breaks a frozen object's invariants.
  return new Proxy(Object.create(Policy.prototype) as Policy, {
    get(_target, key) {
      if (key === "narrow") return narrow;
      const policy = current();
      return Reflect.get(policy, key, policy);
    },
    has: (_target, key) => Reflect.has(current(), key),
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  });
}

/**
 * Settings that take effect only at start-up: whole sections (`[dns]`: the resolver and its cache; `[admin]`:
 * the listener; `[cluster]`: the shared store, opened once) and single keys (`server.workers`).
 */
const START_UP_ONLY: { section: "dns" | "admin" | "cluster" | "server"; keys?: string[] }[] = [
  { section: "dns" },
  { section: "admin" },
  { section: "cluster" },
  { section: "server", keys: ["workers"] },
];

/**
 * Settings that differ between `before` and `after` but that a reload does not apply to what is already
 * running, as config keys (`dns.timeout_ms`), for the reload's log line.
 */
export function notLiveChanges(before: PolicyConfig, after: PolicyConfig): string[] {
  const changed: string[] = [];
  for (const { section, keys } of START_UP_ONLY) {
    const a = before[section] as unknown as Record<string, unknown>;
    const b = after[section] as unknown as Record<string, unknown>;
    for (const key of keys ?? Object.keys(b)) {
      if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) changed.push(`${section}.${key}`);
    }
  }
  return changed;
}
