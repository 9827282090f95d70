/**
 * Host names: the one spelling of a name that rules see and the resolver is asked about.
 *
 * @module
 */

const HOST_NAME_CHARS = /^[A-Za-z0-9_.-]+$/;
const LABEL = /^[a-z0-9_-]{1,63}$/;
/** A last label that is a number means the host was meant as an IPv4 address (WHATWG URL "ends in a number"). */
const NUMERIC_LABEL = /^(\d+|0x[0-9a-f]*)$/;

/**
 * Case-folds `host`, strips one trailing dot and checks it is a valid host name: ASCII letters, digits,
 * hyphens and underscores in dot-separated labels of 1-63 characters, 253 at most in all, and not ending in
 * a numeric label (`256.1.1.1`, `1.2.3.4.5` are failed IP addresses, not names). Returns null if invalid.
 * Call this only after `parseIpLiteral` (address.ts) said the host is not an IP address.
 */
export function normaliseHostName(host: string): string | null {
  if (!HOST_NAME_CHARS.test(host)) return null;
  const name = (host.endsWith(".") ? host.slice(0, -1) : host).toLowerCase();
  if (name.length === 0 || name.length > 253) return null;
  const labels = name.split(".");
  if (!labels.every((label) => LABEL.test(label))) return null;
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) return null;
  return name;
}

/** Whether `name` is `domain` or one of its subdomains (both already normalised). `notexample.com` is not under `example.com`. */
export function isNameWithin(name: string, domain: string): boolean {
  return name === domain || name.endsWith("." + domain);
}
