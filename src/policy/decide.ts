/**
 * Pure decisions: may this client reach that target, bind that address and port, come from that origin?
 * Every decision names the rule that decided it (for logs) and gives a short reason (for the client).
 *
 * ## How a target is decided
 *
 * 1. **Valid input first.** The port must be an integer 1-65535 and the host an IP address (any spelling, see
 *    below) or a valid host name; otherwise the target is denied as invalid, even under `--no-policy`.
 * 2. **Addresses are normalised before any rule sees them.** `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`,
 *    `[::1]`, `fe80::1%eth0` are read as the addresses a resolver would make of them, and the caller connects
 *    to the canonical form returned, never to the raw string. IPv6 that carries IPv4 (mapped `::ffff:0:0/96`,
 *    compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is checked both as itself against IPv6 rules
 *    and as the embedded IPv4 address against IPv4 rules.
 * 3. **Deny wins.** If any explicit deny rule (anything but a bare `*`) matches the name, the address, or any
 *    form of any resolved address, the target is denied by that rule, whatever `allow` says.
 * 4. **Then allow.** The target is allowed if an allow rule matches it: for an IP literal, a rule matching the
 *    address; for a name, a rule matching the name (its resolved addresses then only need to clear step 3),
 *    or else rules matching every resolved address. `*` in `allow` matches everything.
 * 5. **Otherwise denied by default.** An empty `allow` therefore allows nothing. A bare `*` in `deny` states
 *    this deny-by-default explicitly (the decision then reads `default (deny "*")`): only what an allow rule
 *    names gets through, and explicit deny rules still win over it.
 *
 * Rules may be limited to one port (`*:25`, `10.0.0.0/8:22`, `[::1]:80`); such a rule matches only that port.
 * A domain rule `example.com` (or `*.example.com`) covers the domain and all its subdomains, not `notexample.com`.
 * Names are case-folded and lose one trailing dot before matching. A name is only resolved when the policy
 * could still allow it, so a deny-by-default policy does not even look up names it will refuse.
 *
 * @module
 */

import {
  addressForms,
  canonicalAddress,
  type IpAddress,
  normaliseAddress,
  parseIpLiteral,
} from "./address.ts";
import type { Decision } from "./decision.ts";
import { normaliseHostName } from "./hostname.ts";
import type { Policy } from "./policy.ts";
import { formatPortSet, listPorts, portInSet, UNPRIVILEGED_PORTS } from "./ports.ts";
import { isCatchAll, type Rule, ruleMatchesAddress, ruleMatchesName } from "./rules.ts";
import { narrowAddress, narrowNameEarly, narrowResolved } from "./narrow.ts";

export type { Decision } from "./decision.ts";

/** The sentence a refused client gets: never a resolved address or the range it matched. */
export function clientReasonOf(decision: Decision): string {
  return decision.clientReason ?? decision.reason;
}

/** The client's side of a refusal by a resolved address. */
export function hiddenAddressReason(name: string): string {
  return `${name} resolves to an address this server may not connect to`;
}

/** The first step of a connect: denied, allowed to an IP address, or a name to resolve and pass to {@link decideResolved}. */
export type TargetVerdict =
  | { kind: "deny"; decision: Decision }
  /** The host was an IP literal; `address` is its canonical form, the one to connect to. */
  | { kind: "allow"; decision: Decision; address: string }
  /** The host is a name not denied by name; `name` is normalised, and is what to resolve. */
  | { kind: "resolve"; name: string };

const NO_POLICY_RULE = "--no-policy";

/** Decides a connect target given as the client wrote it (name or IP in any spelling) and a port. */
export function decideTarget(policy: Policy, host: string, port: number): TargetVerdict {
  const verdict = decideTargetUnnarrowed(policy, host, port);
  if (policy.narrowings.length === 0 || verdict.kind === "deny") return verdict;
  if (verdict.kind === "resolve") {
    const early = narrowNameEarly(policy.narrowings, verdict.name, port);
    return early ? { kind: "deny", decision: early } : verdict;
  }
  const address = parseIpLiteral(host)!;
  const denied = narrowAddress(policy.narrowings, address, port, `${showAddress(address)}:${port}`);
  return denied ? { kind: "deny", decision: denied } : verdict;
}

/** {@link decideTarget} before the session's narrowings (see `narrow.ts`) are applied. */
function decideTargetUnnarrowed(policy: Policy, host: string, port: number): TargetVerdict {
  const badPort = checkConnectPort(port);
  if (badPort) return { kind: "deny", decision: badPort };

  const address = parseIpLiteral(host);
  if (address) {
    const decision = decideAddress(policy, address, port);
    return decision.allowed
      ? { kind: "allow", decision, address: canonicalAddress(address) }
      : { kind: "deny", decision };
  }

  const name = normaliseHostName(host);
  if (name === null) return { kind: "deny", decision: invalidHost(host) };
  if (policy.unrestricted) return { kind: "resolve", name };
  const byName = decideNameDenied(policy, name, port);
  if (byName) return { kind: "deny", decision: byName };
  if (!couldAllowName(policy, name, port)) {
    return { kind: "deny", decision: defaultDeny(policy, `${name}:${port} is not on the allow list`) };
  }
  return { kind: "resolve", name };
}

/**
 * Decides a name after resolving it. Every address must clear the deny rules (and, unless an allow rule names
 * the name itself, match an allow rule), else the whole answer is denied, naming the offending address. On
 * allow, `addresses` are the canonical forms to connect to, in the same order; on deny it is empty.
 */
export function decideResolved(
  policy: Policy,
  name: string,
  port: number,
  addresses: string[],
): { decision: Decision; addresses: string[] } {
  const result = decideResolvedUnnarrowed(policy, name, port, addresses);
  if (policy.narrowings.length === 0 || !result.decision.allowed) return result;
  const parsed = addresses.map((a) => parseIpLiteral(a)!);
  const denied = narrowResolved(policy.narrowings, normaliseHostName(name)!, port, parsed, showAddress);
  return denied ? { decision: denied, addresses: [] } : result;
}

/** {@link decideResolved} before the session's narrowings (see `narrow.ts`) are applied. */
function decideResolvedUnnarrowed(
  policy: Policy,
  name: string,
  port: number,
  addresses: string[],
): { decision: Decision; addresses: string[] } {
  const denied = (decision: Decision) => ({ decision, addresses: [] });
  const badPort = checkConnectPort(port);
  if (badPort) return denied(badPort);
  const normalName = normaliseHostName(name);
  if (normalName === null) return denied(invalidHost(name));
  if (addresses.length === 0) {
    return denied({ allowed: false, rule: "no addresses", reason: `${normalName} has no addresses` });
  }
  const parsed: IpAddress[] = [];
  for (const text of addresses) {
    const address = parseIpLiteral(text);
    if (address === null) {
      return denied({
        allowed: false,
        rule: "invalid resolver answer",
        reason: `${normalName} resolved to something that is not an IP address`,
      });
    }
    parsed.push(address);
  }
  const canonical = parsed.map(canonicalAddress);
  if (policy.unrestricted) {
    return { decision: allowedBy(NO_POLICY_RULE, `${normalName}:${port}`), addresses: canonical };
  }

  const byName = decideNameDenied(policy, normalName, port);
  if (byName) return denied(byName);
  for (const address of parsed) {
    const rule = firstDenyMatch(policy, address, port);
    if (rule) {
      return denied({
        ...denyDecision(
          rule,
          `${normalName} resolved to ${showAddress(address)}, which ${blockedPhrase(rule, port)}`,
        ),
        clientReason: hiddenAddressReason(normalName),
      });
    }
  }

  const nameRule = policy.rules.allow.find((r) => ruleMatchesName(r, normalName, port));
  if (nameRule) return { decision: allowedBy(nameRule.label, `${normalName}:${port}`), addresses: canonical };
  let firstRule: Rule | undefined;
  for (const address of parsed) {
    const rule = firstAllowMatch(policy, address, port);
    if (!rule) {
      return denied({
        ...defaultDeny(
          policy,
          `${normalName} resolved to ${showAddress(address)}, which is not on the allow list`,
        ),
        clientReason: hiddenAddressReason(normalName),
      });
    }
    firstRule ??= rule;
  }
  return { decision: allowedBy(firstRule!.label, `${normalName}:${port}`), addresses: canonical };
}

/**
 * Decides a bind: the address must be allowed by `bind_addrs` (default: only `serverHost`, the server's own
 * listen host) and the port by `bind_ports`. Port 0 ("server picks") is allowed whenever `bind_ports` is not
 * empty; the server then picks from {@link bindPortCandidates}.
 */
export function decideBind(policy: Policy, addr: string, port: number, serverHost: string): Decision {
  if (!Number.isInteger(port) || port < 0 || port > 65535) return invalidPort(port, "0-65535");
  const address = parseIpLiteral(addr);
  const hostText = address ? canonicalAddress(address) : normaliseHostName(addr);
  if (hostText === null) {
    return { allowed: false, rule: "invalid bind address", reason: `invalid bind address ${quote(addr)}` };
  }
  if (policy.unrestricted) return allowedBy(NO_POLICY_RULE, `binding ${hostText}:${port}`);

  const addrRule = bindAddressRule(policy, address, hostText, serverHost);
  if (addrRule === null) {
    const rule = policy.rules.bindAddrs === null ? defaultBindAddrsLabel(serverHost) : "network.bind_addrs";
    return { allowed: false, rule, reason: `binding to ${hostText} is not allowed` };
  }

  const ranges = policy.config.network.bind_ports;
  const portRule = `network.bind_ports "${formatPortSet(ranges)}"`;
  const portAllowed = port === 0 ? ranges.length > 0 : portInSet(port, ranges);
  if (!portAllowed) {
    const reason = port === 0 ? "binding is not allowed on any port" : `binding port ${port} is not allowed`;
    return { allowed: false, rule: portRule, reason };
  }
  return {
    allowed: true,
    rule: `${addrRule}, ${portRule}`,
    reason: `binding ${hostText}:${port} is allowed`,
  };
}

/** The ports the server may pick for a bind to port 0: `"any"` when every unprivileged port is allowed (let the OS pick). */
export function bindPortCandidates(policy: Policy): number[] | "any" {
  const ranges = policy.config.network.bind_ports;
  const coversUnprivileged = UNPRIVILEGED_PORTS.every((wanted) =>
    ranges.some((r) => r.first <= wanted.first && r.last >= wanted.last)
  );
  return policy.unrestricted || coversUnprivileged ? "any" : listPorts(ranges);
}

/**
 * Decides a WebSocket upgrade by its Origin header (`null`/undefined when the request has none). No Origin
 * means a non-browser client: allowed unless `server.require_origin` is set.
 */
export function decideOrigin(policy: Policy, origin: string | null | undefined): Decision {
  if (policy.unrestricted) return allowedBy(NO_POLICY_RULE, `origin ${origin ?? "(none)"}`);
  const server = policy.config.server;
  if (origin === null || origin === undefined) {
    return server.require_origin
      ? { allowed: false, rule: "server.require_origin", reason: "an Origin header is required" }
      : {
        allowed: true,
        rule: "server.require_origin = false",
        reason: "requests without Origin are allowed",
      };
  }
  const index = server.allowed_origins.findIndex((o) => o === "*" || o === origin);
  if (index === -1) {
    return {
      allowed: false,
      rule: "server.allowed_origins",
      reason: `origin ${quote(origin)} is not allowed`,
    };
  }
  const label = `server.allowed_origins[${index}] ${JSON.stringify(server.allowed_origins[index])}`;
  return allowedBy(label, `origin ${quote(origin)}`);
}

// ---- the steps of a target decision ----

function checkConnectPort(port: number): Decision | null {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? null : invalidPort(port, "1-65535");
}

/** An IP literal: explicit deny rules on every form, then allow rules on any form, then the default. */
function decideAddress(policy: Policy, address: IpAddress, port: number): Decision {
  const target = `${showAddress(address)}:${port}`;
  if (policy.unrestricted) return allowedBy(NO_POLICY_RULE, target);
  const denyRule = firstDenyMatch(policy, address, port);
  if (denyRule) return denyDecision(denyRule, `${target} ${blockedPhrase(denyRule, port)}`);
  const allowRule = firstAllowMatch(policy, address, port);
  if (allowRule) return allowedBy(allowRule.label, target);
  return defaultDeny(policy, `${target} is not on the allow list`);
}

/** The explicit deny rule matching a name, as a decision, or null. */
function decideNameDenied(policy: Policy, name: string, port: number): Decision | null {
  const rule = explicitDenyRules(policy).find((r) => ruleMatchesName(r, name, port));
  return rule ? denyDecision(rule, `${name}:${port} ${blockedPhrase(rule, port)}`) : null;
}

/** Whether resolving is worth it: an allow rule names the name, or some allow rule could match an address. */
function couldAllowName(policy: Policy, name: string, port: number): boolean {
  return policy.rules.allow.some((r) =>
    ruleMatchesName(r, name, port) || (r.kind === "range" && (r.port === undefined || r.port === port))
  );
}

function explicitDenyRules(policy: Policy): Rule[] {
  return policy.rules.deny.filter((r) => !isCatchAll(r));
}

function firstDenyMatch(policy: Policy, address: IpAddress, port: number): Rule | undefined {
  const forms = addressForms(address);
  return explicitDenyRules(policy).find((r) => forms.some((form) => ruleMatchesAddress(r, form, port)));
}

function firstAllowMatch(policy: Policy, address: IpAddress, port: number): Rule | undefined {
  const forms = addressForms(address);
  return policy.rules.allow.find((r) => forms.some((form) => ruleMatchesAddress(r, form, port)));
}

// ---- bind addresses ----

/** The label of the rule that lets `addr` be bound, or null. */
function bindAddressRule(
  policy: Policy,
  address: IpAddress | null,
  hostText: string,
  serverHost: string,
): string | null {
  const rules = policy.rules.bindAddrs;
  if (rules === null) {
    const server = normaliseAddress(serverHost) ?? normaliseHostName(serverHost) ?? serverHost;
    return hostText === server ? defaultBindAddrsLabel(serverHost) : null;
  }
  if (address === null) return null;
  const forms = addressForms(address);
  return rules.find((r) => forms.some((form) => ruleMatchesAddress(r, form, 0)))?.label ?? null;
}

function defaultBindAddrsLabel(serverHost: string): string {
  return `default bind_addrs (server host ${JSON.stringify(serverHost)})`;
}

// ---- wording ----

function allowedBy(rule: string, what: string): Decision {
  return { allowed: true, rule, reason: `${what} is allowed` };
}

function denyDecision(rule: Rule, reason: string): Decision {
  return { allowed: false, rule: rule.label, reason };
}

function defaultDeny(policy: Policy, reason: string): Decision {
  return {
    allowed: false,
    rule: policy.denyByDefault ? `default (deny "*")` : "default (no allow rule matched)",
    reason,
  };
}

/** How a deny rule blocks: "is in a blocked range (10.0.0.0/8)", "is a blocked name (localhost)", "port 25 is blocked (*:25)". */
function blockedPhrase(rule: Rule, port: number): string {
  if (rule.kind === "range") return `is in a blocked range (${rule.text})`;
  if (rule.kind === "domain") return `is a blocked name (${rule.text})`;
  return `uses blocked port ${port} (${rule.text})`;
}

function invalidPort(port: number, range: string): Decision {
  return {
    allowed: false,
    rule: "invalid port",
    reason: `invalid port ${quote(String(port))} (must be ${range})`,
  };
}

function invalidHost(host: string): Decision {
  return { allowed: false, rule: "invalid host", reason: `invalid host name ${quote(host)}` };
}

/** An address as a client would write it with a port: IPv6 in brackets, IPv4-mapped as plain IPv4. */
function showAddress(address: IpAddress): string {
  const text = canonicalAddress(address);
  return text.includes(":") ? `[${text}]` : text;
}

/** Quotes client input for a reason, cut short so a reason stays a short sentence. */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? text.slice(0, 64) + "…" : text);
}
