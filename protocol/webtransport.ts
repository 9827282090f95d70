/**
 * The wasmnet protocol over WebTransport (docs/protocol.md, "WebTransport"): pure codecs, no I/O.
 *
 * - Streams carry wasmnet **binary** messages, each behind a 4-byte big-endian length ({@link frame},
 *   {@link FrameReader}): a WebSocket delimits messages itself, a QUIC stream does not.
 * - A datagram carries exactly one binary message, unframed.
 * - The client's first frame on the control stream is a {@link Hello} (JSON); the server answers with one
 *   {@link HelloAnswer} (JSON) before anything else: `ok`, or the refusal with the HTTP status it would have
 *   been on the WebSocket (Deno's WebTransport accepts the CONNECT itself, so the status cannot go there).
 * - {@link StreamBindings}: which stream an event of a socket goes out on. A `connect`/`connect_tls` request
 *   read on a socket stream binds its id to that stream; the binding ends with the socket's last event.
 *
 * Exported as `@wasmnet/protocol/webtransport`; the server's front end and the client both use it.
 *
 * @module
 */

import { BINARY_HEADER_BYTES, EVENT_TYPE } from "./binary.ts";

/** Bytes of the length in front of every message on a stream. */
export const FRAME_HEADER_BYTES = 4;

/** The version a {@link Hello} names. */
export const WEBTRANSPORT_PROTOCOL_VERSION = 1;

/** Prefixes `message` with its length, ready to write to a stream. */
export function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + message.length);
  new DataView(out.buffer).setUint32(0, message.length);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}

/** A frame longer than the reader's bound: the stream cannot be read any further. */
export class FrameTooLarge extends Error {
  /** `length` is what the header said, `max` the bound. */
  constructor(readonly length: number, readonly max: number) {
    super(`a message of ${length} bytes is over the ${max}-byte limit`);
  }
}

/**
 * Splits a stream's bytes back into messages. Holds at most one partial frame (bounded by `maxFrameBytes`
 * plus the header) as the chunks it came in, joined once when the frame is complete (so a frame that
 * arrives in many small chunks is copied once, not once per chunk); a header announcing more than the
 * bound throws {@link FrameTooLarge} before anything more is buffered.
 */
export class FrameReader {
  readonly #max: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes (header included) of the frame being collected, once its header is in. */
  #need = 0;

  /** Frames of at most `maxFrameBytes` (the policy's `max_message_bytes`). */
  constructor(maxFrameBytes: number) {
    this.#max = maxFrameBytes;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#pendingBytes;
  }

  /** Feeds one chunk; returns the messages it completes, in order (views into the chunk where possible). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#pendingBytes === 0) return this.#split(chunk);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#need === 0 && this.#pendingBytes >= FRAME_HEADER_BYTES) {
      const head = concat(this.#pending, this.#pendingBytes).subarray(0, FRAME_HEADER_BYTES);
      this.#need = FRAME_HEADER_BYTES + this.#length(head, 0);
    }
    if (this.#need === 0 || this.#pendingBytes < this.#need) return [];
    const bytes = concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#need = 0;
    return this.#split(bytes);
  }

  /** The length in the header at `off`, checked against the bound. */
  #length(bytes: Uint8Array, off: number): number {
    const length = new DataView(bytes.buffer, bytes.byteOffset + off, FRAME_HEADER_BYTES).getUint32(0);
    if (length > this.#max) throw new FrameTooLarge(length, this.#max);
    return length;
  }

  /** Splits `bytes`, which start at a frame boundary; keeps the incomplete rest. */
  #split(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let off = 0;
    while (bytes.length - off >= FRAME_HEADER_BYTES) {
      const length = this.#length(bytes, off);
      if (bytes.length - off - FRAME_HEADER_BYTES < length) {
        this.#need = FRAME_HEADER_BYTES + length;
        break;
      }
      out.push(bytes.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + length));
      off += FRAME_HEADER_BYTES + length;
    }
    if (off < bytes.length) {
      this.#pending.push(bytes.subarray(off));
      this.#pendingBytes = bytes.length - off;
    }
    return out;
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) (out.set(c, at), at += c.length);
  return out;
}

/** The type byte and socket id of a binary message, or null if it is too short to have them. */
export function messageHead(message: Uint8Array): { type: number; id: number } | null {
  if (message.length < BINARY_HEADER_BYTES) return null;
  const view = new DataView(message.buffer, message.byteOffset, BINARY_HEADER_BYTES);
  const id = view.getUint32(1) * 2 ** 32 + view.getUint32(5);
  return { type: message[0], id };
}

/** The client's first frame on the control stream. */
export interface Hello {
  /** {@link WEBTRANSPORT_PROTOCOL_VERSION}. */
  wasmnet: number;
  /** Protocol v2 (flow control, binary error codes, half-close), as `wasmnet.v2` on the WebSocket. */
  v2: boolean;
}

/** The server's answer to a {@link Hello}. */
export type HelloAnswer =
  | { ok: true; v2: boolean }
  | { ok: false; status: number; msg: string };

/** Reads a {@link Hello}; null when the bytes are not one. */
export function decodeHello(bytes: Uint8Array): Hello | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { wasmnet, v2 } = value as Record<string, unknown>;
  if (!Number.isInteger(wasmnet) || (v2 !== undefined && typeof v2 !== "boolean")) return null;
  return { wasmnet: wasmnet as number, v2: v2 === true };
}

/** Encodes a {@link Hello}. */
export function encodeHello(hello: Hello): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(hello));
}

/** Reads the answer to a {@link Hello}; null when the bytes are not one. */
export function decodeHelloAnswer(bytes: Uint8Array): HelloAnswer | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (v.ok === true) return { ok: true, v2: v.v2 === true };
  if (v.ok === false && Number.isInteger(v.status) && typeof v.msg === "string") {
    return { ok: false, status: v.status as number, msg: v.msg };
  }
  return null;
}

/** Encodes the answer to a {@link Hello}. */
export function encodeHelloAnswer(answer: HelloAnswer): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(answer));
}

/**
 * Which stream each socket's events go out on, on either side. A `connect` read on stream `S` binds its id
 * to `S` ({@link bind}); the binding ends ({@link settle} returns the stream) with `closed`, or with
 * `error`/`denied` before `connected` (an open that failed has no `closed`). Events of unbound ids go on
 * the control stream. UDP ids (known from `udp_bound`) have their `data`/`data_from` sent as datagrams when
 * they fit.
 */
export class StreamBindings<S> {
  readonly #streams = new Map<number, { stream: S; connected: boolean }>();
  readonly #udp = new Set<number>();

  /** Binds socket `id` to `stream` (replacing any binding of `id`). */
  bind(id: number, stream: S): void {
    this.#streams.set(id, { stream, connected: false });
  }

  /** The stream `id` is bound to, if any. */
  streamOf(id: number): S | undefined {
    return this.#streams.get(id)?.stream;
  }

  /** True if `id` is a UDP socket (its data may go as datagrams). */
  isUdp(id: number): boolean {
    return this.#udp.has(id);
  }

  /** Number of bound sockets. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * Accounts for an event of type `type` on `id` (after routing it): returns the stream whose binding it
   * ended, if it ended one.
   */
  settle(type: number, id: number): S | undefined {
    if (type === EVENT_TYPE.udp_bound) this.#udp.add(id);
    const bound = this.#streams.get(id);
    if (type === EVENT_TYPE.closed) this.#udp.delete(id);
    if (!bound) return undefined;
    if (type === EVENT_TYPE.connected) bound.connected = true;
    const ends = type === EVENT_TYPE.closed ||
      ((type === EVENT_TYPE.error || type === EVENT_TYPE.denied) && !bound.connected);
    if (!ends) return undefined;
    this.#streams.delete(id);
    return bound.stream;
  }

  /** Drops every binding whose stream is `stream` (the stream failed). */
  dropStream(stream: S): void {
    for (const [id, bound] of this.#streams) if (bound.stream === stream) this.#streams.delete(id);
  }
}
