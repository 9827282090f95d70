/**
 * Errors are values with a code. Every failure a client can see is a {@link WasmnetError}; `eventForCode`
 * (protocol package) is the one place where a code becomes a protocol event (`error` or `denied`).
 *
 * @module
 */

import type { ErrorCode } from "@wasmnet/protocol";

/** The documented codes and their event live in the protocol package (they are part of the wire). */
export { type ErrorCode, eventForCode } from "@wasmnet/protocol";

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

/** Turns anything thrown into a {@link WasmnetError}, keeping codes that are already there. */
export function toWasmnetError(err: unknown, fallback: ErrorCode = "INTERNAL"): WasmnetError {
  if (err instanceof WasmnetError) return err;
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new WasmnetError("PERMISSION_DENIED", permissionMessage(err), { cause: err });
  }
  return new WasmnetError(fallback, messageOf(err), { cause: err });
}

/**
 * What a refusal by Deno's permission sandbox says. Deno's own text ("Requires net access to "h:p", run
 * again with the --allow-net flag") reads as advice to the operator and is wrong when `--allow-net` was
 * given and `--deny-net` (or a narrowed `--allow-net` list) refused; this names the layer and the resource.
 */
export function permissionMessage(err: Error): string {
  const resource = /Requires (\S+) access to ("[^"]*"|\S+)/.exec(err.message);
  const what = resource ? `${resource[1]} access to ${resource[2].replace(/,$/, "")}` : "this access";
  return `refused by the server's runtime permissions (Deno's --deny-net, or an --allow-net list that ` +
    `leaves it out), not by its policy: ${what}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
