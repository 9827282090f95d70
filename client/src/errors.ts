/**
 * The one error type the client rejects with, so callers can tell a policy denial from a failure from a
 * dropped connection without parsing messages.
 *
 * @module
 */

/**
 * Why an operation did not succeed:
 * - `"denied"`: the server's policy (or its runtime permissions) refused it;
 * - `"failed"`: the server tried and it failed (refused, timed out, bad request, ...);
 * - `"disconnected"`: the WebSocket to the server closed or could not be opened;
 * - `"closed"`: the socket was closed before the operation finished.
 */
export type WasmnetErrorKind = "denied" | "failed" | "disconnected" | "closed";

/** An operation on a wasmnet server that was denied, failed, or cut off by a disconnect. */
export class WasmnetError extends Error {
  /** Names the error so logs say what went wrong. */
  override name = "WasmnetError";
  /** Why it happened; see {@link WasmnetErrorKind}. */
  readonly kind: WasmnetErrorKind;
  /** The server's machine-readable code (e.g. `POLICY_DENIED`, `CONNECT_FAILED`) when it sent one. */
  readonly code?: string;
  /** The server's own message, unchanged, when the server sent one. */
  readonly serverMessage?: string;

  /** Builds an error; `message` is for people, the other fields for programs. */
  constructor(
    message: string,
    kind: WasmnetErrorKind,
    options: { code?: string; serverMessage?: string; cause?: unknown } = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.kind = kind;
    if (options.code !== undefined) this.code = options.code;
    if (options.serverMessage !== undefined) {
      this.serverMessage = options.serverMessage;
    }
  }

  /** True when the server's policy refused the operation. */
  get denied(): boolean {
    return this.kind === "denied";
  }
}
