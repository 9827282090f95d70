/**
 * JWT HS256 verification with WebCrypto. Only what wasmnet needs: a compact JWS whose header says
 * `alg: "HS256"` (anything else, `none` included, is refused), a valid HMAC-SHA256 signature, and an `exp`
 * in the future (`nbf`, when present, in the past). The payload is returned as a plain object; what the
 * claims mean to wasmnet is decided in `claims.ts`.
 *
 * @module
 */

/** Why a token was refused; `message` is safe to show (it never contains the token or the secret). */
export class TokenError extends Error {
  /** `missing`, `malformed`, `bad_signature`, `expired`, `not_yet_valid` or `bad_claims`. */
  readonly reason: TokenRefusal;

  /** A refusal with a short, client-safe message. */
  constructor(reason: TokenRefusal, message: string) {
    super(message);
    this.name = "TokenError";
    this.reason = reason;
  }
}

/** The kinds of token refusal (all answered with HTTP 401). */
export type TokenRefusal =
  | "missing"
  | "malformed"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "bad_claims";

/** Longest token accepted, in characters: a bound on work done for an unauthenticated request. */
export const MAX_TOKEN_CHARS = 8192;

/** Clock skew tolerated on `exp` and `nbf`, in seconds. */
export const CLOCK_SKEW_SECS = 5;

/** Imports an HMAC-SHA256 key for verifying (and, for tests and tools, signing) tokens. */
export function importHs256Key(secret: Uint8Array): Promise<CryptoKey> {
  if (secret.length === 0) throw new RangeError("the HMAC secret is empty");
  return crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/**
 * Verifies a compact HS256 JWT and returns its payload. Throws {@link TokenError}: `malformed` (not three
 * base64url parts, bad JSON, wrong `alg`), `bad_signature`, `expired` (no `exp`, or `exp` passed),
 * `not_yet_valid` (`nbf` in the future). `nowSecs` is for tests.
 */
export async function verifyHs256(
  token: string,
  key: CryptoKey,
  nowSecs: number = Date.now() / 1000,
): Promise<Record<string, unknown>> {
  if (token.length > MAX_TOKEN_CHARS) throw new TokenError("malformed", "token is too long");
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    throw new TokenError("malformed", "token is not a compact JWT (three base64url parts)");
  }
  const [headerPart, payloadPart, signaturePart] = parts;
  const header = decodeJsonPart(headerPart, "header");
  if (header.alg !== "HS256") throw new TokenError("malformed", "token alg must be HS256");
  if (header.crit !== undefined) throw new TokenError("malformed", "token has critical header parameters");
  const signature = decodeBase64Url(signaturePart);
  if (signature === null || signature.length !== 32) {
    throw new TokenError("bad_signature", "token signature is invalid");
  }
  const signed = new TextEncoder().encode(`${headerPart}.${payloadPart}`);
  const ok = await crypto.subtle.verify("HMAC", key, signature as Uint8Array<ArrayBuffer>, signed);
  if (!ok) throw new TokenError("bad_signature", "token signature is invalid");
  // Only a signed payload is looked at.
  const payload = decodeJsonPart(payloadPart, "payload");
  const exp = payload.exp;
  if (typeof exp !== "number" || !Number.isFinite(exp)) {
    throw new TokenError("expired", "token has no exp (tokens must expire)");
  }
  if (nowSecs > exp + CLOCK_SKEW_SECS) throw new TokenError("expired", "token has expired");
  const nbf = payload.nbf;
  if (nbf !== undefined) {
    if (typeof nbf !== "number" || !Number.isFinite(nbf)) {
      throw new TokenError("malformed", "token nbf is not a number");
    }
    if (nowSecs + CLOCK_SKEW_SECS < nbf) throw new TokenError("not_yet_valid", "token is not valid yet");
  }
  return payload;
}

/** Signs `payload` as a compact HS256 JWT (for tests and for operators' token tools). */
export async function signHs256(payload: Record<string, unknown>, key: CryptoKey): Promise<string> {
  const enc = new TextEncoder();
  const head = encodeBase64Url(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const body = encodeBase64Url(enc.encode(JSON.stringify(payload)));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(`${head}.${body}`)));
  return `${head}.${body}.${encodeBase64Url(mac)}`;
}

/** base64url without padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * Strict base64url without padding: the unused bits of the last character must be zero, so one token has
 * exactly one spelling (issue 13; `lastChunkHandling: "strict"` would also demand `=` padding, which JWTs
 * never carry).
 */
export function decodeBase64Url(text: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  try {
    const bytes = Uint8Array.fromBase64(text, { alphabet: "base64url", lastChunkHandling: "loose" });
    return encodeBase64Url(bytes) === text ? bytes : null;
  } catch {
    return null;
  }
}

function decodeJsonPart(part: string, what: string): Record<string, unknown> {
  const bytes = decodeBase64Url(part);
  let value: unknown;
  try {
    value = bytes === null ? undefined : JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    value = undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenError("malformed", `token ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
