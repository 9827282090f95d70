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

/** Where the token was found, or `none`. */
export type TokenSource = "query" | "protocol" | "none";

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
    return (await this.checkAll(token === "" ? [] : [token], nowSecs))[0] ?? null;
  }

  /**
   * Checks every token a request carries ({@link tokensFromRequest}): each must be valid, and the session
   * runs under all their narrowings. Resolves with them (empty: no token and none required, or tokens not
   * configured). More than {@link MAX_TOKENS_PER_REQUEST} is `malformed`.
   */
  async checkAll(tokens: readonly string[], nowSecs?: number): Promise<Narrowing[]> {
    if (tokens.length > MAX_TOKENS_PER_REQUEST) {
      throw new TokenError("malformed", `at most ${MAX_TOKENS_PER_REQUEST} tokens per request`);
    }
    if (tokens.length === 0) {
      if (this.required) throw new TokenError("missing", "a token is required");
      return [];
    }
    if (this.#key === null) return []; // tokens are not configured: a token grants and narrows nothing
    const key = await this.#key;
    const out: Narrowing[] = [];
    for (const token of tokens) out.push(narrowingFromClaims(await verifyHs256(token, key, nowSecs)));
    return out;
  }
}
