/**
 * A self-signed certificate made at start-up, for `--webtransport PORT` without `--webtransport-cert`:
 * ECDSA P-256, valid 13 days (browsers accept a self-signed certificate by its hash only if it is ECDSA and
 * valid at most 14 days), for the names given. Made with WebCrypto and a few lines of DER: X.509 is small
 * when the only choices are these, and no well-kept X.509 writer is on the import map (JSR is not reachable;
 * the npm ones pull in whole ASN.1 stacks).
 *
 * @module
 */

/** How long a generated certificate is valid (Chromium's limit for hash-pinned certificates is 14 days). */
export const GENERATED_VALIDITY_DAYS = 13;

/** A certificate and its key, PEM, and when it stops being valid. */
export interface GeneratedCertificate {
  cert: string;
  key: string;
  notAfter: Date;
}

/** Makes a self-signed certificate for `names` (host names or IP addresses), valid from an hour ago. */
export async function generateCertificate(
  names: readonly string[],
  now = new Date(),
): Promise<GeneratedCertificate> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(notBefore.getTime() + GENERATED_VALIDITY_DAYS * 86_400_000);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // positive
  const name = seq(set(seq(oid(OID.commonName), tlv(0x0c, utf8("wasmnet")))));
  const altNames = names.map((n) => {
    const ip = ipBytes(n);
    return ip ? tlv(0x87, ip) : tlv(0x82, utf8(n));
  });
  const tbs = seq(
    tlv(0xa0, integer(new Uint8Array([2]))),
    integer(serial),
    seq(oid(OID.ecdsaWithSha256)),
    name,
    seq(utcTime(notBefore), utcTime(notAfter)),
    name,
    spki,
    tlv(0xa3, seq(seq(oid(OID.subjectAltName), tlv(0x04, seq(...altNames))))),
  );
  const raw = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      tbs as Uint8Array<ArrayBuffer>,
    ),
  );
  // WebCrypto signs as r ‖ s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  const signature = seq(integer(raw.subarray(0, 32)), integer(raw.subarray(32)));
  const cert = seq(tbs, seq(oid(OID.ecdsaWithSha256)), tlv(0x03, concat(new Uint8Array([0]), signature)));
  return { cert: pem("CERTIFICATE", cert), key: pem("PRIVATE KEY", pkcs8), notAfter };
}

const OID = {
  commonName: "2.5.4.3",
  subjectAltName: "2.5.29.17",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
};

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

/** One DER element: tag, definite length, content. */
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 0xff]
    : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return concat(new Uint8Array([tag, ...length]), content);
}

const seq = (...items: Uint8Array[]) => tlv(0x30, concat(...items));
const set = (...items: Uint8Array[]) => tlv(0x31, concat(...items));
const utf8 = (text: string) => new TextEncoder().encode(text);

/** A non-negative INTEGER from big-endian bytes (leading zeros dropped, a 0 added if the top bit is set). */
function integer(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return tlv(0x02, v[0] & 0x80 ? concat(new Uint8Array([0]), v) : v);
}

function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, new Uint8Array(out));
}

function utcTime(date: Date): Uint8Array {
  const two = (n: number) => String(n).padStart(2, "0");
  const text = `${two(date.getUTCFullYear() % 100)}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}` +
    `${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return tlv(0x17, utf8(text));
}

/** The 4 or 16 bytes of an IP literal, or null for a host name. */
function ipBytes(text: string): Uint8Array | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) return new Uint8Array(v4.slice(1).map(Number));
  if (!text.includes(":")) return null;
  const [head, tail = ""] = text.split("::");
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const h = parse(head), t = text.includes("::") ? parse(tail) : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) return null;
  return new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff]));
}

function pem(label: string, der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
