/**
 * Who the client is behind a reverse proxy: a pure decision from the peer address, the `Forwarded` or
 * `X-Forwarded-For` header and `server.trusted_proxies`, so per-IP caps and the decision log count the browser's address and
 * not the proxy's. The header is believed only as far as trusted proxies wrote it: read from the right,
 * each trusted hop is skipped and the first address that is not a trusted proxy is the client. Anything the
 * client put further left is never used, so it cannot pick its own address.
 *
 * @module
 */

import { formatIp, type IpAddress, parseIpv4Strict, parseIpv6, unmapped } from "./address.ts";
import { type Rule, ruleMatchesAddress } from "./rules.ts";

/** The client address of one request, and the trusted proxy it came through (if any). */
export interface ClientAddress {
  /** The address to count and log the client under. */
  readonly ip: string;
  /** The peer, when it is a trusted proxy whose header was used. */
  readonly via?: string;
}

/**
 * The client of a request from `peer` carrying `forwardedFor` (the `X-Forwarded-For` value, or null) and
 * `forwarded` (the RFC 7239 `Forwarded` value, or null; it wins when both are there). Untrusted peer, no
 * trusted proxies configured, or a header that cannot be read to an untrusted hop: the peer itself (a
 * malformed or obfuscated entry stops the walk, and the proxy is counted as it was before this feature).
 */
export function clientAddressOf(
  peer: string,
  forwardedFor: string | null,
  trusted: readonly Rule[],
  forwarded: string | null = null,
): ClientAddress {
  if (trusted.length === 0 || (forwardedFor === null && forwarded === null)) return { ip: peer };
  if (!isTrusted(parseAddress(peer), trusted)) return { ip: peer };
  const hops = forwarded !== null
    ? forwardedForHops(forwarded)
    : forwardedFor!.split(",").map((h) => h.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const address = parseAddress(hops[i]);
    if (address === null) return { ip: peer };
    if (!isTrusted(address, trusted)) return { ip: formatIp(address), via: peer };
  }
  return { ip: peer }; // every hop is a trusted proxy: the request started at one of them
}

/** Whether the peer `ip` is one of the trusted proxies (exempt from the per-IP handshake cap). */
export function isTrustedProxy(ip: string, trusted: readonly Rule[]): boolean {
  return trusted.length > 0 && isTrusted(parseAddress(ip), trusted);
}

/** The `for=` values of a `Forwarded` header, in order, unquoted (`for="[2001:db8::1]:443"` → `[2001:db8::1]:443`). */
function forwardedForHops(header: string): string[] {
  const hops: string[] = [];
  for (const m of header.matchAll(/(?:^|[;,\s])for\s*=\s*(?:"([^"]*)"|([^;,\s]*))/gi)) {
    hops.push(m[1] ?? m[2]);
  }
  return hops;
}

/** An `X-Forwarded-For` entry: an IPv4 dotted quad or an IPv6 address, each optionally with a port. */
function parseAddress(text: string): IpAddress | null {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed) return parseIpv6(bracketed[1]);
  if (text.includes(":") && text.indexOf(":") !== text.lastIndexOf(":")) return parseIpv6(text);
  return parseIpv4Strict(text.replace(/:\d{1,5}$/, ""));
}

/** Whether `address` (or the IPv4 address it maps, `::ffff:a.b.c.d`) is in a trusted range. */
function isTrusted(address: IpAddress | null, trusted: readonly Rule[]): boolean {
  if (address === null) return false;
  const forms = [address, unmapped(address)];
  return trusted.some((rule) => forms.some((form) => ruleMatchesAddress(rule, form, 0)));
}
