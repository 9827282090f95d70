/**
 * Policy reload: reads and checks a policy exactly as start-up does (the file, its rules, the `[tls]` CA
 * files, the `[auth]` secret), so a file start-up would refuse is refused with the same error, and says
 * which changed settings only a restart applies. Putting the new policy in force is the server's
 * (src/ops/live_policy.ts holds it); logging and counting the outcome is {@link reportReload}'s.
 *
 * @module
 */

import { Authenticator } from "../auth/mod.ts";
import { caCertsFor } from "../core/sockets/tls.ts";
import { loadPolicyFile, type Policy } from "../policy/mod.ts";
import { notLiveChanges } from "./live_policy.ts";
import type { EventFields, LogLevel } from "./logger.ts";

/** What a reload did. */
export type ReloadResult =
  /** The new policy is in force; `notLive` names changed settings that apply only after a restart. */
  | { ok: true; policy: Policy; notLive: string[] }
  /** Nothing changed; `error` is what start-up would have said about the file. */
  | { ok: false; error: Error };

/** A checked policy ready to be put in force, with its token checker. */
export interface Reloaded {
  policy: Policy;
  auth: Authenticator;
  notLive: string[];
}

/** Reads `source` (a file path, or a policy) and checks it as start-up would. Throws start-up's error. */
export async function prepareReload(source: string | Policy | undefined, current: Policy): Promise<Reloaded> {
  if (source === undefined) throw new Error("no policy file to reload (the server started without one)");
  const policy = typeof source === "string" ? await loadPolicyFile(source) : source;
  await caCertsFor(policy);
  const auth = Authenticator.fromConfig(policy.config.auth);
  return { policy, auth, notLive: notLiveChanges(current.config, policy.config) };
}

/** Logs a reload's outcome: `policy_reloaded` (and `reload_not_live`), or `policy_reload_failed`. */
export function reportReload(
  result: ReloadResult,
  events: ((level: LogLevel, event: string, fields?: EventFields) => void) | undefined,
): void {
  if (!result.ok) return events?.("error", "policy_reload_failed", { error: result.error.message });
  events?.("info", "policy_reloaded", {
    policy: result.policy.describe(),
    not_live: result.notLive.length > 0 ? result.notLive : undefined,
  });
  if (result.notLive.length > 0) {
    events?.("warn", "reload_not_live", {
      settings: result.notLive,
      note: "these settings take effect after a restart",
    });
  }
}
