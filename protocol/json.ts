/**
 * The JSON framing: one request or event per WebSocket text message, binary fields as base64.
 * Decoding a request never throws (the server's side: a malformed message becomes a {@link DecodeFailure}
 * with a clear `msg`); decoding an event throws {@link ProtocolError} (the client's side).
 *
 * @module
 */

import { decodeBase64, encodeBase64 } from "./base64.ts";
import { ProtocolError } from "./protocol_error.ts";
import type { Event, Request, SocketId } from "./messages.ts";

/** A message the server could not accept. `id` is the socket id when one could be read, else 0. */
export interface DecodeFailure {
  ok: false;
  id: SocketId;
  code: "BAD_REQUEST" | "UNKNOWN_OP";
  msg: string;
}

/** The result of decoding one message. */
export type Decoded = { ok: true; request: Request } | DecodeFailure;

type Fields = Record<string, unknown>;

/** Decodes one JSON text message into a request. */
export function decodeJsonRequest(text: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(0, "BAD_REQUEST", "message is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(0, "BAD_REQUEST", "message must be a JSON object");
  }
  const m = value as Fields;
  const id = readId(m.id);
  if (typeof m.op !== "string") return fail(id ?? 0, "BAD_REQUEST", 'field "op" must be a string');
  if (id === undefined) {
    return fail(0, "BAD_REQUEST", `"${m.op}": field "id" must be a non-negative safe integer`);
  }
  try {
    return { ok: true, request: readRequest(m.op, id, m) };
  } catch (err) {
    if (err instanceof FieldError) return fail(id, err.code, `"${m.op}": ${err.message}`);
    throw err;
  }
}

/** Encodes an event as a JSON text message. */
export function encodeJsonEvent(event: Event): string {
  switch (event.ev) {
    case "data":
      return `{"ev":"data","id":${event.id},"data":"${encodeBase64(event.data)}"}`;
    case "data_from":
      return JSON.stringify({ ...event, data: encodeBase64(event.data) });
    default:
      return JSON.stringify(event);
  }
}

/** Encodes a request as one JSON text message (the client's side). */
export function encodeJsonRequest(request: Request): string {
  // The text JSON.stringify makes, without its pass over the base64 (which has nothing to escape).
  if (request.op === "send") {
    return `{"op":"send","id":${JSON.stringify(request.id)},"data":"${encodeBase64(request.data)}"}`;
  }
  if (request.op === "send_to") {
    return JSON.stringify({ ...request, data: encodeBase64(request.data) });
  }
  return JSON.stringify(request);
}

/** Decodes one JSON text message into an event (the client's side); throws {@link ProtocolError} on a malformed one. */
export function decodeJsonEvent(text: string): Event {
  const data = plainDataEvent(text);
  if (data) return data;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError("event is not JSON");
  }
  if (typeof raw !== "object" || raw === null) throw new ProtocolError("event is not an object");
  const m = raw as Fields;
  const ev = eventField<string>(m, "ev", "string");
  const id = eventField<number>(m, "id", "number");
  switch (ev) {
    case "connected":
    case "closed":
      return { ev, id };
    case "data":
      return { ev, id, data: eventBase64(m) };
    case "listening":
    case "udp_bound":
      return { ev, id, port: eventField(m, "port", "number") };
    case "accepted":
      return {
        ev,
        id,
        conn_id: eventField(m, "conn_id", "number"),
        remote: eventField(m, "remote", "string"),
      };
    case "error":
    case "denied": {
      const msg = typeof m.msg === "string" ? m.msg : "";
      return typeof m.code === "string" ? { ev, id, msg, code: m.code } : { ev, id, msg };
    }
    case "data_from":
      return {
        ev,
        id,
        data: eventBase64(m),
        addr: eventField(m, "addr", "string"),
        port: eventField(m, "port", "number"),
      };
    case "resolved": {
      const addrs = m.addrs;
      if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === "string")) {
        throw new ProtocolError('event field "addrs" is not a string array');
      }
      return { ev, id, addrs };
    }
    case "credit":
      return { ev, id, bytes: eventField(m, "bytes", "number") };
    default:
      throw new ProtocolError(`unknown event "${ev}"`);
  }
}

const DATA_PREFIX = '{"ev":"data","id":';
const DATA_FIELD = ',"data":"';

/**
 * A `data` event in the exact shape servers write, `{"ev":"data","id":N,"data":"BASE64"}`, read without
 * JSON.parse (which would copy the base64 into a string of its own first); undefined for anything else.
 * Sound because base64 has no `"` or `\`: a text of that shape whose middle decodes as base64 is that
 * object, and one with a quote or escape inside fails to decode and gets the full parse.
 */
function plainDataEvent(text: string): Event | undefined {
  if (!text.startsWith(DATA_PREFIX) || !text.endsWith('"}')) return undefined;
  const at = text.indexOf(DATA_FIELD, DATA_PREFIX.length);
  if (at < 0) return undefined;
  const idText = text.slice(DATA_PREFIX.length, at);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(idText)) return undefined;
  try {
    return { ev: "data", id: Number(idText), data: decodeBase64(text.slice(at + DATA_FIELD.length, -2)) };
  } catch {
    return undefined;
  }
}

function eventField<T>(m: Fields, key: string, type: "string" | "number"): T {
  const value = m[key];
  const actual: string = typeof value;
  if (actual !== type) throw new ProtocolError(`event field "${key}" is not a ${type}`);
  return value as T;
}

function eventBase64(m: Fields): Uint8Array {
  const text = eventField<string>(m, "data", "string");
  try {
    return decodeBase64(text);
  } catch {
    throw new ProtocolError('event field "data" is not valid base64');
  }
}

class FieldError extends Error {
  constructor(message: string, readonly code: "BAD_REQUEST" | "UNKNOWN_OP" = "BAD_REQUEST") {
    super(message);
  }
}

function readRequest(op: string, id: SocketId, m: Fields): Request {
  switch (op) {
    case "connect":
    case "bind":
    case "connect_tls":
    case "connect_udp":
      return { op, id, addr: str(m, "addr"), port: port(m, "port") };
    case "listen": {
      if (m.backlog === undefined || m.backlog === null) return { op, id };
      if (!Number.isInteger(m.backlog) || (m.backlog as number) < 0 || (m.backlog as number) > 0xffff_ffff) {
        throw new FieldError('field "backlog" must be an integer from 0 to 4294967295');
      }
      return { op, id, backlog: m.backlog as number };
    }
    case "send":
      return { op, id, data: base64(m, "data") };
    case "close":
    case "shutdown":
      return { op, id };
    case "send_to":
      return { op, id, addr: str(m, "addr"), port: port(m, "port"), data: base64(m, "data") };
    case "resolve":
      return { op, id, name: str(m, "name") };
    case "credit":
      return { op, id, bytes: creditBytes(m.bytes) };
    default:
      throw new FieldError(
        `unknown op (expected one of connect, bind, listen, send, close, shutdown, connect_tls, connect_udp, send_to, resolve, credit)`,
        "UNKNOWN_OP",
      );
  }
}

/** A credit grant: an integer from 1 to 2^32-1 (it must fit the binary framing's 4 bytes). */
function creditBytes(value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 0xffff_ffff) {
    throw new FieldError('field "bytes" must be an integer from 1 to 4294967295');
  }
  return value as number;
}

function readId(value: unknown): SocketId | undefined {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? value as number : undefined;
}

function str(m: Fields, key: string): string {
  const value = m[key];
  if (typeof value !== "string") throw new FieldError(`field "${key}" must be a string`);
  if (value.length === 0 || value.length > 255) {
    throw new FieldError(`field "${key}" must be 1 to 255 characters`);
  }
  return value;
}

function port(m: Fields, key: string): number {
  const value = m[key];
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535) {
    throw new FieldError(`field "${key}" must be an integer from 0 to 65535`);
  }
  return value as number;
}

function base64(m: Fields, key: string): Uint8Array {
  const value = m[key];
  if (typeof value !== "string") throw new FieldError(`field "${key}" must be a base64 string`);
  try {
    return decodeBase64(value);
  } catch {
    throw new FieldError(`field "${key}" is not valid base64`);
  }
}

function fail(id: SocketId, code: DecodeFailure["code"], msg: string): DecodeFailure {
  return { ok: false, id, code, msg };
}
