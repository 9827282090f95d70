/**
 * The one error the policy code throws: a config that cannot be used. It stops startup, so its message names
 * everything an operator needs to fix it: the file, the key and the bad value or rule.
 *
 * @module
 */

/** Where a {@link PolicyError} points, besides the file. */
export interface PolicyErrorDetails {
  /** The config key, e.g. `network.max_connections` or `network.deny[3]`. */
  key?: string;
  /** The rule text that did not parse, when the problem is a rule. */
  rule?: string;
  cause?: unknown;
}

/** A policy file or config object that is unreadable, not TOML, or breaks the schema. */
export class PolicyError extends Error {
  /** The file path, or `config object` / `built-in default` when there is no file. */
  readonly source: string;
  /** The config key at fault, if the problem is in one key. */
  readonly key?: string;
  /** The rule text at fault, if the problem is a rule. */
  readonly rule?: string;

  /** Builds the message `source: key: problem` from its parts. */
  constructor(source: string, problem: string, details: PolicyErrorDetails = {}) {
    const where = details.key === undefined ? source : `${source}: ${details.key}`;
    super(`${where}: ${problem}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "PolicyError";
    this.source = source;
    if (details.key !== undefined) this.key = details.key;
    if (details.rule !== undefined) this.rule = details.rule;
  }
}
