/**
 * The client's own copy of the wasmnet wire protocol: the requests it sends, the events it receives, and
 * both framings (JSON text with base64 data, and the compact binary framing). Kept free of I/O so it can be
 * tested on its own and reused by other client-side code (e.g. a WASI adapter).
 *
 * @module
 */

/** A socket id. Ids the client picks stay below {@link SERVER_ID_BASE}; ids at or above it are the server's. */
export type SocketId = number;

/**
 * First id the server allocates for accepted connections (2^53 - 2^32). The client picks its own ids below
 * this so they never collide with a `conn_id`.
 */
export const SERVER_ID_BASE: number = Number.MAX_SAFE_INTEGER - 0xffff_ffff;

/** A request the client sends to the server, with `data` as raw bytes (the codec does the base64). */
export type Request =
  | {
    op: "connect" | "bind" | "connect_tls" | "connect_udp";
    id: SocketId;
    addr: string;
    port: number;
  }
  | { op: "listen"; id: SocketId; backlog?: number }
  | { op: "send"; id: SocketId; data: Uint8Array }
  | { op: "close"; id: SocketId }
  /** Half-close (this server's extension): no more sends; the peer reads end-of-stream. */
  | { op: "shutdown"; id: SocketId }
  | {
    op: "send_to";
    id: SocketId;
    addr: string;
    port: number;
    data: Uint8Array;
  }
  | { op: "resolve"; id: SocketId; name: string }
  /** Protocol v2 (flow control): grant the server `bytes` more bytes of `data` on `id`. */
  | { op: "credit"; id: SocketId; bytes: number };

/** An event the server sends, with `data` already decoded to bytes. */
export type Event =
  | { ev: "connected" | "closed"; id: SocketId }
  | { ev: "data"; id: SocketId; data: Uint8Array }
  | { ev: "listening" | "udp_bound"; id: SocketId; port: number }
  | { ev: "accepted"; id: SocketId; conn_id: SocketId; remote: string }
  | { ev: "error" | "denied"; id: SocketId; msg: string; code?: string }
  | {
    ev: "data_from";
    id: SocketId;
    data: Uint8Array;
    addr: string;
    port: number;
  }
  | { ev: "resolved"; id: SocketId; addrs: string[] }
  /** Protocol v2 (flow control): the server grants `bytes` more bytes of `send` on `id`. */
  | { ev: "credit"; id: SocketId; bytes: number };

const REQUEST_TYPE: Record<Request["op"], number> = {
  connect: 0x01,
  bind: 0x02,
  listen: 0x03,
  send: 0x04,
  close: 0x05,
  connect_udp: 0x06,
  send_to: 0x07,
  resolve: 0x08,
  connect_tls: 0x09,
  credit: 0x10,
  shutdown: 0x11,
};

const EVENT_BY_TYPE: Record<number, Event["ev"]> = {
  0x81: "connected",
  0x82: "data",
  0x83: "listening",
  0x84: "accepted",
  0x85: "closed",
  0x86: "error",
  0x87: "denied",
  0x88: "data_from",
  0x89: "resolved",
  0x8a: "udp_bound",
  0x90: "credit",
};

const HEADER = 9;
const TWO_32 = 0x1_0000_0000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Turns text, an ArrayBuffer or any view into bytes, so `send` accepts what the original client accepted. */
export function toBytes(
  data: string | Uint8Array | ArrayBuffer | ArrayBufferView,
): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return new Uint8Array(data);
}

type Base64Native = {
  toBase64?: (this: Uint8Array) => string;
};
type Base64Static = { fromBase64?: (s: string) => Uint8Array };

/** Base64 of bytes; uses `Uint8Array.prototype.toBase64` where the runtime has it (Node 20 does not). */
export function encodeBase64(bytes: Uint8Array): string {
  const native = (Uint8Array.prototype as Base64Native).toBase64;
  if (native) return native.call(bytes);
  let out = "";
  // Chunks keep String.fromCharCode's argument list short; 3-byte multiples keep the base64 seamless.
  for (let i = 0; i < bytes.length; i += 0x6000) {
    out += btoa(String.fromCharCode(...bytes.subarray(i, i + 0x6000)));
  }
  return out;
}

/** Bytes of base64 text; uses `Uint8Array.fromBase64` where the runtime has it. */
export function decodeBase64(text: string): Uint8Array {
  const native = (Uint8Array as Base64Static).fromBase64;
  if (native) return native(text);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encodes a request as one JSON text message. */
export function encodeJson(req: Request): string {
  if (req.op === "send" || req.op === "send_to") {
    return JSON.stringify({ ...req, data: encodeBase64(req.data) });
  }
  return JSON.stringify(req);
}

/** A message the server sent that the client cannot read. */
export class ProtocolError extends Error {
  /** Names the error so logs say what went wrong. */
  override name = "ProtocolError";
}

function field<T>(
  obj: Record<string, unknown>,
  key: string,
  type: "string" | "number",
): T {
  const value = obj[key];
  const actual: string = typeof value;
  if (actual !== type) {
    throw new ProtocolError(`event field "${key}" is not a ${type}`);
  }
  return value as T;
}

/** Decodes one JSON text message into an event; throws {@link ProtocolError} on a malformed one. */
export function decodeJson(text: string): Event {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError("event is not JSON");
  }
  if (typeof raw !== "object" || raw === null) {
    throw new ProtocolError("event is not an object");
  }
  const obj = raw as Record<string, unknown>;
  const ev = field<string>(obj, "ev", "string");
  const id = field<number>(obj, "id", "number");
  switch (ev) {
    case "connected":
    case "closed":
      return { ev, id };
    case "data":
      return { ev, id, data: decodeBase64(field(obj, "data", "string")) };
    case "listening":
    case "udp_bound":
      return { ev, id, port: field(obj, "port", "number") };
    case "accepted":
      return {
        ev,
        id,
        conn_id: field(obj, "conn_id", "number"),
        remote: field(obj, "remote", "string"),
      };
    case "error":
    case "denied": {
      const msg = typeof obj.msg === "string" ? obj.msg : "";
      return typeof obj.code === "string" ? { ev, id, msg, code: obj.code } : { ev, id, msg };
    }
    case "data_from":
      return {
        ev,
        id,
        data: decodeBase64(field(obj, "data", "string")),
        addr: field(obj, "addr", "string"),
        port: field(obj, "port", "number"),
      };
    case "resolved": {
      const addrs = obj.addrs;
      if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === "string")) {
        throw new ProtocolError('event field "addrs" is not a string array');
      }
      return { ev, id, addrs };
    }
    case "credit":
      return { ev, id, bytes: field(obj, "bytes", "number") };
    default:
      throw new ProtocolError(`unknown event "${ev}"`);
  }
}

function frame(
  type: number,
  id: SocketId,
  payloadLength: number,
): { out: Uint8Array<ArrayBuffer>; view: DataView } {
  const out = new Uint8Array(HEADER + payloadLength);
  const view = new DataView(out.buffer);
  out[0] = type;
  view.setUint32(1, Math.floor(id / TWO_32));
  view.setUint32(5, id >>> 0);
  return { out, view };
}

/** Encodes a request as one binary message: `[type][id u64 BE][payload]`. */
export function encodeBinary(req: Request): Uint8Array<ArrayBuffer> {
  const type = REQUEST_TYPE[req.op];
  switch (req.op) {
    case "connect":
    case "bind":
    case "connect_tls":
    case "connect_udp": {
      const addr = encoder.encode(req.addr);
      const { out, view } = frame(type, req.id, 2 + addr.length);
      view.setUint16(HEADER, req.port);
      out.set(addr, HEADER + 2);
      return out;
    }
    case "listen": {
      if (req.backlog === undefined) return frame(type, req.id, 0).out;
      const { out, view } = frame(type, req.id, 4);
      view.setUint32(HEADER, req.backlog);
      return out;
    }
    case "send": {
      const { out } = frame(type, req.id, req.data.length);
      out.set(req.data, HEADER);
      return out;
    }
    case "close":
    case "shutdown":
      return frame(type, req.id, 0).out;
    case "send_to": {
      const addr = encoder.encode(req.addr);
      const { out, view } = frame(
        type,
        req.id,
        4 + addr.length + req.data.length,
      );
      view.setUint16(HEADER, req.port);
      view.setUint16(HEADER + 2, addr.length);
      out.set(addr, HEADER + 4);
      out.set(req.data, HEADER + 4 + addr.length);
      return out;
    }
    case "resolve": {
      const name = encoder.encode(req.name);
      const { out } = frame(type, req.id, name.length);
      out.set(name, HEADER);
      return out;
    }
    case "credit": {
      const { out, view } = frame(type, req.id, 4);
      view.setUint32(HEADER, req.bytes);
      return out;
    }
  }
}

/** Decodes one binary message into an event; throws {@link ProtocolError} on a malformed one. */
export function decodeBinary(bytes: Uint8Array, options: { v2?: boolean } = {}): Event {
  if (bytes.length < HEADER) {
    throw new ProtocolError(
      `binary event of ${bytes.length} bytes has no header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ev = EVENT_BY_TYPE[bytes[0]];
  if (ev === undefined) {
    throw new ProtocolError(
      `unknown binary event type 0x${bytes[0].toString(16)}`,
    );
  }
  const id = view.getUint32(1) * TWO_32 + view.getUint32(5);
  const payload = bytes.subarray(HEADER);
  const need = (n: number) => {
    if (payload.length < n) {
      throw new ProtocolError(
        `binary "${ev}" payload is shorter than ${n} bytes`,
      );
    }
  };
  switch (ev) {
    case "connected":
    case "closed":
      return { ev, id };
    case "data":
      return { ev, id, data: payload };
    case "listening":
    case "udp_bound":
      need(2);
      return { ev, id, port: view.getUint16(HEADER) };
    case "accepted":
      need(8);
      return {
        ev,
        id,
        conn_id: view.getUint32(HEADER) * TWO_32 + view.getUint32(HEADER + 4),
        remote: decoder.decode(payload.subarray(8)),
      };
    case "error":
    case "denied": {
      const text = decoder.decode(payload);
      // v2: `message 0x00 CODE` (the message may itself contain 0x00; the code is after the last one).
      const cut = options.v2 ? text.lastIndexOf("\0") : -1;
      return cut >= 0 && /^[A-Z_]+$/.test(text.slice(cut + 1))
        ? { ev, id, msg: text.slice(0, cut), code: text.slice(cut + 1) }
        : { ev, id, msg: text };
    }
    case "data_from": {
      need(4);
      const port = view.getUint16(HEADER);
      const len = view.getUint16(HEADER + 2);
      need(4 + len);
      return {
        ev,
        id,
        port,
        addr: decoder.decode(payload.subarray(4, 4 + len)),
        data: payload.subarray(4 + len),
      };
    }
    case "resolved": {
      let addrs: unknown;
      try {
        addrs = JSON.parse(decoder.decode(payload));
      } catch {
        throw new ProtocolError('binary "resolved" payload is not JSON');
      }
      if (!Array.isArray(addrs) || !addrs.every((a) => typeof a === "string")) {
        throw new ProtocolError(
          'binary "resolved" payload is not a string array',
        );
      }
      return { ev, id, addrs };
    }
    case "credit":
      need(4);
      return { ev, id, bytes: view.getUint32(HEADER) };
  }
  throw new ProtocolError(`unhandled binary event "${ev}"`);
}
