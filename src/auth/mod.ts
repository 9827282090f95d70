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

/** The token a request carries: from `?token=` or from an offered `wasmnet.token.<jwt>` subprotocol. */
export function tokenFromRequest(request: Request, url: URL): { token: string; source: TokenSource } {
  const fromQuery = url.searchParams.get("token");
  if (fromQuery !== null && fromQuery !== "") return { token: fromQuery, source: "query" };
  const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
  const carried = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (carried !== undefined) {
    return { token: carried.slice(TOKEN_PROTOCOL_PREFIX.length), source: "protocol" };
  }
  return { token: "", source: "none" };
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
}

/** A counter-safe name for the holder of a token (see {@link Authenticator.verify}). */
async function subjectOf(sub: unknown, token: string): Promise<string> {
  if (typeof sub === "string" && /^[A-Za-z0-9._@:+-]{1,128}$/.test(sub)) return `sub:${sub}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return `jwt:${Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
