/**
 * Admission: who may open a session, decided before the WebSocket upgrade and answered with a plain HTTP
 * status, so a refused client costs one short response and never a session.
 *
 * While the server drains, every request is refused with 503 first. Then, in order: the Origin header (`[server] allowed_origins`, `require_origin`) → 403; the session caps
 * (`[server] max_sessions` → 503, `max_sessions_per_ip` → 429); the token (`[auth]`) → 401 when missing while
 * required, malformed, badly signed or expired. An admitted session runs under the server's policy narrowed
 * by its token's claims, with its message limits attached to the request for `upgradeToPort`.
 *
 * A session slot is taken before the token is checked (so a flood of slow checks cannot pass the caps) and
 * given back when the session ends, through the `track()` hook every endpoint calls, or at once if the
 * endpoint did not upgrade. A token's subject is counted after its check (`[auth] max_sessions_per_token`,
 * 429).
 *
 * Counting is local (this process) unless {@link AdmissionOptions.shared} is given: then the shared store
 * (src/cluster/) decides every cap for the whole deployment, and while it is down `[cluster]
 * on_store_failure` applies: `local` counts this process against its share, ceil(cap / replicas); `closed`
 * refuses with 503. Without a store, `localShare` (the worker count) divides the caps the same way.
 *
 * @module
 */

import { isAcceptedWithoutUpgrade } from "../frontends/endpoint.ts";
import { Authenticator, TokenError, tokensFromRequest } from "../auth/mod.ts";
import type { DecisionLog } from "../core/log.ts";
import { messageLimits, setMessageLimits } from "../core/limits.ts";
import { decideOrigin, type Policy } from "../policy/mod.ts";
import { formatIp, parseIpLiteral, unmapped } from "../policy/address.ts";
import type { SharedLimits } from "../cluster/shared_limits.ts";
import type { Counter } from "../cluster/store.ts";

/** How admission counts beyond this process. */
export interface AdmissionOptions {
  /** The deployment's shared caps (`[cluster] redis`); absent: count in this process only. */
  shared?: SharedLimits;
  /**
   * Divides every cap when counting locally: the worker count without a store, `[cluster] replicas` while
   * the store is down. Default 1.
   */
  localShare?: number;
  /** Prefix of session ids in the store (the replica name), so ids never collide across replicas. */
  replica?: string;
}

/** What an endpoint needs from an admitted request. */
export interface Admitted {
  /** The policy for this session: the server's, narrowed by the token's claims. */
  policy: Policy;
  /** Call when the session is tracked (returns the release to call when it ends). */
  hold(): () => void;
}

/** What a refusal was about (metrics count refusals by it). */
export type RefusalReason = "origin" | "token" | "caps" | "store" | "draining";

/** A refusal: the HTTP status and the rule, as logged. */
export interface Refusal {
  status: 401 | 403 | 429 | 503;
  /** What was refused: the origin, the token, a session cap, or the shared store was down (`closed`). */
  kind: RefusalReason;
  rule: string;
  reason: string;
}

/** Counts sessions, globally and per client, and admits or refuses upgrades. One per server. */
export class Admission {
  readonly #policy: Policy;
  #auth: Authenticator;
  readonly #log: DecisionLog;
  /** Told about every refusal (metrics). */
  onRefuse: ((refusal: Refusal) => void) | undefined;
  /** Set when the server drains: every new session is refused with 503 before anything else is checked. */
  draining = false;
  readonly #options: AdmissionOptions;
  #total = 0;
  readonly #perClient = new Map<string, number>();
  readonly #perToken = new Map<string, number>();

  /** Loads the token secret now (throws `SecretError` when `[auth]` points to a secret that is not there). */
  constructor(
    policy: Policy,
    log: DecisionLog,
    auth: Authenticator = Authenticator.fromConfig(policy.config.auth),
    options: AdmissionOptions = {},
  ) {
    this.#policy = policy;
    this.#log = log;
    this.#auth = auth;
    this.#options = options;
  }

  /** Checks tokens with `auth` from now on (a policy reload read a new `[auth]` secret). */
  replaceAuth(auth: Authenticator): void {
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
    if (this.draining) {
      return this.#refuse(url, clientIp, {
        status: 503,
        kind: "draining",
        rule: "server draining",
        reason: "the server is shutting down; try again shortly",
      });
    }
    const origin = decideOrigin(this.#policy, request.headers.get("origin"));
    if (!origin.allowed) {
      return this.#refuse(url, clientIp, {
        status: 403,
        kind: "origin",
        rule: origin.rule,
        reason: origin.reason,
      });
    }
    const key = clientKey(clientIp);
    const shared = this.#options.shared;
    if (shared === undefined) {
      const capped = this.#capFor(key, this.#options.localShare ?? 1, 0);
      if (capped) return this.#refuse(url, clientIp, capped);
      return this.#checkToken(request, url, clientIp, new Slot(this, key, this.#options.replica), upgrade);
    }
    const slot = new Slot(this, key, this.#options.replica);
    const server = this.#policy.config.server;
    return this.#acquireShared(shared, slot, [
      { key: "sessions", cap: server.max_sessions },
      { key: `ip:${key}`, cap: server.max_sessions_per_ip },
    ]).then((refusal) => {
      if (refusal) return (slot.release(), this.#refuse(url, clientIp, refusal));
      return this.#checkToken(request, url, clientIp, slot, upgrade);
    });
  }

  /** Slot bookkeeping for {@link Slot}: `key` is the client key, `token` the token subject (if counted). */
  count(key: string, delta: 1 | -1, token?: string): void {
    this.#total += delta;
    bump(this.#perClient, key, delta);
    if (token !== undefined) bump(this.#perToken, token, delta);
  }

  /** Token bookkeeping for {@link Slot}. */
  countToken(subject: string, delta: 1 | -1): void {
    bump(this.#perToken, subject, delta);
  }

  /**
   * A slot held again after it was given back (an endpoint that tracks its session late): counted again in
   * the shared store from the next renewal (no-op without a store).
   */
  reholdShared(slot: Slot): void {
    const keys = ["sessions", `ip:${slot.key}`];
    if (slot.token !== undefined) keys.push(`token:${slot.token}`);
    this.#options.shared?.holdLocally(slot.member, keys);
  }

  /** Gives back the shared leases of a slot (no-op without a store). */
  releaseShared(member: string): void {
    this.#options.shared?.release(member);
  }

  #checkToken(
    request: Request,
    url: URL,
    clientIp: string,
    slot: Slot,
    upgrade: (admitted: Admitted) => Response,
  ): Response | Promise<Response> {
    const tokens = tokensFromRequest(request, url);
    if (!this.#auth.enabled && !this.#auth.required) {
      return this.#upgrade(request, slot, this.#policy, upgrade);
    }
    // Every token carried must be valid; the session runs under all their narrowings.
    return this.#auth.verifyAll(tokens).then(
      async ({ narrowings, subject }) => {
        const policy = narrowings.reduce((p, n) => p.narrow(n), this.#policy);
        const refusal = await this.#countToken(slot, subject);
        if (refusal) return (slot.release(), this.#refuse(url, clientIp, refusal));
        return this.#upgrade(request, slot, policy, upgrade);
      },
      (err) => {
        slot.release();
        if (!(err instanceof TokenError)) throw err;
        return this.#refuse(url, clientIp, {
          status: 401,
          kind: "token",
          rule: `auth (${err.reason})`,
          reason: err.message,
        });
      },
    );
  }

  /** Counts the slot under its token's subject when `[auth] max_sessions_per_token` is set. */
  async #countToken(slot: Slot, subject: string | null): Promise<Refusal | null> {
    const cap = this.#policy.config.auth.max_sessions_per_token;
    if (cap === 0 || subject === null) return null;
    const shared = this.#options.shared;
    if (shared === undefined) {
      const share = this.#options.localShare ?? 1;
      if ((this.#perToken.get(subject) ?? 0) >= Math.ceil(cap / share)) return tokenRefusal(cap);
      slot.countToken(subject);
      return null;
    }
    slot.countToken(subject);
    return await this.#acquireShared(shared, slot, [{ key: `token:${subject}`, cap }]);
  }

  /** Takes shared leases for `slot` (already counted locally), or applies `on_store_failure` when down. */
  async #acquireShared(shared: SharedLimits, slot: Slot, counters: Counter[]): Promise<Refusal | null> {
    const full = await shared.acquire(slot.member, counters);
    if (full === 0) return null;
    if (full !== "unavailable") return refusalFor(counters[full - 1], this.#policy);
    if (shared.options.onFailure === "closed") {
      return {
        status: 503,
        kind: "store",
        rule: "cluster.on_store_failure",
        reason: "the shared limits store is unavailable",
      };
    }
    // Degraded, "local": this process against its share; the slot itself is already counted (self = 1).
    const share = this.#policy.config.cluster.replicas;
    const capped = counters.some((c) => c.key.startsWith("token:"))
      ? this.#tokenCapFor(slot, share)
      : this.#capFor(slot.key, share, 1);
    if (capped) return capped;
    shared.holdLocally(slot.member, counters.map((c) => c.key));
    return null;
  }

  /** The local refusal for `key`, counting against ceil(cap / share); `self` is this request if counted. */
  #capFor(key: string, share: number, self: 0 | 1): Refusal | null {
    const server = this.#policy.config.server;
    if (this.#total - self >= Math.ceil(server.max_sessions / share)) {
      return refusalFor({ key: "sessions", cap: server.max_sessions }, this.#policy);
    }
    if ((this.#perClient.get(key) ?? 0) - self >= Math.ceil(server.max_sessions_per_ip / share)) {
      return refusalFor({ key: `ip:${key}`, cap: server.max_sessions_per_ip }, this.#policy);
    }
    return null;
  }

  #tokenCapFor(slot: Slot, share: number): Refusal | null {
    const cap = this.#policy.config.auth.max_sessions_per_token;
    const counted = this.#perToken.get(slot.token ?? "") ?? 0;
    return counted - 1 >= Math.ceil(cap / share) ? tokenRefusal(cap) : null;
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
    if (!held || (response.status !== 101 && !isAcceptedWithoutUpgrade(response))) slot.release();
    return response;
  }

  #refuse(url: URL, clientIp: string, refusal: Refusal): Response {
    this.onRefuse?.(refusal);
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
  /** The session's id in the shared store: unique across replicas. */
  readonly member: string;
  /** The token subject it is counted under, once counted. */
  token: string | undefined;

  constructor(private readonly admission: Admission, readonly key: string, replica = "") {
    this.member = `${replica}${replica === "" ? "" : "/"}${crypto.randomUUID()}`;
    admission.count(key, 1);
  }

  countToken(subject: string): void {
    this.token = subject;
    if (this.#held) this.admission.countToken(subject, 1);
  }

  hold(): void {
    if (this.#held) return;
    this.#held = true;
    this.admission.count(this.key, 1, this.token);
    this.admission.reholdShared(this);
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.admission.count(this.key, -1, this.token);
    this.admission.releaseShared(this.member);
  }
}

function bump(counts: Map<string, number>, key: string, delta: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}

/** The refusal a full counter means: 503 for the server-wide cap, 429 for a client's or a token's. */
function refusalFor(counter: Counter, policy: Policy): Refusal {
  if (counter.key === "sessions") {
    return {
      status: 503,
      kind: "caps",
      rule: "server.max_sessions",
      reason: `the server has ${policy.config.server.max_sessions} sessions open`,
    };
  }
  if (counter.key.startsWith("token:")) return tokenRefusal(counter.cap);
  return {
    status: 429,
    kind: "caps",
    rule: "server.max_sessions_per_ip",
    reason: `this address has ${policy.config.server.max_sessions_per_ip} sessions open`,
  };
}

function tokenRefusal(cap: number): Refusal {
  return {
    status: 429,
    kind: "caps",
    rule: "auth.max_sessions_per_token",
    reason: `this token has ${cap} sessions open`,
  };
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
