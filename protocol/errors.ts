/**
 * Error codes on the wire: the documented codes an `error` or `denied` event carries (docs/protocol.md says
 * what each means to a client) and which of the two events reports each.
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

const EVERY_CODE: Record<ErrorCode, true> = {
  BAD_REQUEST: true,
  UNKNOWN_OP: true,
  UNKNOWN_ID: true,
  DUPLICATE_ID: true,
  POLICY_DENIED: true,
  PERMISSION_DENIED: true,
  LIMIT_EXCEEDED: true,
  RESOLVE_FAILED: true,
  CONNECT_FAILED: true,
  CONNECT_TIMEOUT: true,
  NETWORK_ERROR: true,
  BIND_FAILED: true,
  SEND_FAILED: true,
  BUFFER_FULL: true,
  TLS_FAILED: true,
  IDLE_TIMEOUT: true,
  INTERNAL: true,
};

/** Every documented code, in the order above (for tables, metrics labels and tests). */
export const ERROR_CODES: readonly ErrorCode[] = Object.keys(EVERY_CODE) as ErrorCode[];

/** True if `code` is one of the documented {@link ErrorCode}s. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(EVERY_CODE, code);
}

/** Which protocol event reports an error with this code: refusals by policy or permission are `denied`. */
export function eventForCode(code: ErrorCode): "error" | "denied" {
  return code === "POLICY_DENIED" || code === "PERMISSION_DENIED" ? "denied" : "error";
}
