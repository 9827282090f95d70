/**
 * What every decision of the policy says: allowed or not, the rule that decided, and why. In a module of
 * its own so the deciding (`decide.ts`) and the narrowing by tokens (`narrow.ts`) share it without
 * importing each other.
 *
 * @module
 */

/** The answer to one policy question. */
export interface Decision {
  /** Whether the operation may go ahead. */
  allowed: boolean;
  /** Which rule decided, for logs: `network.deny[3] "127.0.0.0/8"`, `default (deny "*")`, `--no-policy`. */
  rule: string;
  /** A short sentence for logs, and for the client unless `clientReason` is set, e.g. `127.0.0.1:80 is in a blocked range (127.0.0.0/8)`. */
  reason: string;
  /**
   * What the client is told instead of `reason`, when `reason` names what the client must not learn: an
   * address a name resolved to, or the range it fell in (issue 13). Only the decision log sees those.
   */
  clientReason?: string;
}
