/**
 * The client's side of the wire, from the one protocol package (`@wasmnet/protocol`): the names the
 * client's public API has always had for the request encoders and event decoders, and {@link toBytes} for
 * what `send` accepts. No codec lives here.
 *
 * Re-exports come from the package's narrow entry points (`/messages`, `/base64`, `/protocol_error`), and
 * the codec names are functions of their own, because the npm build's single `.d.ts` declares every export
 * of each module re-exported: from the package root it would declare the whole package, which the bundle
 * does not export.
 *
 * @module
 */

import {
  decodeBinaryEvent,
  decodeJsonEvent,
  encodeBinaryRequest,
  encodeJsonRequest,
  encodeSendInto as encodeSendIntoBuffer,
} from "@wasmnet/protocol";
import type { Event, Request, SocketId } from "@wasmnet/protocol/messages";

export { type Event, type Request, SERVER_ID_BASE, type SocketId } from "@wasmnet/protocol/messages";
export { ProtocolError } from "@wasmnet/protocol/protocol_error";
export { decodeBase64, encodeBase64 } from "@wasmnet/protocol/base64";

/** Encodes a request as one JSON text message (`data` as base64). */
export function encodeJson(request: Request): string {
  return encodeJsonRequest(request);
}

/** Decodes one JSON text message into an event; throws `ProtocolError` on a malformed one. */
export function decodeJson(text: string): Event {
  return decodeJsonEvent(text);
}

/** Encodes a request as one binary message: `[type][id u64 BE][payload]`. */
export function encodeBinary(request: Request): Uint8Array<ArrayBuffer> {
  return encodeBinaryRequest(request);
}

/**
 * Encodes a binary `send` into `buffer` (a new one when too small) and returns the message as a view; for a
 * sender reusing one buffer where `WebSocket.send` copies before returning.
 */
export function encodeSendInto(
  buffer: Uint8Array<ArrayBuffer>,
  id: SocketId,
  data: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return encodeSendIntoBuffer(buffer, id, data);
}

/**
 * Decodes one binary message into an event; throws `ProtocolError` on a malformed one. With `v2`, an
 * `error`/`denied` carries its code after a 0x00; without, the whole payload is the message.
 */
export function decodeBinary(bytes: Uint8Array, options: { v2?: boolean } = {}): Event {
  return decodeBinaryEvent(bytes, { errorCodes: options.v2 ?? false });
}

const encoder = new TextEncoder();

/** Turns text, an ArrayBuffer or any view into bytes, so `send` accepts what the original client accepted. */
export function toBytes(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}
