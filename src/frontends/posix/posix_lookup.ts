/**
 * `getaddrinfo` for a program: a name is looked up only if the policy lets the program reach it, at the
 * service port it named or else at one of {@link lookupProbePorts}; each decision is logged through the
 * session's core. (wasmnet's own `resolve` answers differently: any port, `src/core/sockets/lookup.ts`.)
 *
 * @module
 */

import type { CoreSession } from "../../core/core.ts";
import { formatHostPort } from "../../core/core.ts";
import { toWasmnetError } from "../../core/errors.ts";
import { decideResolved, decideTarget, type Policy } from "../../policy/mod.ts";
import { Eai } from "./posix_codec.ts";

/**
 * The ports a lookup without a service is checked at: the ports allow rules name, then 443 and 80. A name
 * is answered if the policy would let the program reach it at one of them.
 */
export function lookupProbePorts(policy: Policy): number[] {
  const named = policy.rules.allow.map((r) => r.port).filter((p): p is number => p !== undefined);
  return [...new Set([...named, 443, 80])].slice(0, 16);
}

/**
 * Resolves `name` only if the policy lets it be reached: at `port` when the program named a service, else
 * at any of {@link lookupProbePorts}. Returns the approved addresses or a `getaddrinfo` error code.
 */
export async function lookUpForProgram(
  core: CoreSession,
  policy: Policy,
  name: string,
  port: number | null,
): Promise<string[] | number> {
  const ports = port !== null ? [port] : lookupProbePorts(policy);
  const record = { op: "getaddrinfo" };
  const target = port !== null ? formatHostPort(name, port) : name;
  let resolveName: string | undefined;
  let firstDeny: { rule: string; reason: string } | undefined;
  for (const p of ports) {
    const verdict = decideTarget(policy, name, p);
    if (verdict.kind === "resolve") {
      resolveName = verdict.name;
      break;
    }
    if (verdict.kind === "deny") firstDeny ??= verdict.decision;
  }
  if (resolveName === undefined) {
    const decision = firstDeny ?? { rule: "invalid host", reason: `cannot look up ${name}` };
    core.decided({
      ...record,
      target,
      decision: "deny",
      rule: decision.rule,
      reason: decision.reason,
    });
    return Eai.FAIL;
  }
  let found: string[];
  try {
    found = await core.lookup(resolveName);
  } catch (err) {
    const e = toWasmnetError(err, "RESOLVE_FAILED");
    core.decided({ ...record, target, decision: "error", rule: "resolve", reason: e.message });
    return /timed out/.test(e.message) ? Eai.AGAIN : Eai.NONAME;
  }
  let denied: { rule: string; reason: string } | undefined;
  for (const p of ports) {
    const { decision, addresses } = decideResolved(policy, resolveName, p, found);
    if (decision.allowed) {
      core.decided({ ...record, target, resolved: found, decision: "allow", rule: decision.rule });
      return addresses;
    }
    denied ??= decision;
  }
  core.decided({
    ...record,
    target,
    resolved: found,
    decision: "deny",
    rule: denied!.rule,
    reason: denied!.reason,
  });
  return Eai.FAIL;
}
