/**
 * The policy: which targets a browser program may reach through wasmnet, what it may bind, and the limits of
 * a session. Pure: text in, decisions out; no sockets and no DNS (only {@link loadPolicyFile} reads a file).
 * `decide.ts` documents how targets are decided.
 *
 * @module
 */

export { PolicyError } from "./policy_error.ts";
export { parseListenAddress } from "./config.ts";
export { type ClientAddress, clientAddressOf, isTrustedProxy } from "./proxies.ts";
export { BUILT_IN_SOURCE, loadPolicyFile, loadPolicyFileSync, NO_POLICY_SOURCE, Policy } from "./policy.ts";
export type {
  AdminConfig,
  AuthConfig,
  ClusterConfig,
  DnsConfig,
  NetworkConfig,
  NetworkConfigInput,
  PolicyConfig,
  PolicyConfigInput,
  PolicyRules,
  PortSetInput,
  ServerConfig,
  TlsConfig,
  UdpConfig,
  WispConfig,
} from "./config.ts";
export {
  bindPortCandidates,
  clientReasonOf,
  decideBind,
  decideOrigin,
  decideResolved,
  decideTarget,
  type Decision,
  type TargetVerdict,
} from "./decide.ts";
export { isIpLiteral, normaliseAddress } from "./address.ts";
export { normaliseHostName } from "./hostname.ts";
export {
  type AnyRule,
  type DomainRule,
  parseRule,
  type RangeRule,
  type Rule,
  type RuleBase,
  ruleMatchesAddress,
  ruleMatchesName,
  type RuleParse,
} from "./rules.ts";
export type { IpAddress } from "./address.ts";
export type { PortRange } from "./ports.ts";
export { DEFAULT_DENY } from "./default_deny.ts";
export type { Narrowing, TargetNarrowing } from "./narrow.ts";
