/**
 * The ranges and names the default policy blocks: everything the IANA special-purpose address registries
 * mark as not globally reachable (with clear boundaries), plus multicast, broadcast and `localhost`.
 * IPv4 hidden inside IPv6 (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is not listed: the
 * decisions check the embedded IPv4 address against these IPv4 ranges.
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
  "2001:2::/48", // benchmarking
  "2001:10::/28", // deprecated ORCHID
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
