/**
 * IP addresses as numbers: parsing every spelling a resolver or socket call would accept, and turning it into
 * one canonical string. Rules only ever see the parsed number, so `0x7f.1`, `::ffff:127.0.0.1` and
 * `127.0.0.1` cannot be told apart by spelling tricks.
 *
 * @module
 */

/** An IP address as an unsigned integer: 32 bits for IPv4, 128 bits for IPv6. */
export interface IpAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The address bits as an unsigned integer. */
  readonly value: bigint;
}

/** Number of bits in an address of each family. */
export const ADDRESS_BITS = { 4: 32, 6: 128 } as const;

const IPV4_MAX = 0xffff_ffffn;
const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Parses the standard dotted quad (`192.0.2.1`: four decimal parts, no leading zeros). Used for rules, where
 * an administrator should write the address the way everyone reads it.
 */
export function parseIpv4Strict(text: string): IpAddress | null {
  if (!DOTTED_QUAD.test(text)) return null;
  return fromOctets(text.split(".").map(Number));
}

/**
 * Parses an IPv4 address the way `inet_aton` does: one to four parts, each decimal, octal (leading `0`) or
 * hex (`0x`), the last part filling the remaining bytes (`127.1`, `2130706433`, `0177.0.0.1`, `0x7f.1`).
 * Resolvers hand these spellings to the kernel as addresses, so the policy must see them as addresses too.
 */
export function parseIpv4Loose(text: string): IpAddress | null {
  const parts = text.split(".");
  if (parts.length > 4) return null;
  const numbers: bigint[] = [];
  for (const part of parts) {
    const n = parseInetAtonNumber(part);
    if (n === null) return null;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  const lastBits = BigInt(8 * (4 - numbers.length));
  if (last >= 1n << lastBits) return null;
  let value = 0n;
  for (const n of numbers) {
    if (n > 255n) return null;
    value = (value << 8n) | n;
  }
  return { family: 4, value: (value << lastBits) | last };
}

function parseInetAtonNumber(part: string): bigint | null {
  if (/^0[xX][0-9a-fA-F]*$/.test(part)) return part.length === 2 ? 0n : BigInt(part);
  if (/^0[0-7]+$/.test(part)) return BigInt("0o" + part.slice(1));
  if (/^(0|[1-9]\d*)$/.test(part)) return BigInt(part);
  return null;
}

/** Parses an IPv6 address without brackets or zone id (`2001:db8::1`, `::ffff:192.0.2.1`). */
export function parseIpv6(text: string): IpAddress | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const compressed = halves.length === 2;
  const head = parseGroups(halves[0], !compressed);
  const tail = compressed ? parseGroups(halves[1], true) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (compressed ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(compressed ? missing : 0).fill(0), ...tail];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(group);
  return { family: 6, value };
}

/** Parses colon-separated 16-bit groups; the last one may be a dotted quad when `ipv4Tail` is set. */
function parseGroups(text: string, ipv4Tail: boolean): number[] | null {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (const [i, part] of parts.entries()) {
    if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16));
    } else if (ipv4Tail && i === parts.length - 1 && parseIpv4Strict(part)) {
      const v4 = Number(parseIpv4Strict(part)!.value);
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else {
      return null;
    }
  }
  return groups;
}

/**
 * Parses a host that is an IP address in any accepted spelling: the odd IPv4 forms of {@link parseIpv4Loose}
 * (one trailing dot allowed), IPv6 with or without brackets, with a zone id (`fe80::1%eth0`) that is dropped.
 * Returns null for anything else, which the caller then treats as a host name.
 */
export function parseIpLiteral(host: string): IpAddress | null {
  if (host.startsWith("[") && host.endsWith("]")) return parseIpv6WithZone(host.slice(1, -1));
  if (host.includes(":")) return parseIpv6WithZone(host);
  return parseIpv4Loose(host.endsWith(".") ? host.slice(0, -1) : host);
}

function parseIpv6WithZone(text: string): IpAddress | null {
  const percent = text.indexOf("%");
  if (percent === -1) return parseIpv6(text);
  const zone = text.slice(percent + 1);
  if (!/^[0-9A-Za-z_.\-]+$/.test(zone)) return null;
  return parseIpv6(text.slice(0, percent));
}

/** How an IPv6 address carries an IPv4 address inside it, and where. */
interface Embedding {
  readonly name: string;
  readonly matches: (value: bigint) => boolean;
  readonly extract: (value: bigint) => bigint;
}

const LOW_32 = (value: bigint) => value & IPV4_MAX;

/**
 * The IPv6 forms that reach (or are treated by some stack as) an IPv4 address. Each is checked as that IPv4
 * address too, so a rule for `127.0.0.0/8` also catches `::ffff:127.0.0.1`, `64:ff9b::7f00:1` and `2002:7f00:1::`.
 */
const EMBEDDINGS: readonly Embedding[] = [
  { name: "IPv4-mapped", matches: (v) => v >> 32n === 0xffffn, extract: LOW_32 },
  { name: "IPv4-translated", matches: (v) => v >> 32n === 0xffff_0000n, extract: LOW_32 },
  // ::/96 is IPv4-compatible, except :: and ::1, which are IPv6's own unspecified and loopback addresses.
  { name: "IPv4-compatible", matches: (v) => v >> 32n === 0n && v > 1n, extract: LOW_32 },
  { name: "NAT64", matches: (v) => v >> 32n === 0x64_ff9bn << 64n, extract: LOW_32 },
  { name: "6to4", matches: (v) => v >> 112n === 0x2002n, extract: (v) => (v >> 80n) & IPV4_MAX },
];

/** The IPv4 address an IPv6 address embeds (mapped, translated, compatible, NAT64, 6to4), or null. */
export function embeddedIpv4(address: IpAddress): IpAddress | null {
  if (address.family !== 6) return null;
  const embedding = EMBEDDINGS.find((e) => e.matches(address.value));
  return embedding ? { family: 4, value: embedding.extract(address.value) } : null;
}

/**
 * Every form a rule must be checked against: the address itself and, for IPv6 that embeds IPv4, that IPv4
 * address. An address is denied if any form is denied.
 */
export function addressForms(address: IpAddress): IpAddress[] {
  const inner = embeddedIpv4(address);
  return inner ? [address, inner] : [address];
}

/** Formats an address in its standard text form: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as `::`). */
export function formatIp(address: IpAddress): string {
  if (address.family === 4) {
    const v = address.value;
    return [24n, 16n, 8n, 0n].map((shift) => String((v >> shift) & 0xffn)).join(".");
  }
  const groups = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((address.value >> shift) & 0xffffn));
  const run = longestZeroRun(groups);
  const hex = groups.map((g) => g.toString(16));
  if (run.length < 2) return hex.join(":");
  return hex.slice(0, run.start).join(":") + "::" + hex.slice(run.start + run.length).join(":");
}

function longestZeroRun(groups: number[]): { start: number; length: number } {
  let best = { start: 0, length: 0 };
  let start = -1;
  for (let i = 0; i <= groups.length; i++) {
    if (i < groups.length && groups[i] === 0) {
      if (start === -1) start = i;
    } else if (start !== -1) {
      if (i - start > best.length) best = { start, length: i - start };
      start = -1;
    }
  }
  return best;
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for, the same host; any other
 * address as it is. (Unlike {@link embeddedIpv4}, only the mapping that is the same socket.)
 */
export function unmapped(address: IpAddress): IpAddress {
  return address.family === 6 && address.value >> 32n === 0xffffn
    ? { family: 4, value: LOW_32(address.value) }
    : address;
}

/**
 * The string to hand to the socket layer: {@link formatIp}, except that IPv4-mapped IPv6 becomes the plain
 * dotted quad (it is the same destination and also works on IPv4-only hosts).
 */
export function canonicalAddress(address: IpAddress): string {
  return formatIp(unmapped(address));
}

/** The canonical IP if `host` is an IP address in any accepted spelling (see {@link parseIpLiteral}), else null. */
export function normaliseAddress(host: string): string | null {
  const address = parseIpLiteral(host);
  return address ? canonicalAddress(address) : null;
}

/** Whether `host` is an IP address in any accepted spelling, rather than a name. */
export function isIpLiteral(host: string): boolean {
  return parseIpLiteral(host) !== null;
}

function fromOctets(octets: number[]): IpAddress {
  return { family: 4, value: octets.reduce((acc, o) => (acc << 8n) | BigInt(o), 0n) };
}
