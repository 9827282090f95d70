/**
 * @wasmnet/protocol: the wasmnet wire protocol as plain data and functions, with no I/O. Message types
 * (`messages.ts`), the JSON framing (`json.ts`) and the binary framing with its type bytes (`binary.ts`),
 * each in both directions; protocol v2's constants (`v2.ts`), the documented error codes (`errors.ts`).
 * The server (`@wasmnet/server`) and the client (`@wasmnet/client`) both build on it; docs/protocol.md is
 * the prose form. Besides the root, `./messages`, `./base64` and `./protocol_error` are exported on their
 * own (the client's npm build declares whole modules, so it re-exports from these).
 *
 * ```ts
 * import { decodeRequest, encodeEvent } from "@wasmnet/protocol";
 * const decoded = decodeRequest('{"op":"connect","id":1,"addr":"example.com","port":443}');
 * if (decoded.ok) console.log(encodeEvent({ ev: "connected", id: decoded.request.id }, decoded.framing));
 * ```
 *
 * @module
 */

export * from "./messages.ts";
export * from "./json.ts";
export * from "./binary.ts";
export * from "./base64.ts";
export * from "./errors.ts";
export * from "./protocol_error.ts";
export * from "./v2.ts";

import { decodeBinaryRequest, encodeBinaryEvent } from "./binary.ts";
import { decodeJsonRequest, encodeJsonEvent } from "./json.ts";
import type { Decoded } from "./json.ts";
import type { Event, Framing } from "./messages.ts";

/** Decodes a WebSocket message in whichever framing it came: text is JSON, binary is the binary framing. */
export function decodeRequest(message: string | Uint8Array): Decoded & { framing: Framing } {
  return typeof message === "string"
    ? { ...decodeJsonRequest(message), framing: "json" }
    : { ...decodeBinaryRequest(message), framing: "binary" };
}

/** Encodes an event in the given framing (`v2`: binary errors carry their code, see `BinaryEventOptions`). */
export function encodeEvent(event: Event, framing: Framing, v2 = false): string | Uint8Array {
  return framing === "json" ? encodeJsonEvent(event) : encodeBinaryEvent(event, { errorCodes: v2 });
}
