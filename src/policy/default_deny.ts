/**
 * The ranges and names the default policy blocks: everything the IANA special-purpose address registries
 * mark as not globally reachable (with clear boundaries), plus multicast, broadcast and `localhost`.
 * IPv4 hidden inside IPv6 (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is not listed: the
 * decisions check the embedded IPv4 address against these IPv4 ranges. Teredo (`2001::/32`) embeds an
 * obfuscated IPv4 address too; it is denied whole, as part of `2001::/23`.
 *
 * Sources (checked again for issue 13, from RFC 6890 and the registries as of 2025): IANA "IPv4
 * Special-Purpose Address Registry" and "IPv6 Special-Purpose Address Registry" (every entry whose
 * "Globally Reachable" is False or N/A), RFC 6890, RFC 5737 and RFC 3849 and RFC 9637 (documentation),
 * RFC 6598 (shared space), RFC 7526 (6to4 relay anycast, deprecated), RFC 4380 (Teredo), RFC 6666
 * (discard-only), RFC 9780 (dummy IPv6 prefix), RFC 8215 (local-use NAT64), RFC 9602 (SRv6 SIDs), RFC 3879
 * (site-local, deprecated), RFC 4291 (multicast, link-local), RFC 4193 (unique local), RFC 1112 (240/4).
 * Clear boundaries over exceptions: `192.0.0.0/24` and `2001::/23` are blocked whole, though a few
 * anycast services inside them (PCP, TURN, AMT, AS112, ORCHIDv2, drone remote ID) are globally
 * reachable; a policy can allow them by name.
 *
 * @module
 */

/** The default `network.deny` list. A policy file that has no `deny` key gets exactly this. */
export const DEFAULT_DENY: readonly string[] = Object.freeze([
  // IPv4
  "0.0.0.0/8", // "this network"; 0.0.0.0 reaches the local host on Linux
  "10.0.0.0/8", // private
  "100.64.0.0/10", // carrier-grade NAT shared space
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local, cloud metadata services
  "172.16.0.0/12", // private
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // documentation (TEST-NET-1)
  "192.88.99.0/24", // deprecated 6to4 relay anycast
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // documentation (TEST-NET-2)
  "203.0.113.0/24", // documentation (TEST-NET-3)
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, including the broadcast address 255.255.255.255
  // IPv6
  "::/128", // unspecified
  "::1/128", // loopback
  "64:ff9b:1::/48", // local-use NAT64
  "100::/64", // discard-only
  "2001::/23", // IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28
  "100:0:0:1::/64", // dummy prefix (RFC 9780)
  "2001:db8::/32", // documentation
  "3fff::/20", // documentation
  "5f00::/16", // SRv6 segment identifiers
  "fc00::/7", // unique local
  "fe80::/10", // link-local
  "fec0::/10", // deprecated site-local
  "ff00::/8", // multicast
  // Names
  "localhost", // and every *.localhost
]);
