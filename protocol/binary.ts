/**
 * The binary framing: `[1 byte type][8 bytes id, big-endian][payload]`, one request or event per WebSocket
 * binary message. Payload bytes of `send`/`data` are passed through without copying where the runtime allows.
 *
 * @module
 */

import { ProtocolError } from "./protocol_error.ts";
import type { Decoded, DecodeFailure } from "./json.ts";
import type { Event, EventName, Op, Request, SocketId } from "./messages.ts";

/** Binary type bytes of requests (the original's, plus 0x06-0x09 for UDP, DNS and TLS, 0x10-0x11 beyond). */
export const REQUEST_TYPE = {
  connect: 0x01,
  bind: 0x02,
  listen: 0x03,
  send: 0x04,
  close: 0x05,
  connect_udp: 0x06,
  send_to: 0x07,
  resolve: 0x08,
  connect_tls: 0x09,
  /** Flow control (v2). Outside the original's range and the 0x06-0x09 extensions on purpose. */
  credit: 0x10,
  /** Half-close (an extension; no payload). */
  shutdown: 0x11,
} as const satisfies Record<Op, number>;

/** Binary type bytes of events (the original's, plus 0x88-0x8A for UDP and DNS). */
export const EVENT_TYPE = {
  connected: 0x81,
  data: 0x82,
  listening: 0x83,
  accepted: 0x84,
  closed: 0x85,
  error: 0x86,
  denied: 0x87,
  data_from: 0x88,
  resolved: 0x89,
  udp_bound: 0x8a,
  /** Flow control (v2). */
  credit: 0x90,
} as const satisfies Record<EventName, number>;

/** Size of the binary header: 1 type byte + 8 id bytes (big-endian). */
export const BINARY_HEADER_BYTES = 9;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const TWO_32 = 0x1_0000_0000;

const OP_BY_TYPE = new Map<number, Op>(Object.entries(REQUEST_TYPE).map(([op, t]) => [t, op as Op]));
const EV_BY_TYPE = new Map<number, EventName>(
  Object.entries(EVENT_TYPE).map(([ev, t]) => [t, ev as EventName]),
);

/** Decodes one binary message into a request. Never throws. */
export function decodeBinaryRequest(bytes: Uint8Array): Decoded {
  if (bytes.length < BINARY_HEADER_BYTES) {
    return fail(0, "BAD_REQUEST", `binary message is ${bytes.length} bytes, shorter than the 9-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = bytes[0];
  const wide = view.getBigUint64(1);
  if (wide > BigInt(Number.MAX_SAFE_INTEGER)) {
    return fail(0, "BAD_REQUEST", `binary id ${wide} is above 2^53-1`);
  }
  const id = Number(wide);
  const op = OP_BY_TYPE.get(type);
  if (op === undefined) {
    return fail(id, "UNKNOWN_OP", `unknown binary request type 0x${type.toString(16).padStart(2, "0")}`);
  }
  const payload = bytes.subarray(BINARY_HEADER_BYTES);
  try {
    return { ok: true, request: readPayload(op, id, payload) };
  } catch (err) {
    if (err instanceof PayloadError) return fail(id, "BAD_REQUEST", `"${op}": ${err.message}`);
    throw err;
  }
}

/** How {@link encodeBinaryEvent} lays out what the original protocol has no room for. */
export interface BinaryEventOptions {
  /**
   * Protocol v2: `error` and `denied` carry their code too, as `message 0x00 CODE` (clients of the original
   * protocol read the whole payload as the message, so v1 sessions leave it out).
   */
  errorCodes?: boolean;
}

/** Encodes an event as one binary message. */
export function encodeBinaryEvent(event: Event, options: BinaryEventOptions = {}): Uint8Array {
  switch (event.ev) {
    case "connected":
    case "closed":
      return frame(EVENT_TYPE[event.ev], event.id, 0);
    case "data": {
      const out = frame(EVENT_TYPE.data, event.id, event.data.length);
      out.set(event.data, BINARY_HEADER_BYTES);
      return out;
    }
    case "listening":
    case "udp_bound": {
      const out = frame(EVENT_TYPE[event.ev], event.id, 2);
      new DataView(out.buffer).setUint16(BINARY_HEADER_BYTES, event.port);
      return out;
    }
    case "accepted": {
      const remote = utf8.encode(event.remote);
      const out = frame(EVENT_TYPE.accepted, event.id, 8 + remote.length);
      new DataView(out.buffer).setBigUint64(BINARY_HEADER_BYTES, BigInt(event.conn_id));
      out.set(remote, BINARY_HEADER_BYTES + 8);
      return out;
    }
    case "error":
    case "denied":
      // v2 adds the code after a 0x00 (the original's layout is the message alone).
      return withBytes(
        EVENT_TYPE[event.ev],
        event.id,
        utf8.encode(options.errorCodes && event.code ? `${event.msg}\0${event.code}` : event.msg),
      );
    case "resolved":
      return withBytes(EVENT_TYPE.resolved, event.id, utf8.encode(JSON.stringify(event.addrs)));
    case "data_from":
      return withBytes(EVENT_TYPE.data_from, event.id, addressed(event.port, event.addr, event.data));
    case "credit":
      return creditFrame(EVENT_TYPE.credit, event.id, event.bytes);
  }
}

/**
 * `payload` widened to take in the `headerBytes` just before it in the same buffer (the TCP read left them
 * free), for framing without a copy. Throws if the buffer has no such room.
 */
export function withHeaderRoom(payload: Uint8Array, headerBytes: number): Uint8Array {
  if (payload.byteOffset < headerBytes) throw new RangeError("payload has no header room");
  return new Uint8Array(payload.buffer, payload.byteOffset - headerBytes, payload.byteLength + headerBytes);
}

/**
 * The zero-copy form of a binary `data` event: `payload` must be preceded, in its own buffer, by
 * {@link BINARY_HEADER_BYTES} bytes the caller owns (TcpStream's `headroom`). The header is written there
 * and the frame is a view over header and payload: no allocation, no copy.
 */
export function frameDataInPlace(id: SocketId, payload: Uint8Array): Uint8Array {
  const out = withHeaderRoom(payload, BINARY_HEADER_BYTES);
  out[0] = EVENT_TYPE.data;
  new DataView(out.buffer, out.byteOffset, BINARY_HEADER_BYTES).setBigUint64(1, BigInt(id));
  return out;
}

/**
 * Encodes a binary `send` of `data` on `id` into `buffer`, or into a new buffer when `buffer` is too small,
 * and returns the message as a view (its `.buffer` is the one to reuse next time). For a sender that builds
 * every data message in one buffer: only sound where `WebSocket.send` copies the message before returning.
 */
export function encodeSendInto(
  buffer: Uint8Array<ArrayBuffer>,
  id: SocketId,
  data: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const size = BINARY_HEADER_BYTES + data.length;
  const out = buffer.length >= size ? buffer : new Uint8Array(size);
  out[0] = REQUEST_TYPE.send;
  new DataView(out.buffer, out.byteOffset, BINARY_HEADER_BYTES).setBigUint64(1, BigInt(id));
  out.set(data, BINARY_HEADER_BYTES);
  return out.subarray(0, size);
}

/** Encodes a request as one binary message (the client's side). */
export function encodeBinaryRequest(request: Request): Uint8Array<ArrayBuffer> {
  const type = REQUEST_TYPE[request.op];
  switch (request.op) {
    case "connect":
    case "bind":
    case "connect_tls":
    case "connect_udp": {
      const addr = utf8.encode(request.addr);
      const out = frame(type, request.id, 2 + addr.length);
      new DataView(out.buffer).setUint16(BINARY_HEADER_BYTES, request.port);
      out.set(addr, BINARY_HEADER_BYTES + 2);
      return out;
    }
    case "listen": {
      if (request.backlog === undefined) return frame(type, request.id, 0);
      const out = frame(type, request.id, 4);
      new DataView(out.buffer).setUint32(BINARY_HEADER_BYTES, request.backlog);
      return out;
    }
    case "send":
      return withBytes(type, request.id, request.data);
    case "close":
    case "shutdown":
      return frame(type, request.id, 0);
    case "send_to":
      return withBytes(type, request.id, addressed(request.port, request.addr, request.data));
    case "resolve":
      return withBytes(type, request.id, utf8.encode(request.name));
    case "credit":
      return creditFrame(type, request.id, request.bytes);
  }
}

/** How {@link decodeBinaryEvent} reads what the original protocol has no room for. */
export interface BinaryDecodeOptions {
  /**
   * Read the code of an `error` or `denied` event, `message 0x00 CODE` (protocol v2). Default true: a code
   * is read when one is there. A v1 session passes false, so a message is always the whole payload.
   */
  errorCodes?: boolean;
}

/** Decodes one binary message into an event (the client's side); throws {@link ProtocolError} on a malformed one. */
export function decodeBinaryEvent(bytes: Uint8Array, options: BinaryDecodeOptions = {}): Event {
  if (bytes.length < BINARY_HEADER_BYTES) {
    throw new ProtocolError(`binary event of ${bytes.length} bytes has no header`);
  }
  const ev = EV_BY_TYPE.get(bytes[0]);
  if (ev === undefined) throw new ProtocolError(`unknown binary event type 0x${bytes[0].toString(16)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = view.getUint32(1) * TWO_32 + view.getUint32(5);
  const p = bytes.subarray(BINARY_HEADER_BYTES);
  const pv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const need = (n: number) => {
    if (p.length < n) throw new ProtocolError(`binary "${ev}" payload is shorter than ${n} bytes`);
  };
  switch (ev) {
    case "connected":
    case "closed":
      return { ev, id };
    case "data":
      return { ev, id, data: p };
    case "listening":
    case "udp_bound":
      need(2);
      return { ev, id, port: pv.getUint16(0) };
    case "accepted":
      need(8);
      return {
        ev,
        id,
        conn_id: pv.getUint32(0) * TWO_32 + pv.getUint32(4),
        remote: eventText(p.subarray(8)),
      };
    case "error":
    case "denied": {
      // The code, when there is one (v2), follows the last 0x00; the message itself may contain 0x00.
      const text = eventText(p);
      const cut = options.errorCodes === false ? -1 : text.lastIndexOf("\0");
      return cut < 0 || !/^[A-Z_]+$/.test(text.slice(cut + 1))
        ? { ev, id, msg: text }
        : { ev, id, msg: text.slice(0, cut), code: text.slice(cut + 1) };
    }
    case "resolved": {
      let addrs: unknown;
      try {
        addrs = JSON.parse(eventText(p));
      } catch {
        throw new ProtocolError('binary "resolved" payload is not JSON');
      }
      if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === "string")) {
        throw new ProtocolError('binary "resolved" payload is not a string array');
      }
      return { ev, id, addrs };
    }
    case "data_from": {
      need(4);
      const len = pv.getUint16(2);
      need(4 + len);
      return {
        ev,
        id,
        port: pv.getUint16(0),
        addr: eventText(p.subarray(4, 4 + len)),
        data: p.subarray(4 + len),
      };
    }
    case "credit":
      need(4);
      return { ev, id, bytes: pv.getUint32(0) };
  }
}

/** UTF-8 text of an event field; a server that sends anything else is not speaking this protocol. */
function eventText(bytes: Uint8Array): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new ProtocolError("binary event text is not valid UTF-8");
  }
}

class PayloadError extends Error {}

function readPayload(op: Op, id: SocketId, p: Uint8Array): Request {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (op) {
    case "connect":
    case "bind":
    case "connect_tls":
    case "connect_udp": {
      if (p.length < 3) throw new PayloadError("payload must be a 2-byte port followed by an address");
      return { op, id, port: view.getUint16(0), addr: text(p.subarray(2), "address") };
    }
    case "listen":
      if (p.length === 0) return { op, id };
      if (p.length !== 4) throw new PayloadError("payload must be empty or a 4-byte backlog");
      return { op, id, backlog: view.getUint32(0) };
    case "send":
      return { op, id, data: p };
    case "close":
    case "shutdown":
      return { op, id };
    case "send_to": {
      const { port, addr, data } = readAddressed(p);
      return { op, id, port, addr, data };
    }
    case "resolve":
      return { op, id, name: text(p, "name") };
    case "credit": {
      const bytes = p.length === 4 ? view.getUint32(0) : 0;
      if (bytes === 0) throw new PayloadError("payload must be a 4-byte grant from 1 to 2^32-1");
      return { op, id, bytes };
    }
  }
}

function text(bytes: Uint8Array, what: string): string {
  if (bytes.length === 0 || bytes.length > 255) throw new PayloadError(`${what} must be 1 to 255 bytes`);
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new PayloadError(`${what} is not valid UTF-8`);
  }
}

function readAddressed(p: Uint8Array): { port: number; addr: string; data: Uint8Array } {
  if (p.length < 4) {
    throw new PayloadError("payload must be port (2 bytes), address length (2 bytes), address, data");
  }
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const port = view.getUint16(0);
  const len = view.getUint16(2);
  if (p.length < 4 + len) throw new PayloadError(`address length ${len} runs past the end of the message`);
  return { port, addr: text(p.subarray(4, 4 + len), "address"), data: p.subarray(4 + len) };
}

function addressed(port: number, addr: string, data: Uint8Array): Uint8Array {
  const a = utf8.encode(addr);
  const out = new Uint8Array(4 + a.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, port);
  view.setUint16(2, a.length);
  out.set(a, 4);
  out.set(data, 4 + a.length);
  return out;
}

function frame(type: number, id: SocketId, payloadBytes: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(BINARY_HEADER_BYTES + payloadBytes);
  out[0] = type;
  new DataView(out.buffer).setBigUint64(1, BigInt(id));
  return out;
}

/** A `credit` message: header plus a 4-byte big-endian grant. */
function creditFrame(type: number, id: SocketId, bytes: number): Uint8Array<ArrayBuffer> {
  const out = frame(type, id, 4);
  new DataView(out.buffer).setUint32(BINARY_HEADER_BYTES, bytes);
  return out;
}

function withBytes(type: number, id: SocketId, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = frame(type, id, payload.length);
  out.set(payload, BINARY_HEADER_BYTES);
  return out;
}

function fail(id: SocketId, code: DecodeFailure["code"], msg: string): DecodeFailure {
  return { ok: false, id, code, msg };
}
