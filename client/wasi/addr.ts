/**
 * IP address text <-> bytes, and the WASIX address structs in linear memory:
 * `__wasi_addr_port_t` (20 bytes: u8 tag, u8 padding, u16 port, 16 address bytes) and `__wasi_addr_t`
 * (18 bytes: u8 tag, u8 padding, 16 address bytes). Pure functions, table-tested.
 *
 * Port byte order: the port is a `u16` in the guest's own (little-endian) order, i.e. host order, not
 * network order — wasix-libc stores `ntohs(sin_port)` and Wasmer reads it with `from_ne_bytes`. Address
 * bytes are in network order (`127,0,0,1` for 127.0.0.1). Addresses are written the same way they are read,
 * so a port round-trips through `sock_addr_local`.
 *
 * @module
 */

/** WASIX address family tags (`__wasi_address_family_t`). */
export const AddressFamily = { UNSPEC: 0, INET4: 1, INET6: 2, UNIX: 3 } as const;

/** Size of `__wasi_addr_port_t` in bytes. */
export const ADDR_PORT_SIZE = 20;
/** Size of `__wasi_addr_t` in bytes. */
export const ADDR_SIZE = 18;

/** An IP socket address as the socket core uses it. */
export interface SocketAddress {
  /** 4 or 6. */
  family: 4 | 6;
  /** Address text: dotted quad or RFC 5952 IPv6 text (no brackets). */
  address: string;
  /** Port, 0-65535. */
  port: number;
}

/** Parses an IPv4 dotted quad; null when `text` is not one. */
export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** Parses IPv6 text (with optional brackets and an embedded IPv4 tail); null when `text` is not one. */
export function parseIpv6(text: string): Uint8Array | null {
  let s = text;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) return null;
  const words: number[] = [];
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parseHalf = (half: string): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    const groups = half.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parseHalf(halves[0]);
  const tail = halves.length === 2 ? parseHalf(halves[1]) : [];
  if (!head || !tail) return null;
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return null;
    words.push(...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    if (head.length !== 8) return null;
    words.push(...head);
  }
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

/** Parses an IP literal of either family; null for anything else (host names included). */
export function parseIp(text: string): { family: 4 | 6; bytes: Uint8Array } | null {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(text);
  if (v6) return { family: 6, bytes: v6 };
  return null;
}

/** Formats 4 or 16 address bytes as text (IPv6 in RFC 5952 form: lower case, longest zero run as `::`). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i] << 8) | bytes[2 * i + 1]);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart === 0 && bestLen === 5 && words[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/**
 * Parses a peer as the wasmnet server reports it (`"1.2.3.4:80"`, `"[::1]:80"`, or a bare `"::1:80"`
 * where the last colon separates the port); null when it cannot be read.
 */
export function parseHostPort(text: string): SocketAddress | null {
  let host: string, port: string;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracket) [host, port] = [bracket[1], bracket[2]];
  else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return null;
    [host, port] = [text.slice(0, colon), text.slice(colon + 1)];
  }
  const ip = parseIp(host);
  const n = Number(port);
  if (!ip || !/^\d+$/.test(port) || n > 65535) return null;
  return { family: ip.family, address: formatIp(ip.bytes), port: n };
}

/** Reads a `__wasi_addr_port_t` at `ptr`; null when its tag is not INET4/INET6. */
export function readAddrPort(view: DataView, ptr: number): SocketAddress | null {
  const tag = view.getUint8(ptr);
  const port = view.getUint16(ptr + 2, true);
  if (tag === AddressFamily.INET4) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset + ptr + 4, 4).slice();
    return { family: 4, address: formatIp(bytes), port };
  }
  if (tag === AddressFamily.INET6) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset + ptr + 4, 16).slice();
    return { family: 6, address: formatIp(bytes), port };
  }
  return null;
}

/** Writes `addr` as a `__wasi_addr_port_t` at `ptr` (all 20 bytes, unused ones zero). */
export function writeAddrPort(view: DataView, ptr: number, addr: SocketAddress): void {
  const out = new Uint8Array(view.buffer, view.byteOffset + ptr, ADDR_PORT_SIZE);
  out.fill(0);
  const ip = parseIp(addr.address);
  out[0] = addr.family === 6 ? AddressFamily.INET6 : AddressFamily.INET4;
  view.setUint16(ptr + 2, addr.port, true);
  if (ip) out.set(ip.bytes, 4);
}

/** Writes an IP as a `__wasi_addr_t` (18 bytes) at `ptr`. */
export function writeAddr(view: DataView, ptr: number, address: string): void {
  const out = new Uint8Array(view.buffer, view.byteOffset + ptr, ADDR_SIZE);
  out.fill(0);
  const ip = parseIp(address);
  if (!ip) return;
  out[0] = ip.family === 6 ? AddressFamily.INET6 : AddressFamily.INET4;
  out.set(ip.bytes, 2);
}

/** The unspecified address of a family (`0.0.0.0` or `::`), port 0: what is reported when unknown. */
export function unspecified(family: 4 | 6): SocketAddress {
  return { family, address: family === 4 ? "0.0.0.0" : "::", port: 0 };
}
