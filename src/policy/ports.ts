/**
 * Port sets for `bind_ports`: `"3000-9999"`, `"3000,8080,9000-9100"`, `8080`, `[8080, "9000-9100"]` or `"*"`.
 *
 * @module
 */

/** An inclusive range of ports; a single port has `first === last`. */
export interface PortRange {
  /** The lowest port in the range. */
  readonly first: number;
  /** The highest port in the range (inclusive). */
  readonly last: number;
}

/** Every port, 1-65535 (`"*"` in a config, and `--no-policy`). */
export const ALL_PORTS: readonly PortRange[] = Object.freeze([{ first: 1, last: 65535 }]);
/** The ports an unprivileged process may normally bind, 1024-65535: the default of `bind_ports`. */
export const UNPRIVILEGED_PORTS: readonly PortRange[] = Object.freeze([{ first: 1024, last: 65535 }]);

/** The result of {@link parsePortSet}: the ranges, or a sentence saying what is wrong. */
export type PortSetParse = { ranges: PortRange[] } | { problem: string };

/**
 * Parses a port set from a config value: an integer, a string of comma-separated ports and ranges, `"*"`
 * (every port), or an array of integers and such strings. An empty array is an empty set. `{ first, last }`
 * objects are accepted too, so a checked config can be passed back in.
 */
export function parsePortSet(value: unknown): PortSetParse {
  const items = Array.isArray(value) ? value : [value];
  const ranges: PortRange[] = [];
  for (const item of items) {
    const parsed = typeof item === "number" ? parsePortText(String(item)) : parsePortItem(item);
    if ("problem" in parsed) return parsed;
    ranges.push(...parsed.ranges);
  }
  return { ranges };
}

function parsePortItem(item: unknown): PortSetParse {
  if (isPortRange(item)) return parsePortText(`${item.first}-${item.last}`);
  if (typeof item !== "string") return { problem: 'ports must be integers or strings like "3000-9999"' };
  if (item.trim() === "*") return { ranges: [...ALL_PORTS] };
  const ranges: PortRange[] = [];
  for (const piece of item.split(",")) {
    const parsed = parsePortText(piece.trim());
    if ("problem" in parsed) return parsed;
    ranges.push(...parsed.ranges);
  }
  return { ranges };
}

function isPortRange(item: unknown): item is PortRange {
  return typeof item === "object" && item !== null && Object.keys(item).sort().join() === "first,last" &&
    Number.isInteger((item as PortRange).first) && Number.isInteger((item as PortRange).last);
}

function parsePortText(text: string): PortSetParse {
  const match = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(text);
  if (!match) return { problem: `"${text}" is not a port or a range like 3000-9999` };
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first < 1 || last > 65535) return { problem: `"${text}": ports are 1-65535` };
  if (first > last) return { problem: `"${text}": the range is backwards` };
  return { ranges: [{ first, last }] };
}

/** Whether `port` is in one of the ranges. */
export function portInSet(port: number, ranges: readonly PortRange[]): boolean {
  return ranges.some((r) => port >= r.first && port <= r.last);
}

/** Writes ranges back in config syntax, e.g. `3000-9999,8080`; `none` for the empty set. */
export function formatPortSet(ranges: readonly PortRange[]): string {
  if (ranges.length === 0) return "none";
  return ranges.map((r) => (r.first === r.last ? String(r.first) : `${r.first}-${r.last}`)).join(",");
}

/** Every port in the ranges, ascending, each once. */
export function listPorts(ranges: readonly PortRange[]): number[] {
  const ports = new Set<number>();
  for (const r of ranges) for (let p = r.first; p <= r.last; p++) ports.add(p);
  return [...ports].sort((a, b) => a - b);
}
