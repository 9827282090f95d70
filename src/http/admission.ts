/**
 * Admission: who may open a session, decided before the WebSocket upgrade and answered with a plain HTTP
 * status, so a refused client costs one short response and never a session.
 *
 * In order: the Origin header (`[server] allowed_origins`, `require_origin`) → 403; the session caps
 * (`[server] max_sessions` → 503, `max_sessions_per_ip` → 429); the token (`[auth]`) → 401 when missing while
 * required, malformed, badly signed or expired. An admitted session runs under the server's policy narrowed
 * by its token's claims, with its message limits attached to the request for `upgradeToPort`.
 *
 * A session slot is taken before the token is checked (so a flood of slow checks cannot pass the caps) and
 * given back when the session ends, through the `track()` hook every endpoint calls, or at once if the
 * endpoint did not upgrade.
 *
 * @module
 */

import { Authenticator, TokenError, tokensFromRequest } from "../auth/mod.ts";
import type { DecisionLog } from "../core/log.ts";
import { messageLimits, setMessageLimits } from "../core/limits.ts";
import { decideOrigin, type Policy } from "../policy/mod.ts";
import { formatIp, parseIpLiteral, unmapped } from "../policy/address.ts";

/** What an endpoint needs from an admitted request. */
export interface Admitted {
  /** The policy for this session: the server's, narrowed by the token's claims. */
  policy: Policy;
  /** Call when the session is tracked (returns the release to call when it ends). */
  hold(): () => void;
}

/** A refusal: the HTTP status and the rule, as logged. */
export interface Refusal {
  status: 401 | 403 | 429 | 503;
  rule: string;
  reason: string;
}

/** Counts sessions, globally and per client, and admits or refuses upgrades. One per server. */
export class Admission {
  readonly #policy: Policy;
  readonly #auth: Authenticator;
  readonly #log: DecisionLog;
  #total = 0;
  readonly #perClient = new Map<string, number>();

  /** Loads the token secret now (throws `SecretError` when `[auth]` points to a secret that is not there). */
  constructor(
    policy: Policy,
    log: DecisionLog,
    auth: Authenticator = Authenticator.fromConfig(policy.config.auth),
  ) {
    this.#policy = policy;
    this.#log = log;
    this.#auth = auth;
  }

  /** Sessions open (or being admitted) on the server. */
  get sessions(): number {
    return this.#total;
  }

  /** Sessions open (or being admitted) from the client key of `clientIp`. */
  sessionsFrom(clientIp: string): number {
    return this.#perClient.get(clientKey(clientIp)) ?? 0;
  }

  /**
   * Admits `request` and calls `upgrade` with the session's terms, or answers with the refusal. The slot is
   * released if `upgrade` throws, answers anything but 101, or never calls `hold()`.
   */
  admit(
    request: Request,
    url: URL,
    clientIp: string,
    upgrade: (admitted: Admitted) => Response,
  ): Response | Promise<Response> {
    const origin = decideOrigin(this.#policy, request.headers.get("origin"));
    if (!origin.allowed) {
      return this.#refuse(url, clientIp, { status: 403, rule: origin.rule, reason: origin.reason });
    }
    const capped = this.#capFor(clientIp);
    if (capped) return this.#refuse(url, clientIp, capped);
    const slot = new Slot(this, clientKey(clientIp));
    const tokens = tokensFromRequest(request, url);
    if (!this.#auth.enabled && !this.#auth.required) {
      return this.#upgrade(request, slot, this.#policy, upgrade);
    }
    // Every token carried must be valid; the session runs under all their narrowings.
    return this.#auth.checkAll(tokens).then(
      (narrowings) => {
        const policy = narrowings.reduce((p, n) => p.narrow(n), this.#policy);
        return this.#upgrade(request, slot, policy, upgrade);
      },
      (err) => {
        slot.release();
        if (!(err instanceof TokenError)) throw err;
        return this.#refuse(url, clientIp, {
          status: 401,
          rule: `auth (${err.reason})`,
          reason: err.message,
        });
      },
    );
  }

  /** Slot bookkeeping for {@link Slot}. */
  count(key: string, delta: 1 | -1): void {
    this.#total += delta;
    const n = (this.#perClient.get(key) ?? 0) + delta;
    if (n <= 0) this.#perClient.delete(key);
    else this.#perClient.set(key, n);
  }

  #capFor(clientIp: string): Refusal | null {
    const server = this.#policy.config.server;
    if (this.#total >= server.max_sessions) {
      return {
        status: 503,
        rule: "server.max_sessions",
        reason: `the server has ${server.max_sessions} sessions open`,
      };
    }
    if ((this.#perClient.get(clientKey(clientIp)) ?? 0) >= server.max_sessions_per_ip) {
      return {
        status: 429,
        rule: "server.max_sessions_per_ip",
        reason: `this address has ${server.max_sessions_per_ip} sessions open`,
      };
    }
    return null;
  }

  #upgrade(
    request: Request,
    slot: Slot,
    policy: Policy,
    upgrade: (admitted: Admitted) => Response,
  ): Response {
    setMessageLimits(request, messageLimits(policy));
    let held = false;
    let response: Response;
    try {
      response = upgrade({
        policy,
        hold: () => {
          held = true;
          slot.hold();
          return () => slot.release();
        },
      });
    } catch (err) {
      slot.release();
      throw err;
    }
    if (!held || response.status !== 101) slot.release();
    return response;
  }

  #refuse(url: URL, clientIp: string, refusal: Refusal): Response {
    this.#log({
      session: "-",
      client: clientIp,
      op: "session",
      target: url.pathname.slice(0, 200),
      decision: "deny",
      rule: refusal.rule,
      reason: refusal.reason,
    });
    const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
    if (refusal.status === 503 || refusal.status === 429) headers["retry-after"] = "5";
    if (refusal.status === 401) headers["www-authenticate"] = 'Bearer realm="wasmnet"';
    return new Response(`wasmnet: ${refusal.reason}\n`, { status: refusal.status, headers });
  }
}

/** One session's place in the counts: taken on creation, released once (and re-taken if held later). */
class Slot {
  #held = true;
  constructor(private readonly admission: Admission, private readonly key: string) {
    admission.count(key, 1);
  }

  hold(): void {
    if (this.#held) return;
    this.#held = true;
    this.admission.count(this.key, 1);
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.admission.count(this.key, -1);
  }
}

/**
 * The key a client is counted under: its IPv4 address, or the /64 of its IPv6 address (one host commonly
 * holds a whole /64, so counting single IPv6 addresses would not cap anyone).
 */
export function clientKey(clientIp: string): string {
  const address = parseIpLiteral(clientIp);
  if (address === null) return clientIp;
  if (address.family === 4) return clientIp;
  const plain = unmapped(address);
  if (plain.family === 4) return formatIp(plain);
  return `${(address.value >> 64n).toString(16)}::/64`;
}
