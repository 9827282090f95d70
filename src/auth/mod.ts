/**
 * Tokens: who may open a session, and how far. A client presents a signed, expiring JWT (HS256), in the
 * URL (`?token=…`) or as a WebSocket subprotocol `wasmnet.token.<jwt>`; the server checks it before the
 * upgrade (401 when bad, expired, or missing while `[auth] required`), and its claims narrow the policy of
 * that one session.
 *
 * @module
 */

import type { AuthConfig, Narrowing } from "../policy/mod.ts";
import { narrowingFromClaims } from "./claims.ts";
import { importHs256Key, TokenError, verifyHs256 } from "./jwt.ts";
import { loadSecret } from "./secret.ts";

export { narrowingFromClaims } from "./claims.ts";
export { importHs256Key, signHs256, TokenError, type TokenRefusal, verifyHs256 } from "./jwt.ts";
export { loadSecret, MIN_SECRET_BYTES, SecretError } from "./secret.ts";

/** The prefix of the subprotocol that carries a token: `Sec-WebSocket-Protocol: wasmnet.token.<jwt>`. */
export const TOKEN_PROTOCOL_PREFIX = "wasmnet.token.";

/** Most tokens one request may carry (one in the URL, one as a subprotocol). */
export const MAX_TOKENS_PER_REQUEST = 2;

/**
 * Every token a request carries: `?token=` first, then each offered `wasmnet.token.<jwt>` subprotocol.
 * When there are several, each must be valid (issue 13: a good one must not cover an expired one).
 */
export function tokensFromRequest(request: Request, url: URL): string[] {
  const tokens = url.searchParams.getAll("token").filter((t) => t !== "");
  const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
  for (const p of offered) {
    if (p.startsWith(TOKEN_PROTOCOL_PREFIX)) tokens.push(p.slice(TOKEN_PROTOCOL_PREFIX.length));
  }
  return tokens;
}

/** Checks tokens for one server: holds the key (never the secret's text) and whether a token is required. */
export class Authenticator {
  readonly #key: Promise<CryptoKey> | null;
  /** Whether a session without a token is refused. */
  readonly required: boolean;

  /** From a secret (null: tokens are not configured and are ignored). */
  constructor(secret: Uint8Array | null, required: boolean) {
    this.#key = secret === null ? null : importHs256Key(secret);
    this.required = required;
    this.#key?.catch(() => {});
  }

  /** Loads the secret `[auth]` points to. Throws `SecretError` at startup when it cannot. */
  static fromConfig(auth: AuthConfig): Authenticator {
    return new Authenticator(loadSecret(auth), auth.required);
  }

  /** True if requests need checking at all (a secret is configured). */
  get enabled(): boolean {
    return this.#key !== null;
  }

  /**
   * Checks a request's token. Resolves with the narrowing its claims ask for (null: no token and none
   * required, or tokens not configured). Throws {@link TokenError} for a missing, bad or expired token.
   */
  async check(token: string, nowSecs?: number): Promise<Narrowing | null> {
    return (await this.verify(token, nowSecs)).narrowing;
  }

  /**
   * As {@link check}, and also who the token speaks for (for `[auth] max_sessions_per_token`): `sub:<sub>`
   * when its `sub` claim is a short plain string, otherwise `jwt:<hash of the token>`; null without a token.
   */
  async verify(
    token: string,
    nowSecs?: number,
  ): Promise<{ narrowing: Narrowing | null; subject: string | null }> {
    if (token === "") {
      if (this.required) throw new TokenError("missing", "a token is required");
      return { narrowing: null, subject: null };
    }
    // Tokens are not configured: a token grants and narrows nothing.
    if (this.#key === null) return { narrowing: null, subject: null };
    const payload = await verifyHs256(token, await this.#key, nowSecs);
    return { narrowing: narrowingFromClaims(payload), subject: await subjectOf(payload.sub, token) };
  }

  /**
   * Checks every token a request carries ({@link tokensFromRequest}): each must be valid, and the session
   * runs under all their narrowings; the subject is the first token's. More than
   * {@link MAX_TOKENS_PER_REQUEST} is `malformed`.
   */
  async verifyAll(
    tokens: readonly string[],
    nowSecs?: number,
  ): Promise<{ narrowings: Narrowing[]; subject: string | null }> {
    if (tokens.length > MAX_TOKENS_PER_REQUEST) {
      throw new TokenError("malformed", `at most ${MAX_TOKENS_PER_REQUEST} tokens per request`);
    }
    const first = await this.verify(tokens[0] ?? "", nowSecs);
    const narrowings = first.narrowing ? [first.narrowing] : [];
    for (const token of tokens.slice(1)) {
      const { narrowing } = await this.verify(token, nowSecs);
      if (narrowing) narrowings.push(narrowing);
    }
    return { narrowings, subject: first.subject };
  }
}

/** A counter-safe name for the holder of a token (see {@link Authenticator.verify}). */
async function subjectOf(sub: unknown, token: string): Promise<string> {
  if (typeof sub === "string" && /^[A-Za-z0-9._@:+-]{1,128}$/.test(sub)) return `sub:${sub}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return `jwt:${Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
