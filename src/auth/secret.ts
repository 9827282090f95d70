/**
 * Where the HMAC secret comes from: an environment variable (`[auth] secret_env`) or a file
 * (`[auth] secret_file`). The config only says where; the secret itself is read once at startup, kept as a
 * non-extractable WebCrypto key, and never written to a log or an error message.
 *
 * @module
 */

import type { AuthConfig } from "../policy/mod.ts";

/** Shortest secret accepted, in bytes: HS256 needs at least 256 bits of key to be worth its name. */
export const MIN_SECRET_BYTES = 32;

/** The secret could not be loaded; the message names the variable or file, never the secret. */
export class SecretError extends Error {
  /** A startup error naming where the secret was looked for. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SecretError";
  }
}

/**
 * Reads the secret the `[auth]` config points to: null when none is configured. A file's trailing newline
 * is dropped. Throws {@link SecretError} when the variable is unset, the file unreadable, or the secret
 * shorter than {@link MIN_SECRET_BYTES}.
 */
export function loadSecret(auth: AuthConfig): Uint8Array | null {
  let secret: Uint8Array;
  let where: string;
  if (auth.secret_env !== "") {
    where = `environment variable ${auth.secret_env}`;
    let value: string | undefined;
    try {
      value = Deno.env.get(auth.secret_env);
    } catch (err) {
      throw new SecretError(`cannot read ${where} (run with --allow-env=${auth.secret_env})`, { cause: err });
    }
    if (value === undefined || value === "") throw new SecretError(`${where} is not set`);
    secret = new TextEncoder().encode(value);
  } else if (auth.secret_file !== "") {
    where = `secret file ${auth.secret_file}`;
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(auth.secret_file);
    } catch (err) {
      throw new SecretError(`cannot read ${where}: ${(err as Error).name}`, { cause: err });
    }
    let end = bytes.length;
    while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
    secret = bytes.slice(0, end);
  } else {
    return null;
  }
  if (secret.length < MIN_SECRET_BYTES) {
    throw new SecretError(`the secret in ${where} is shorter than ${MIN_SECRET_BYTES} bytes`);
  }
  return secret;
}
