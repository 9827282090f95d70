/**
 * `wasmnet-server check FILE [--explain HOST:PORT]`: validates a policy file the way start-up does (like
 * `nginx -t`), and optionally says what it would decide for one target and which rule would decide it,
 * resolving a name as the server would (same resolver, same timeout, every address checked).
 *
 * @module
 */

import { Authenticator, SecretError } from "../auth/mod.ts";
import { decideResolved, decideTarget, loadPolicyFile, type Policy, PolicyError } from "../policy/mod.ts";
import { defaultResolver } from "../core/sockets/dns.ts";
import type { Resolver } from "../core/sockets/resolver.ts";
import { caCertsFor } from "../core/sockets/tls.ts";
import { loadAdminToken } from "./admin.ts";
import { outcomeOf } from "../core/log.ts";

/** What the policy would do with one target. */
export interface Explanation {
  /** `error` when the name could not be resolved (the server would answer RESOLVE_FAILED). */
  decision: "allow" | "deny" | "error";
  rule: string;
  reason?: string;
  /** The addresses the name resolved to, when it was resolved. */
  resolved?: string[];
}

/**
 * Loads `path` with every check start-up makes (TOML, schema, rules, `[tls]` CA files, `[auth]` and
 * `[admin]` secrets). Throws what start-up would print: {@link PolicyError}, `SecretError`, or the CA error.
 */
export async function checkPolicyFile(path: string): Promise<Policy> {
  const policy = await loadPolicyFile(path);
  await caCertsFor(policy);
  Authenticator.fromConfig(policy.config.auth);
  loadAdminToken(policy.config.admin);
  return policy;
}

/** The decision `policy` makes for a connect to `host:port`, resolving a name with `resolver`. */
export async function explainTarget(
  policy: Policy,
  host: string,
  port: number,
  resolver: Resolver = defaultResolver(policy),
): Promise<Explanation> {
  const verdict = decideTarget(policy, host, port);
  if (verdict.kind === "deny") {
    return { decision: "deny", rule: verdict.decision.rule, reason: verdict.decision.reason };
  }
  if (verdict.kind === "allow") {
    return { decision: "allow", rule: verdict.decision.rule, resolved: [verdict.address] };
  }
  let addresses: string[];
  try {
    addresses = await resolver(verdict.name, AbortSignal.timeout(policy.config.dns.timeout_ms + 1000));
  } catch (err) {
    return { decision: "error", rule: "resolve", reason: err instanceof Error ? err.message : String(err) };
  }
  const { decision } = decideResolved(policy, verdict.name, port, addresses);
  return {
    ...outcomeOf(decision),
    resolved: addresses,
  };
}

/**
 * Runs the subcommand: prints `FILE: ok` and the policy's summary (exit 0), or the start-up error (exit 1);
 * with `explain`, then the decision, the rule and the resolved addresses (exit 0 whatever the decision).
 */
export async function runCheck(
  path: string,
  explain: { host: string; port: number } | undefined,
  out: { log: (line: string) => void; error: (line: string) => void } = console,
): Promise<number> {
  let policy: Policy;
  try {
    policy = await checkPolicyFile(path);
  } catch (err) {
    if (err instanceof PolicyError || err instanceof SecretError || err instanceof Error) {
      out.error(`wasmnet-server: ${err.message}`);
      return 1;
    }
    throw err;
  }
  out.log(`${path}: ok`);
  out.log(`policy: ${policy.describe()}`);
  if (explain) {
    const e = await explainTarget(policy, explain.host, explain.port);
    out.log(`decision: ${e.decision}`);
    out.log(`rule: ${e.rule}`);
    if (e.resolved) out.log(`resolved: ${e.resolved.join(", ")}`);
    if (e.reason) out.log(`reason: ${e.reason}`);
  }
  return 0;
}
