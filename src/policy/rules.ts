/**
 * Rules: the strings of `deny`, `allow` and `bind_addrs`, parsed once at startup and matched against names
 * and addresses. A rule is `*`, an IP range (CIDR or bare IP) or a domain, optionally scoped to one port.
 *
 * @module
 */

import { ADDRESS_BITS, type IpAddress, parseIpv4Loose, parseIpv4Strict, parseIpv6 } from "./address.ts";
import { isNameWithin, normaliseHostName } from "./hostname.ts";

/** What every rule has: its text as written, a label for logs, and the port it is limited to, if any. */
export interface RuleBase {
  /** The rule as written in the config, e.g. `10.0.0.0/8:22`. */
  readonly text: string;
  /** Where the rule came from, for logs and decisions, e.g. `network.deny[3] "10.0.0.0/8:22"`. */
  readonly label: string;
  /** The only port the rule applies to; undefined means every port. */
  readonly port?: number;
}

/** `*`: every name and every address. */
export interface AnyRule extends RuleBase {
  /** Tells the rule kinds apart. */
  readonly kind: "any";
}
/** An IP range; a bare IP is a range of one address. */
export interface RangeRule extends RuleBase {
  /** Tells the rule kinds apart. */
  readonly kind: "range";
  /** IPv4 or IPv6; a range only matches addresses of its own family. */
  readonly family: 4 | 6;
  /** The network address (host bits zero). */
  readonly network: bigint;
  /** The prefix length: 32 or 128 for a single address. */
  readonly prefix: number;
}
/** A domain and all its subdomains (`example.com` and `*.example.com` mean the same). */
export interface DomainRule extends RuleBase {
  /** Tells the rule kinds apart. */
  readonly kind: "domain";
  /** Normalised: lower case, no trailing dot, no `*.`. */
  readonly domain: string;
}
/** One parsed rule. */
export type Rule = AnyRule | RangeRule | DomainRule;

/** The result of {@link parseRule}: the rule, or a sentence saying what is wrong with the text. */
export type RuleParse = { rule: Rule } | { problem: string };

/**
 * Parses one rule. IPv6 with a port needs brackets (`[::1]:80`, `[2001:db8::/32]:443`); without brackets a
 * text with several colons is an IPv6 address or range without a port. `label` defaults to the quoted text.
 */
export function parseRule(text: string, label: string = JSON.stringify(text)): RuleParse {
  if (typeof text !== "string" || text === "") return { problem: "a rule must be a non-empty string" };
  if (/\s/.test(text)) return { problem: "a rule must not contain spaces" };
  const split = splitPort(text);
  if ("problem" in split) return split;
  const { host, port, bracketed } = split;
  const base = port === undefined ? { text, label } : { text, label, port };
  if (host === "*" && !bracketed) return { rule: { kind: "any", ...base } };
  if (bracketed || host.includes("/") || host.includes(":")) {
    const range = parseRange(host, bracketed);
    return "problem" in range ? range : { rule: { kind: "range", ...base, ...range } };
  }
  const v4 = parseIpv4Strict(host);
  if (v4) return { rule: { kind: "range", ...base, family: 4, network: v4.value, prefix: 32 } };
  if (parseIpv4Loose(host.endsWith(".") ? host.slice(0, -1) : host)) {
    return { problem: "write IPv4 addresses as a plain dotted quad like 127.0.0.1" };
  }
  const domain = normaliseHostName(host.startsWith("*.") ? host.slice(2) : host);
  if (domain === null) return { problem: "not `*`, an IP address, a CIDR range or a valid domain name" };
  return { rule: { kind: "domain", ...base, domain } };
}

function splitPort(text: string): { host: string; port?: number; bracketed: boolean } | { problem: string } {
  let host = text;
  let portText: string | undefined;
  let bracketed = false;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1) return { problem: "missing `]`" };
    host = text.slice(1, close);
    bracketed = true;
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return { problem: "expected `:port` after `]`" };
      portText = rest.slice(1);
    }
  } else if (text.indexOf(":") !== -1 && text.indexOf(":") === text.lastIndexOf(":")) {
    host = text.slice(0, text.indexOf(":"));
    portText = text.slice(text.indexOf(":") + 1);
  }
  if (portText === undefined) return { host, bracketed };
  if (!/^[1-9]\d{0,4}$/.test(portText) || Number(portText) > 65535) {
    return { problem: `port "${portText}" is not a number from 1 to 65535` };
  }
  return { host, port: Number(portText), bracketed };
}

function parseRange(
  host: string,
  bracketed: boolean,
): { family: 4 | 6; network: bigint; prefix: number } | { problem: string } {
  const [addressText, prefixText, ...extra] = host.split("/");
  if (extra.length > 0) return { problem: "more than one `/`" };
  const address = addressText.includes(":") ? parseIpv6(addressText) : parseIpv4Strict(addressText);
  if (address === null || (bracketed && address.family !== 6)) {
    return { problem: `"${addressText}" is not an IP address (IPv4 as a dotted quad, IPv6 without zone)` };
  }
  const bits = ADDRESS_BITS[address.family];
  if (prefixText === undefined) return { family: address.family, network: address.value, prefix: bits };
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return { problem: `prefix length "${prefixText}" is not a number from 0 to ${bits}` };
  }
  const prefix = Number(prefixText);
  const hostBits = BigInt(bits - prefix);
  if ((address.value >> hostBits) << hostBits !== address.value) {
    return { problem: `host bits are set; the network of /${prefix} is written differently` };
  }
  return { family: address.family, network: address.value, prefix };
}

/** Whether the rule's port scope lets it apply to `port`. */
function appliesToPort(rule: Rule, port: number): boolean {
  return rule.port === undefined || rule.port === port;
}

/** Whether `rule` matches the (normalised) host name on `port`: `*` and domain rules can. */
export function ruleMatchesName(rule: Rule, name: string, port: number): boolean {
  if (!appliesToPort(rule, port)) return false;
  return rule.kind === "any" || (rule.kind === "domain" && isNameWithin(name, rule.domain));
}

/** Whether `rule` matches one address form on `port`: `*` and range rules can. */
export function ruleMatchesAddress(rule: Rule, address: IpAddress, port: number): boolean {
  if (!appliesToPort(rule, port)) return false;
  if (rule.kind === "any") return true;
  if (rule.kind !== "range" || rule.family !== address.family) return false;
  const hostBits = BigInt(ADDRESS_BITS[rule.family] - rule.prefix);
  return address.value >> hostBits === rule.network >> hostBits;
}

/** Whether a rule is the bare `*` (no port), which in `deny` means deny-by-default rather than an explicit deny. */
export function isCatchAll(rule: Rule): boolean {
  return rule.kind === "any" && rule.port === undefined;
}
