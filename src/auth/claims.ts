/**
 * What a token's claims mean to wasmnet. Everything wasmnet reads sits under one `wasmnet` claim:
 *
 * ```json
 * { "sub": "user-42", "exp": 1767225600,
 *   "wasmnet": { "targets": ["irc.libera.chat:6697", "93.184.216.0/24"], "max_connections": 4,
 *                "max_listeners": 0, "max_bandwidth_mbps": 2 } }
 * ```
 *
 * Each key only narrows the server's policy (see `src/policy/narrow.ts`): `targets` are rules a target must
 * match in addition to the policy, limits become the smaller of policy and claim. A claim can never widen
 * the policy. An unknown key or a bad value refuses the token (a typo must not silently grant more).
 *
 * @module
 */

import { type Narrowing, parseRule, type Rule } from "../policy/mod.ts";
import { TokenError } from "./jwt.ts";

/** The keys of the `wasmnet` claim that set a limit, with their smallest allowed value. */
const LIMIT_KEYS = {
  max_connections: 1,
  max_listeners: 0,
  max_pending_connects: 1,
  max_bandwidth_mbps: 1,
} as const;

/** Most target rules a token may carry (a bound on per-session matching work). */
export const MAX_TARGET_RULES = 256;

/** The narrowing a verified payload asks for: empty (`{source:"token"}`) when it has no `wasmnet` claim. */
export function narrowingFromClaims(payload: Record<string, unknown>): Narrowing {
  const claim = payload.wasmnet;
  if (claim === undefined) return { source: "token" };
  if (typeof claim !== "object" || claim === null || Array.isArray(claim)) {
    throw new TokenError("bad_claims", "token claim wasmnet must be an object");
  }
  const out: { -readonly [K in keyof Narrowing]: Narrowing[K] } = { source: "token" };
  for (const [key, value] of Object.entries(claim)) {
    if (key === "targets") {
      out.targets = parseTargets(value);
    } else if (Object.hasOwn(LIMIT_KEYS, key)) {
      const min = LIMIT_KEYS[key as keyof typeof LIMIT_KEYS];
      if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > 1_000_000) {
        throw new TokenError("bad_claims", `token claim wasmnet.${key} must be an integer from ${min}`);
      }
      out[key as keyof typeof LIMIT_KEYS] = value;
    } else {
      throw new TokenError("bad_claims", `token claim wasmnet.${key.slice(0, 40)} is not known`);
    }
  }
  return out;
}

function parseTargets(value: unknown): Rule[] {
  if (!Array.isArray(value) || value.length > MAX_TARGET_RULES) {
    throw new TokenError(
      "bad_claims",
      `token claim wasmnet.targets must be an array of at most ${MAX_TARGET_RULES} rules`,
    );
  }
  return value.map((text, i) => {
    const parsed = typeof text === "string"
      ? parseRule(text, `token.targets[${i}] ${JSON.stringify(text)}`)
      : null;
    if (parsed === null || "problem" in parsed) {
      throw new TokenError("bad_claims", `token claim wasmnet.targets[${i}] is not a valid rule`);
    }
    return parsed.rule;
  });
}
