/**
 * The wasmnet protocol: message types and both codecs. Pure data, no I/O.
 *
 * @module
 */

export * from "./messages.ts";
export * from "./json.ts";
export * from "./binary.ts";

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
