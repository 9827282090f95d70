/**
 * The Wisp wire format (MercuryWorkshop's wisp-protocol, v1 and the v2 drafts), as pure functions: bytes in,
 * packets out, and back. One packet per binary WebSocket message, little-endian:
 * `u8 type | u32 stream_id | payload`. No I/O here; `session.ts` gives the packets their meaning.
 *
 * @module
 */

import { withHeaderRoom } from "@wasmnet/protocol";

/** Packet types. */
export const PacketType = {
  CONNECT: 0x01,
  DATA: 0x02,
  CONTINUE: 0x03,
  CLOSE: 0x04,
  INFO: 0x05,
} as const;

/** Stream types carried by CONNECT. */
export const StreamType = { TCP: 0x01, UDP: 0x02 } as const;

/** Close reasons (the `u8` of a CLOSE packet), named as the protocol names them. */
export const CloseReason = {
  /** Unspecified. */
  UNKNOWN: 0x01,
  /** Voluntary close (the target closed, or the client asked). */
  VOLUNTARY: 0x02,
  /** The connection broke (reset, write failure). */
  NETWORK_ERROR: 0x03,
  /** v2 handshake: the two sides cannot agree (stream 0 only). */
  INCOMPATIBLE_EXTENSIONS: 0x04,
  /** The CONNECT (or a later packet) was invalid. */
  INVALID: 0x41,
  /** The host is unreachable or does not resolve. */
  UNREACHABLE: 0x42,
  /** The connect timed out. */
  CONNECT_TIMEOUT: 0x43,
  /** The target refused the connection. */
  REFUSED: 0x44,
  /** The stream sat idle (no data either way) for too long. */
  TRANSFER_TIMEOUT: 0x47,
  /** The server's policy blocks this target. */
  BLOCKED: 0x48,
  /** A limit was reached (streams, credit, buffer, rate). */
  THROTTLED: 0x49,
  /** The client hit an error of its own. */
  CLIENT_ERROR: 0x81,
  /** Password extension: wrong username or password (stream 0). */
  AUTH_BAD_PASSWORD: 0xc0,
  /** Key extension: bad signature (stream 0; not used by wasmnet). */
  AUTH_BAD_SIGNATURE: 0xc1,
  /** Password extension: credentials required but not sent (stream 0). */
  AUTH_MISSING_CREDENTIALS: 0xc2,
} as const;

/** Extension ids carried in INFO records. */
export const ExtensionId = {
  UDP: 0x01,
  PASSWORD: 0x02,
  MOTD: 0x04,
  STREAM_CONFIRMATION: 0x05,
} as const;

/** One extension record of an INFO packet: `u8 id | u32 length | payload`. */
export interface Extension {
  id: number;
  payload: Uint8Array;
}

/** A decoded packet. */
export type Packet =
  | { type: "connect"; streamId: number; streamType: number; port: number; host: string }
  | { type: "data"; streamId: number; data: Uint8Array }
  | { type: "continue"; streamId: number; remaining: number }
  | { type: "close"; streamId: number; reason: number }
  | { type: "info"; streamId: number; major: number; minor: number; extensions: Extension[] };

/** The result of {@link decodePacket}: a packet, or what is wrong (with the stream id when it was readable). */
export type Decoded = { ok: true; packet: Packet } | { ok: false; problem: string; streamId?: number };

/** Bytes of the common header. */
export const HEADER_BYTES = 5;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const utf8 = new TextEncoder();

/**
 * Decodes one packet. DATA payloads are views into `bytes` (not copies). Never throws: a short packet, an
 * unknown type or a malformed payload is `{ ok: false, problem }`.
 */
export function decodePacket(bytes: Uint8Array): Decoded {
  if (bytes.length < HEADER_BYTES) {
    return { ok: false, problem: `packet of ${bytes.length} bytes is shorter than the 5-byte header` };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint8(0);
  const streamId = view.getUint32(1, true);
  const body = bytes.subarray(HEADER_BYTES);
  const bad = (problem: string): Decoded => ({ ok: false, problem, streamId });
  switch (type) {
    case PacketType.CONNECT: {
      if (body.length < 3) return bad("CONNECT payload is shorter than 3 bytes");
      let host: string;
      try {
        host = strictUtf8.decode(body.subarray(3));
      } catch {
        return bad("CONNECT hostname is not valid UTF-8");
      }
      return {
        ok: true,
        packet: { type: "connect", streamId, streamType: body[0], port: view.getUint16(6, true), host },
      };
    }
    case PacketType.DATA:
      return { ok: true, packet: { type: "data", streamId, data: body } };
    case PacketType.CONTINUE:
      if (body.length < 4) return bad("CONTINUE payload is shorter than 4 bytes");
      return { ok: true, packet: { type: "continue", streamId, remaining: view.getUint32(5, true) } };
    case PacketType.CLOSE:
      if (body.length < 1) return bad("CLOSE payload is empty");
      return { ok: true, packet: { type: "close", streamId, reason: body[0] } };
    case PacketType.INFO: {
      if (body.length < 2) return bad("INFO payload is shorter than 2 bytes");
      const extensions = decodeExtensions(body.subarray(2));
      if ("problem" in extensions) return bad(extensions.problem);
      return { ok: true, packet: { type: "info", streamId, major: body[0], minor: body[1], extensions } };
    }
    default:
      return bad(`unknown packet type 0x${type.toString(16).padStart(2, "0")}`);
  }
}

/** Encodes one packet. Throws `RangeError` for values that do not fit their fields (a programming error). */
export function encodePacket(packet: Packet): Uint8Array {
  let body: Uint8Array;
  switch (packet.type) {
    case "connect": {
      const host = utf8.encode(packet.host);
      body = new Uint8Array(3 + host.length);
      body[0] = checkInt(packet.streamType, 0xff, "stream type");
      new DataView(body.buffer).setUint16(1, checkInt(packet.port, 0xffff, "port"), true);
      body.set(host, 3);
      break;
    }
    case "data":
      body = packet.data;
      break;
    case "continue":
      body = new Uint8Array(4);
      new DataView(body.buffer).setUint32(
        0,
        checkInt(packet.remaining, 0xffffffff, "buffer remaining"),
        true,
      );
      break;
    case "close":
      body = Uint8Array.of(checkInt(packet.reason, 0xff, "close reason"));
      break;
    case "info": {
      const ext = encodeExtensions(packet.extensions);
      body = new Uint8Array(2 + ext.length);
      body[0] = checkInt(packet.major, 0xff, "major version");
      body[1] = checkInt(packet.minor, 0xff, "minor version");
      body.set(ext, 2);
      break;
    }
  }
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out[0] = PacketType[packet.type.toUpperCase() as keyof typeof PacketType];
  new DataView(out.buffer).setUint32(1, checkInt(packet.streamId, 0xffffffff, "stream id"), true);
  out.set(body, HEADER_BYTES);
  return out;
}

/**
 * A DATA packet for `payload` written in place: the 5-byte header goes in the {@link HEADER_BYTES} of the
 * same buffer just before `payload` (the TCP stream reads with that headroom), so relaying costs no copy.
 */
export function encodeDataInPlace(streamId: number, payload: Uint8Array): Uint8Array {
  const out = withHeaderRoom(payload, HEADER_BYTES);
  out[0] = PacketType.DATA;
  new DataView(out.buffer, out.byteOffset, HEADER_BYTES).setUint32(
    1,
    checkInt(streamId, 0xffffffff, "stream id"),
    true,
  );
  return out;
}

/** Decodes the extension records of an INFO packet (`u8 id | u32 len | payload`, repeated). */
export function decodeExtensions(bytes: Uint8Array): Extension[] | { problem: string } {
  const out: Extension[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 5) {
      return { problem: `INFO extension record at byte ${at} is shorter than its 5-byte header` };
    }
    const id = view.getUint8(at);
    const len = view.getUint32(at + 1, true);
    if (len > bytes.length - at - 5) {
      return {
        problem: `INFO extension 0x${id.toString(16)} claims ${len} bytes, more than the packet holds`,
      };
    }
    out.push({ id, payload: bytes.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

/** Encodes extension records. */
export function encodeExtensions(extensions: readonly Extension[]): Uint8Array {
  const out = new Uint8Array(extensions.reduce((n, e) => n + 5 + e.payload.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of extensions) {
    view.setUint8(at, checkInt(e.id, 0xff, "extension id"));
    view.setUint32(at + 1, e.payload.length, true);
    out.set(e.payload, at + 5);
    at += 5 + e.payload.length;
  }
  return out;
}

/** A username and password, as the password extension carries them. */
export interface Credentials {
  username: string;
  password: string;
}

/**
 * Decodes the client's password-extension payload: `u8 username_len | u16 password_len | username | password`
 * (UTF-8, the layout wisp-js and wisp-mux use). Returns a problem for a short or malformed payload.
 */
export function decodeCredentials(payload: Uint8Array): Credentials | { problem: string } {
  if (payload.length < 3) return { problem: "password extension payload is shorter than 3 bytes" };
  const userLen = payload[0];
  const passLen = payload[1] | (payload[2] << 8);
  if (payload.length < 3 + userLen + passLen) {
    return { problem: "password extension payload is shorter than its lengths say" };
  }
  try {
    return {
      username: strictUtf8.decode(payload.subarray(3, 3 + userLen)),
      password: strictUtf8.decode(payload.subarray(3 + userLen, 3 + userLen + passLen)),
    };
  } catch {
    return { problem: "password extension credentials are not valid UTF-8" };
  }
}

/** Encodes credentials for the password extension (the client's side; used by tests and tools). */
export function encodeCredentials({ username, password }: Credentials): Uint8Array {
  const u = utf8.encode(username);
  const p = utf8.encode(password);
  const out = new Uint8Array(3 + u.length + p.length);
  out[0] = checkInt(u.length, 0xff, "username length");
  new DataView(out.buffer).setUint16(1, checkInt(p.length, 0xffff, "password length"), true);
  out.set(u, 3);
  out.set(p, 3 + u.length);
  return out;
}

/** The server's MOTD extension record. */
export function motdExtension(message: string): Extension {
  return { id: ExtensionId.MOTD, payload: utf8.encode(message) };
}

function checkInt(value: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be 0-${max}, got ${value}`);
  }
  return value;
}
