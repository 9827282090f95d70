/**
 * The `resolve` request: a DNS lookup on behalf of the browser, answered with only the addresses the policy
 * would let it connect to. A lookup has no port, so an address is listed when the policy allows it on **at
 * least one port**: it is checked with every port some rule is limited to (`*:25`, `10.0.0.0/8:22`) and with
 * one port no rule mentions (standing for all the others). A port-scoped deny rule therefore hides nothing
 * from `resolve` (connecting to that port is still refused), and a port-scoped allow rule is enough to list
 * the address. Names are checked before the lookup, exactly like `connect`: a name denied by a rule, or one
 * the policy could not allow on any port, is `denied` without a lookup.
 *
 * @module
 */

import { toWasmnetError, WasmnetError } from "../errors.ts";
import {
  clientReasonOf,
  decideResolved,
  decideTarget,
  type Decision,
  type Policy,
} from "../../policy/mod.ts";
import type { DialContext } from "./dial.ts";
import { outcomeOf } from "../log.ts";

/** The ports a port-less question is asked with: one no rule mentions, then every port some rule is limited to. */
export function probePorts(policy: Policy): number[] {
  const scoped = new Set<number>();
  for (const rule of [...policy.rules.deny, ...policy.rules.allow]) {
    if (rule.port !== undefined) scoped.add(rule.port);
  }
  let generic = 1;
  while (scoped.has(generic)) generic++; // 65535 rules with ports would be needed to run out
  return [generic, ...[...scoped].sort((a, b) => a - b)];
}

/** The step before a lookup: denied (with the decision to report), an IP literal's answer, or a name to look up. */
export type LookupVerdict =
  | { kind: "deny"; decision: Decision }
  | { kind: "literal"; address: string; decision: Decision }
  | { kind: "resolve"; name: string };

/** Decides a name before looking it up (pure). */
export function decideLookup(
  policy: Policy,
  name: string,
  ports: number[] = probePorts(policy),
): LookupVerdict {
  let firstDeny: Decision | undefined;
  let resolveName: string | undefined;
  for (const port of ports) {
    const verdict = decideTarget(policy, name, port);
    if (verdict.kind === "allow") {
      return { kind: "literal", address: verdict.address, decision: verdict.decision };
    }
    if (verdict.kind === "resolve") resolveName ??= verdict.name;
    else firstDeny ??= verdict.decision;
  }
  if (resolveName !== undefined) return { kind: "resolve", name: resolveName };
  return { kind: "deny", decision: withoutPort(firstDeny!, ports[0]) };
}

/**
 * Filters a lookup's answer (pure): the canonical forms of the addresses allowed on at least one port, in
 * the resolver's order, without duplicates. When none is left, `decision` says why (the first address's
 * refusal, for the generic port).
 */
export function filterResolved(
  policy: Policy,
  name: string,
  addresses: string[],
  ports: number[] = probePorts(policy),
): { allowed: string[]; decision: Decision } {
  const allowed: string[] = [];
  let firstAllow: Decision | undefined;
  let firstDeny: Decision | undefined;
  for (const address of addresses) {
    for (const port of ports) {
      const { decision, addresses: approved } = decideResolved(policy, name, port, [address]);
      if (decision.allowed) {
        firstAllow ??= decision;
        if (!allowed.includes(approved[0])) allowed.push(approved[0]);
        break;
      }
      firstDeny ??= withoutPort(decision, ports[0]);
    }
  }
  if (addresses.length === 0) {
    firstDeny = { allowed: false, rule: "no addresses", reason: `${name} has no addresses` };
  }
  if (allowed.length > 0) return { allowed, decision: firstAllow! };
  return {
    allowed,
    decision: {
      allowed: false,
      rule: firstDeny!.rule,
      reason: addresses.length === 0
        ? firstDeny!.reason
        : `${name} resolves only to addresses this server may not connect to (${firstDeny!.reason})`,
      // Never the addresses or the ranges they fell in: the decision log has them, the client does not.
      clientReason: addresses.length === 0
        ? undefined
        : `${name} resolves only to addresses this server may not connect to`,
    },
  };
}

/**
 * Answers a `resolve`: the allowed addresses (never empty). Logs one decision with op `resolve`.
 * Throws `POLICY_DENIED` (name denied, or every address blocked) or `RESOLVE_FAILED` (lookup failed or timed out).
 */
export async function resolveForClient(ctx: DialContext, name: string): Promise<string[]> {
  const who = { session: ctx.session, client: ctx.client, op: "resolve", target: name };
  const ports = probePorts(ctx.policy);
  const verdict = decideLookup(ctx.policy, name, ports);
  if (verdict.kind === "deny") {
    ctx.log({ ...who, decision: "deny", rule: verdict.decision.rule, reason: verdict.decision.reason });
    throw new WasmnetError("POLICY_DENIED", verdict.decision.reason);
  }
  if (verdict.kind === "literal") {
    ctx.log({ ...who, resolved: [verdict.address], decision: "allow", rule: verdict.decision.rule });
    return [verdict.address];
  }
  let addresses: string[];
  try {
    addresses = await ctx.resolver(verdict.name, ctx.signal);
  } catch (err) {
    const e = toWasmnetError(err, "RESOLVE_FAILED");
    const failed = e.code === "RESOLVE_FAILED"
      ? e
      : new WasmnetError("RESOLVE_FAILED", e.message, { cause: e });
    ctx.log({ ...who, decision: "error", rule: "resolve", reason: failed.message });
    throw failed;
  }
  const { allowed, decision } = filterResolved(ctx.policy, verdict.name, addresses, ports);
  ctx.log({
    ...who,
    resolved: addresses,
    ...outcomeOf(decision),
  });
  if (!decision.allowed) throw new WasmnetError("POLICY_DENIED", clientReasonOf(decision));
  return allowed;
}

/** Drops the probe port from a reason: `resolve` has no port, so `example.com:1 is…` reads `example.com is…`. */
function withoutPort(decision: Decision, probe: number): Decision {
  return { ...decision, reason: decision.reason.replaceAll(`:${probe} `, " ") };
}
