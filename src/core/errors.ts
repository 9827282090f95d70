/**
 * Errors are values with a code. Every failure a client can see is a {@link WasmnetError};
 * {@link eventForCode} is the one place where a code becomes a protocol event (`error` or `denied`).
 *
 * @module
 */

/** The documented error codes. See docs/protocol.md for what each one means to a client. */
export type ErrorCode =
  /** The message could not be understood (bad JSON, wrong types, missing fields, bad base64, short frame). */
  | "BAD_REQUEST"
  /** The op or binary type is not one this server knows. */
  | "UNKNOWN_OP"
  /** The request names a socket id that is not open on this session. */
  | "UNKNOWN_ID"
  /** The request opens a socket under an id that is already in use. */
  | "DUPLICATE_ID"
  /** The policy refused the target, the bind address or the port. */
  | "POLICY_DENIED"
  /** Deno's permission sandbox (`--allow-net`/`--deny-net`) refused the operation. */
  | "PERMISSION_DENIED"
  /** A per-session or per-server limit (sockets, listeners, connects in flight, rate) was reached. */
  | "LIMIT_EXCEEDED"
  /** The name could not be resolved. */
  | "RESOLVE_FAILED"
  /** The outbound connection failed (refused, unreachable, reset). */
  | "CONNECT_FAILED"
  /** The outbound connection did not complete within `connection_timeout_secs`. */
  | "CONNECT_TIMEOUT"
  /** An established connection failed (reset, broken pipe); a `closed` follows. */
  | "NETWORK_ERROR"
  /** The local bind failed (address in use, not available). */
  | "BIND_FAILED"
  /** Writing to the socket failed, or the socket is not in a state that accepts data. */
  | "SEND_FAILED"
  /** A bounded buffer filled up and the protocol gave no way to pause the sender. */
  | "BUFFER_FULL"
  /** TLS handshake or certificate verification failed. */
  | "TLS_FAILED"
  /** The socket sat idle longer than its idle timeout. */
  | "IDLE_TIMEOUT"
  /** Something unexpected; the message says what. */
  | "INTERNAL";

/** An error with a stable, documented {@link ErrorCode}, safe to show to the client. */
export class WasmnetError extends Error {
  /** The documented code; clients may switch on it. */
  readonly code: ErrorCode;

  /** Creates an error with a code and a human-readable message (no secrets, no payload). */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WasmnetError";
    this.code = code;
  }
}

/** Which protocol event reports an error with this code: refusals by policy or permission are `denied`. */
export function eventForCode(code: ErrorCode): "error" | "denied" {
  return code === "POLICY_DENIED" || code === "PERMISSION_DENIED" ? "denied" : "error";
}

/** Turns anything thrown into a {@link WasmnetError}, keeping codes that are already there. */
export function toWasmnetError(err: unknown, fallback: ErrorCode = "INTERNAL"): WasmnetError {
  if (err instanceof WasmnetError) return err;
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new WasmnetError(
      "PERMISSION_DENIED",
      `refused by the server's runtime permissions: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  return new WasmnetError(fallback, messageOf(err), { cause: err });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
