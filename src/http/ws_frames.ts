/**
 * RFC 6455 frames, as plain functions: parse a client frame's header (refusing what is invalid or too big
 * before its payload is read), unmask, and encode a server frame. Used by {@link RawWebSocket}, the
 * server's own WebSocket (Deno's accumulates fragments without a bound; docs/security.md).
 *
 * @module
 */

/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close codes this module produces (RFC 6455 §7.4.1). */
export const CloseCode = {
  normal: 1000,
  protocolError: 1002,
  invalidData: 1007,
  tooBig: 1009,
} as const;

/** A parsed frame header. `headerBytes` is how many bytes it took, payload follows. */
export interface FrameHeader {
  fin: boolean;
  opcode: number;
  length: number;
  mask: number;
  headerBytes: number;
}

/** Why a frame was refused: the close code to send and a short reason. */
export interface FrameError {
  error: number;
  reason: string;
}

/**
 * Parses the header of a client frame at `bytes[0..]`: `null` when more bytes are needed, a
 * {@link FrameError} for a frame that must close the connection (unmasked, reserved bits, unknown opcode,
 * bad control frame, payload over `maxPayload`). The length is checked here, before any payload is read.
 */
export function parseClientFrameHeader(
  bytes: Uint8Array,
  maxPayload: number,
): FrameHeader | FrameError | null {
  if (bytes.length < 2) return null;
  const b0 = bytes[0], b1 = bytes[1];
  const fin = (b0 & 0x80) !== 0;
  const opcode = b0 & 0x0f;
  if ((b0 & 0x70) !== 0) return { error: CloseCode.protocolError, reason: "reserved bits set" };
  if ((b1 & 0x80) === 0) return { error: CloseCode.protocolError, reason: "client frame not masked" };
  const control = opcode >= 0x8;
  if (opcode > 0xa || (opcode > 0x2 && opcode < 0x8)) {
    return { error: CloseCode.protocolError, reason: "unknown opcode" };
  }
  let length = b1 & 0x7f;
  let offset = 2;
  if (control && (length > 125 || !fin)) {
    return { error: CloseCode.protocolError, reason: "bad control frame" };
  }
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = (bytes[2] << 8) | bytes[3];
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset, 10);
    const high = view.getUint32(2);
    if (high !== 0 || view.getUint32(6) > maxPayload) {
      return { error: CloseCode.tooBig, reason: "message too big" };
    }
    length = view.getUint32(6);
    offset = 10;
  }
  if (length > maxPayload) return { error: CloseCode.tooBig, reason: "message too big" };
  if (bytes.length < offset + 4) return null;
  const mask = new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0);
  return { fin, opcode, length, mask, headerBytes: offset + 4 };
}

/** True when `parsed` is a refusal. */
export function isFrameError(parsed: FrameHeader | FrameError): parsed is FrameError {
  return "error" in parsed;
}

/**
 * Unmasks `payload` in place with the 32-bit `mask`, starting at byte `phase` of the mask (for payloads
 * that arrive in pieces). Works four bytes at a time where the buffer is aligned.
 */
export function unmask(payload: Uint8Array, mask: number, phase = 0): void {
  const m = [(mask >>> 24) & 0xff, (mask >>> 16) & 0xff, (mask >>> 8) & 0xff, mask & 0xff];
  let i = 0;
  const n = payload.length;
  // Byte by byte until the buffer is 4-aligned, then whole words (little-endian word of the rotated mask).
  while (i < n && ((payload.byteOffset + i) & 3) !== 0) payload[i] ^= m[(phase + i++) & 3];
  const words = (n - i) >>> 2;
  if (words > 0) {
    const p = (phase + i) & 3;
    const word = m[p] | (m[(p + 1) & 3] << 8) | (m[(p + 2) & 3] << 16) | (m[(p + 3) & 3] << 24);
    const view = new Uint32Array(payload.buffer, payload.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= word;
    i += words * 4;
  }
  while (i < n) payload[i] ^= m[(phase + i++) & 3];
}

/** Bytes of a server frame carrying `length` payload bytes (header included). */
export function serverFrameSize(length: number): number {
  return (length < 126 ? 2 : length < 65536 ? 4 : 10) + length;
}

/** Writes one unmasked server frame (FIN set) into `out` at `at`; returns the bytes written. */
export function writeServerFrame(out: Uint8Array, at: number, opcode: number, payload: Uint8Array): number {
  const len = payload.length;
  out[at] = 0x80 | opcode;
  let header = 2;
  if (len < 126) out[at + 1] = len;
  else if (len < 65536) {
    out[at + 1] = 126;
    out[at + 2] = len >>> 8;
    out[at + 3] = len & 0xff;
    header = 4;
  } else {
    out[at + 1] = 127;
    out.fill(0, at + 2, at + 6);
    new DataView(out.buffer, out.byteOffset).setUint32(at + 6, len);
    header = 10;
  }
  out.set(payload, at + header);
  return header + len;
}

/** One unmasked server frame (FIN set) carrying a copy of `payload`. */
export function encodeServerFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(serverFrameSize(payload.length));
  writeServerFrame(out, 0, opcode, payload);
  return out;
}

const encoder = new TextEncoder();

/** The payload of a close frame: the code and at most 123 bytes of reason (cut at a character boundary). */
export function closePayload(code: number, reason = ""): Uint8Array {
  let text = encoder.encode(reason);
  if (text.length > 123) {
    let cut = 123;
    while (cut > 0 && (text[cut] & 0xc0) === 0x80) cut--;
    text = text.subarray(0, cut);
  }
  const out = new Uint8Array(2 + text.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** The close code in a client's close payload: 1005 (none given) for an empty one, null when invalid. */
export function closeCodeOf(payload: Uint8Array): number | null {
  if (payload.length === 0) return 1005;
  if (payload.length === 1) return null;
  const code = (payload[0] << 8) | payload[1];
  const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
  return valid ? code : null;
}

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
  );
  return new Uint8Array(digest).toBase64();
}
