/**
 * Narrowing: a session's policy made stricter, never wider, e.g. by the claims of its token. A narrowed
 * policy keeps every rule and limit of the policy it came from, and adds:
 *
 * - **targets**: a list of rules (same syntax as `network.allow`) that a connect target must ALSO match, on
 *   top of everything the base policy requires. For a name: a rule naming the name, or rules matching every
 *   address it resolved to. Narrowing twice means both lists must match.
 * - **limits**: `max_connections`, `max_listeners`, `max_pending_connects` and `max_bandwidth_mbps` become
 *   the smaller of the two (for bandwidth, 0 means unlimited, so any positive value is smaller).
 *
 * @module
 */

import { addressForms, type IpAddress } from "./address.ts";
import type { Decision } from "./decision.ts";
import type { NetworkConfig } from "./config.ts";
import { type Rule, ruleMatchesAddress, ruleMatchesName } from "./rules.ts";

/** What may be narrowed, and by whom (`source`, e.g. `token`, names the rule in logs). */
export interface Narrowing {
  /** Where the narrowing comes from, for decision labels: `token` gives `token.targets[0] "…"`. */
  readonly source: string;
  /** Rules a target must also match; undefined leaves targets as they were. `[]` allows no target. */
  readonly targets?: readonly Rule[];
  readonly max_connections?: number;
  readonly max_listeners?: number;
  readonly max_pending_connects?: number;
  readonly max_bandwidth_mbps?: number;
}

/** One list of target rules from a narrowing, with where it came from. */
export interface TargetNarrowing {
  readonly source: string;
  readonly rules: readonly Rule[];
}

/** The network limits of `base` narrowed by `narrowing`: each the smaller of the two. */
export function narrowNetwork(base: NetworkConfig, narrowing: Narrowing): NetworkConfig {
  const min = (a: number, b: number | undefined) => (b === undefined ? a : Math.min(a, b));
  const bw = narrowing.max_bandwidth_mbps;
  return Object.freeze({
    ...base,
    max_connections: min(base.max_connections, narrowing.max_connections),
    max_listeners: min(base.max_listeners, narrowing.max_listeners),
    max_pending_connects: min(base.max_pending_connects, narrowing.max_pending_connects),
    max_bandwidth_mbps: bw === undefined || bw === 0
      ? base.max_bandwidth_mbps
      : base.max_bandwidth_mbps === 0
      ? bw
      : Math.min(base.max_bandwidth_mbps, bw),
  });
}

/** Null if every narrowing lets the IP address through, else the deny decision naming the first that does not. */
export function narrowAddress(
  narrowings: readonly TargetNarrowing[],
  address: IpAddress,
  port: number,
  shown: string,
): Decision | null {
  const forms = addressForms(address);
  for (const n of narrowings) {
    if (!n.rules.some((r) => forms.some((f) => ruleMatchesAddress(r, f, port)))) {
      return notAllowed(n, `${shown} is not among the targets your ${n.source} allows`);
    }
  }
  return null;
}

/** Null if a name could still pass every narrowing (it names it, or has a range rule for its addresses). */
export function narrowNameEarly(
  narrowings: readonly TargetNarrowing[],
  name: string,
  port: number,
): Decision | null {
  for (const n of narrowings) {
    const could = n.rules.some((r) =>
      ruleMatchesName(r, name, port) || (r.kind === "range" && (r.port === undefined || r.port === port))
    );
    if (!could) return notAllowed(n, `${name}:${port} is not among the targets your ${n.source} allows`);
  }
  return null;
}

/** Null if every narrowing names `name`, or matches every address it resolved to. */
export function narrowResolved(
  narrowings: readonly TargetNarrowing[],
  name: string,
  port: number,
  addresses: readonly IpAddress[],
  show: (a: IpAddress) => string,
): Decision | null {
  for (const n of narrowings) {
    if (n.rules.some((r) => ruleMatchesName(r, name, port))) continue;
    for (const address of addresses) {
      if (narrowAddress([n], address, port, "") !== null) {
        return {
          ...notAllowed(
            n,
            `${name} resolved to ${show(address)}, which is not among the targets your ${n.source} allows`,
          ),
          clientReason:
            `${name} resolves to an address that is not among the targets your ${n.source} allows`,
        };
      }
    }
  }
  return null;
}

function notAllowed(n: TargetNarrowing, reason: string): Decision {
  return { allowed: false, rule: `${n.source}.targets`, reason };
}
