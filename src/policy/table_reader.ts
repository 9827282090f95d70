/**
 * Strict reading of one TOML table for the policy schema (`config.ts`): each key checked for its type and
 * range as it is read, every key that was not read refused, every problem a {@link PolicyError} naming the
 * source, the key and the value.
 *
 * @module
 */

import { PolicyError } from "./policy_error.ts";
import { parsePortSet, type PortRange } from "./ports.ts";
import { parseRule, type Rule } from "./rules.ts";

/**
 * A TOML float. The TOML reader wraps floats in this so that `max_connections = 50.0` is reported as not an
 * integer instead of passing as 50 (in JavaScript `50.0 === 50`).
 */
export class TomlFloat {
  /** Wraps the float's value. */
  constructor(readonly value: number) {}
}

type Table = Record<string, unknown>;

/** Reads the keys of one table, checking each, and remembers which keys were read so the rest can be refused. */
export class TableReader {
  private readonly read = new Set<string>();

  constructor(
    private readonly source: string,
    private readonly path: string,
    private readonly table: Table,
  ) {}

  /** A sub-table; absent means empty. */
  section(name: string): TableReader {
    const value = this.take(name);
    return new TableReader(
      this.source,
      this.keyOf(name),
      value === undefined ? {} : asTable(value, this.source, this.keyOf(name)),
    );
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      this.fail(key, `must be an integer, got ${describeValue(value)}`);
    }
    if (value < min || value > max) this.fail(key, `must be from ${min} to ${max}, got ${value}`);
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") this.fail(key, `must be true or false, got ${describeValue(value)}`);
    return value;
  }

  string(key: string, fallback: string, problemOf: (s: string) => string | null = () => null): string {
    const value = this.take(key);
    if (value === undefined) return fallback;
    if (typeof value !== "string") this.fail(key, `must be a string, got ${describeValue(value)}`);
    const problem = problemOf(value);
    if (problem !== null) this.fail(key, problem);
    return value;
  }

  stringList(
    key: string,
    fallback: readonly string[],
    problemOf: (s: string) => string | null = () => null,
  ): readonly string[] {
    const value = this.take(key);
    if (value === undefined) return [...fallback];
    if (!Array.isArray(value)) this.fail(key, `must be an array of strings, got ${describeValue(value)}`);
    for (const [i, item] of value.entries()) {
      if (typeof item !== "string") this.fail(`${key}[${i}]`, `must be a string, got ${describeValue(item)}`);
      const problem = problemOf(item);
      if (problem !== null) this.fail(`${key}[${i}]`, problem);
    }
    return [...value];
  }

  /** A table of string values (e.g. `[wisp.password_users]`); absent means empty. */
  stringTable(key: string): Readonly<Record<string, string>> {
    const table = this.section(key);
    const out: Record<string, string> = {};
    for (const name of Object.keys(table.table)) {
      if (name.length > 255) table.fail(name, "must be at most 255 bytes long");
      out[name] = table.string(name, "");
    }
    table.finish();
    return out;
  }

  /** 0 when `key` is the word `"auto"`; undefined when it is not a string (read it as a number then). */
  autoOr(key: string): 0 | undefined {
    const value = this.peek(key);
    if (typeof value !== "string") return undefined;
    this.read.add(key);
    if (value !== "auto") this.fail(key, `must be an integer or "auto", got ${describeValue(value)}`);
    return 0;
  }

  /** One of a few words. */
  oneOf<T extends string>(key: string, fallback: T, words: readonly T[]): T {
    const value = this.string(key, fallback);
    if (!(words as readonly string[]).includes(value)) {
      const known = words.map((w) => JSON.stringify(w)).join(", ");
      this.fail(key, `must be one of ${known}, got ${describeValue(value)}`);
    }
    return value as T;
  }

  /** A list of target rules, each labelled with its key and index. */
  rules(key: string, fallback: readonly string[]): { texts: readonly string[]; rules: Rule[] } {
    const texts = this.stringList(key, fallback);
    const rules = texts.map((text, i) => {
      const itemKey = `${this.keyOf(key)}[${i}]`;
      const parsed = parseRule(text, `${itemKey} ${JSON.stringify(text)}`);
      if ("problem" in parsed) {
        throw new PolicyError(this.source, `${JSON.stringify(text)} is not a valid rule: ${parsed.problem}`, {
          key: itemKey,
          rule: text,
        });
      }
      return parsed.rule;
    });
    return { texts, rules };
  }

  /** A list of IP addresses and CIDR ranges only: no `*`, names or ports (absent: empty). */
  addressRules(key: string, what: string): { texts: readonly string[]; rules: Rule[] } {
    const list = this.rules(key, []);
    for (const [i, rule] of list.rules.entries()) {
      if (rule.kind !== "range" || rule.port !== undefined) {
        throw new PolicyError(
          this.source,
          `${
            JSON.stringify(rule.text)
          }: ${what} are IP addresses or CIDR ranges, without ports (not "*" or names)`,
          { key: `${this.keyOf(key)}[${i}]`, rule: rule.text },
        );
      }
    }
    return list;
  }

  /** A list of bind address rules (`*`, IPs and ranges, no ports), or null when absent. */
  bindAddrRules(key: string): { texts: readonly string[]; rules: Rule[] } | null {
    const value = this.take(key);
    if (value === undefined || value === null) return null;
    const list = this.rules(key, []);
    for (const [i, rule] of list.rules.entries()) {
      if (rule.kind === "domain" || rule.port !== undefined) {
        throw new PolicyError(
          this.source,
          `${JSON.stringify(rule.text)}: bind addresses are IPs, CIDR ranges or "*", without ports`,
          { key: `${this.keyOf(key)}[${i}]`, rule: rule.text },
        );
      }
    }
    return list;
  }

  portSet(key: string, fallback: readonly PortRange[]): readonly PortRange[] {
    const value = this.take(key);
    if (value === undefined) return [...fallback];
    const parsed = parsePortSet(value);
    if ("problem" in parsed) this.fail(key, `${parsed.problem} (got ${describeValue(value)})`);
    return parsed.ranges;
  }

  /** Throws a {@link PolicyError} for `key` of this table. */
  fail(key: string, problem: string): never {
    throw new PolicyError(this.source, problem, { key: this.keyOf(key) });
  }

  /** Refuses every key that no reader method asked for. */
  finish(): void {
    for (const key of Object.keys(this.table)) {
      if (this.read.has(key)) continue;
      const kind = this.path === "" ? "section" : "key";
      const known = [...this.read].join(", ");
      this.fail(key, `unknown ${kind} (known: ${known})`);
    }
  }

  private peek(key: string): unknown {
    return Object.hasOwn(this.table, key) ? this.table[key] : undefined;
  }

  private take(key: string): unknown {
    this.read.add(key);
    return this.peek(key);
  }

  private keyOf(key: string): string {
    return this.path === "" ? key : `${this.path}.${key}`;
  }
}

export function asTable(value: unknown, source: string, key: string | undefined): Table {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof TomlFloat) {
    throw new PolicyError(source, `must be a table, got ${describeValue(value)}`, { key });
  }
  return value as Table;
}

/** A short description of a bad value for an error message. */
function describeValue(value: unknown): string {
  if (value instanceof TomlFloat) {
    return `the float ${Number.isInteger(value.value) ? value.value.toFixed(1) : value.value}`;
  }
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? value.slice(0, 80) + "…" : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (value instanceof Date || (typeof value === "object" && value.constructor?.name === "TomlDate")) {
    return "a date";
  }
  if (typeof value === "object") return "a table";
  return typeof value;
}
