/**
 * The {@link Policy} object: a checked config with its parsed rules, built from a TOML file, a config object,
 * the built-in default, or `--no-policy`. Decisions about it live in `decide.ts`.
 *
 * @module
 */

import {
  checkConfig,
  type CheckedConfig,
  type PolicyConfig,
  type PolicyConfigInput,
  type PolicyRules,
} from "./config.ts";
import { PolicyError } from "./policy_error.ts";
import { formatPortSet } from "./ports.ts";
import { isCatchAll, type Rule } from "./rules.ts";
import { readPolicyToml } from "./toml.ts";
import { type Narrowing, narrowNetwork, type TargetNarrowing } from "./narrow.ts";

/** {@link Policy.source} of the policy used when no file is given. */
export const BUILT_IN_SOURCE = "built-in default";
/** {@link Policy.source} of the allow-everything policy. */
export const NO_POLICY_SOURCE = "--no-policy";

/** A checked, immutable policy. Build one with the static methods; ask it questions with `decide*`. */
export class Policy {
  /** The fully checked config, every section with its defaults filled in. */
  readonly config: PolicyConfig;
  /** Where it came from: `built-in default`, `--no-policy`, a file path, or `config object`. */
  readonly source: string;
  /** The parsed rules of `deny`, `allow` and `bind_addrs`. */
  readonly rules: PolicyRules;
  /** True for `--no-policy`: every decision is allowed, and says so. */
  readonly unrestricted: boolean;
  /** Target lists a target must also match (from {@link Policy.narrow}); empty for an un-narrowed policy. */
  readonly narrowings: readonly TargetNarrowing[];

  private constructor(
    checked: CheckedConfig,
    source: string,
    unrestricted: boolean,
    narrowings: readonly TargetNarrowing[] = [],
  ) {
    this.config = checked.config;
    this.rules = checked.rules;
    this.source = source;
    this.unrestricted = unrestricted;
    this.narrowings = narrowings;
    Object.freeze(this);
  }

  /**
   * A stricter copy of this policy for one session (e.g. from token claims): every rule and limit stays, the
   * targets must also match `narrowing.targets`, and the limits become the smaller ones. Never widens.
   */
  narrow(narrowing: Narrowing): Policy {
    const config = Object.freeze({ ...this.config, network: narrowNetwork(this.config.network, narrowing) });
    const narrowings = narrowing.targets === undefined
      ? this.narrowings
      : [...this.narrowings, { source: narrowing.source, rules: narrowing.targets }];
    return new Policy(
      { config, rules: this.rules },
      this.source,
      this.unrestricted,
      Object.freeze(narrowings),
    );
  }

  /** `--no-policy`: no deny rules, allow `*`, bind any address and any port; other limits at their defaults. */
  static allowAll(): Policy {
    const input = { network: { deny: [], allow: ["*"], bind_addrs: ["*"], bind_ports: "*" } };
    return new Policy(checkConfig(input, NO_POLICY_SOURCE), NO_POLICY_SOURCE, true);
  }

  /** The built-in default used when no policy file is given: `DEFAULT_DENY`, allow `*`, defaults elsewhere. */
  static defaults(): Policy {
    return new Policy(checkConfig({}, BUILT_IN_SOURCE), BUILT_IN_SOURCE, false);
  }

  /** Parses and checks policy TOML. `source` (the file name) prefixes every error message. Throws {@link PolicyError}. */
  static fromToml(text: string, source = "policy"): Policy {
    return new Policy(checkConfig(readPolicyToml(text, source), source), source, false);
  }

  /** Checks a partial config object exactly as TOML is checked. Throws {@link PolicyError}. */
  static fromConfig(config: PolicyConfigInput, source = "config object"): Policy {
    return new Policy(checkConfig(config, source), source, false);
  }

  /** Whether `deny` holds a bare `*`: only what `allow` names gets through. */
  get denyByDefault(): boolean {
    return this.rules.deny.some(isCatchAll);
  }

  /** One line for the startup log, e.g. `policy.toml: deny 23 rules, allow 1 rule (*), bind ports 3000-9999, max 50 sockets/session`. */
  describe(): string {
    const limits = `max ${this.config.network.max_connections} sockets/session`;
    if (this.unrestricted) {
      return `${this.source}: everything allowed (no deny rules, bind any address and port), ${limits}`;
    }
    const deny = `deny ${countRules(this.rules.deny)}${this.denyByDefault ? " (deny-by-default)" : ""}`;
    const allow = `allow ${countRules(this.rules.allow)}${previewRules(this.rules.allow)}`;
    const bind = `bind ports ${formatPortSet(this.config.network.bind_ports)}`;
    const auth = this.config.auth.required ? ", auth required" : "";
    return `${this.source}: ${deny}, ${allow}, ${bind}, ${limits}${auth}`;
  }
}

function countRules(rules: readonly Rule[]): string {
  return `${rules.length} rule${rules.length === 1 ? "" : "s"}`;
}

function previewRules(rules: readonly Rule[]): string {
  if (rules.length === 0) return "";
  const shown = rules.slice(0, 3).map((r) => r.text);
  return ` (${shown.join(", ")}${rules.length > 3 ? ", …" : ""})`;
}

/** Reads and checks a policy file. A missing or unreadable file, bad TOML or a schema error is a {@link PolicyError} naming the file. */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const problem = err instanceof Deno.errors.NotFound ? "policy file not found" : "cannot read policy file";
    throw new PolicyError(path, `${problem}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return Policy.fromToml(text, path);
}

/** Like {@link loadPolicyFile}, synchronously (for the builder's `policyFile()`, which returns the builder). */
export function loadPolicyFileSync(path: string): Policy {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    const problem = err instanceof Deno.errors.NotFound ? "policy file not found" : "cannot read policy file";
    throw new PolicyError(path, `${problem}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return Policy.fromToml(text, path);
}
