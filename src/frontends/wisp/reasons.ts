/**
 * The one place a {@link WasmnetError} becomes a Wisp close reason, so Wisp clients see the same decisions
 * (policy, limits, timeouts) as wasmnet clients, each with its precise protocol code.
 *
 * @module
 */

import type { WasmnetError } from "../../core/errors.ts";
import { CloseReason } from "./packets.ts";

/** The Wisp close reason for an error. Pure; see docs/wisp.md for the table. */
export function closeReasonFor(err: WasmnetError): number {
  switch (err.code) {
    case "POLICY_DENIED":
    case "PERMISSION_DENIED":
      return CloseReason.BLOCKED;
    case "CONNECT_TIMEOUT":
      return CloseReason.CONNECT_TIMEOUT;
    case "CONNECT_FAILED":
      return isRefusal(err) ? CloseReason.REFUSED : CloseReason.UNREACHABLE;
    case "RESOLVE_FAILED":
      return CloseReason.UNREACHABLE;
    case "BAD_REQUEST":
    case "UNKNOWN_OP":
    case "DUPLICATE_ID":
    case "UNKNOWN_ID":
      return CloseReason.INVALID;
    case "LIMIT_EXCEEDED":
    case "BUFFER_FULL":
      return CloseReason.THROTTLED;
    case "IDLE_TIMEOUT":
      return CloseReason.TRANSFER_TIMEOUT;
    case "NETWORK_ERROR":
    case "SEND_FAILED":
    case "BIND_FAILED":
    case "TLS_FAILED":
    case "INTERNAL":
      return CloseReason.NETWORK_ERROR;
  }
}

/** True if a failed connect was refused by the target (RST) rather than unreachable. */
function isRefusal(err: WasmnetError): boolean {
  return err.cause instanceof Deno.errors.ConnectionRefused;
}
