/**
 * Reading policy TOML into the plain values {@link checkConfig} checks: integers as numbers, floats wrapped in
 * {@link TomlFloat} so they cannot pass as integers.
 *
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { TomlFloat } from "./table_reader.ts";
import { PolicyError } from "./policy_error.ts";

/** Parses TOML text; a syntax error is a {@link PolicyError} naming `source` and the line. */
export function readPolicyToml(text: string, source: string): unknown {
  let table: unknown;
  try {
    table = parse(text, { integersAsBigInt: true });
  } catch (err) {
    const where = err instanceof TomlError ? ` at line ${err.line}, column ${err.column}` : "";
    const problem = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new PolicyError(source, `not valid TOML${where}: ${problem}`, { cause: err });
  }
  return separateNumbers(table);
}

/** Turns TOML integers (bigint) into numbers and TOML floats into {@link TomlFloat}, all the way down. */
function separateNumbers(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number") return new TomlFloat(value);
  if (Array.isArray(value)) return value.map(separateNumbers);
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, separateNumbers(inner)]));
  }
  return value;
}
