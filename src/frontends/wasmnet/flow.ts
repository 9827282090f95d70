/**
 * Flow control (wasmnet protocol v2): per-socket credit windows in both directions, as plain counters with
 * no I/O. docs/protocol.md ("Flow control (v2)") is the prose form; the session wires these to its sockets.
 *
 * - {@link SendCredit} is the sender's side: bytes it may still send; a sender never exceeds it and waits
 *   for a grant when it is spent.
 * - {@link ReceiveWindow} is the receiver's side: it checks that the peer stays within what was granted and
 *   decides when to grant more, as bytes are consumed, in batches of a quarter window.
 *
 * Every socket starts with {@link INITIAL_WINDOW} bytes of credit in each direction, known to both sides
 * without a message, so data can flow before the first grant arrives.
 *
 * @module
 */

import { INITIAL_WINDOW, MAX_GRANT } from "@wasmnet/protocol";
import { WasmnetError } from "../../core/errors.ts";

/** The wire constants of v2, from the protocol package: subprotocol name, first window, largest grant. */
export { INITIAL_WINDOW, MAX_GRANT, PROTOCOL_V2 } from "@wasmnet/protocol";

/** Largest credit a sender may hold: more is a protocol error (it would be a window past any buffer). */
export const MAX_CREDIT = 2 ** 40;

/** The window the server grants a client for its uploads, per socket, unless configured (4 MiB). */
export const DEFAULT_UPLOAD_WINDOW = 4 * 1024 * 1024;

/** The sender's credit on one socket: how many payload bytes it may still send. */
export class SendCredit {
  #credit: number;
  #waiters: (() => void)[] = [];

  /** Starts with `initial` bytes of credit (default {@link INITIAL_WINDOW}). */
  constructor(initial = INITIAL_WINDOW) {
    this.#credit = initial;
  }

  /** Bytes that may still be sent. */
  get available(): number {
    return this.#credit;
  }

  /** Records `bytes` sent. The caller never sends more than {@link available}; doing so is a bug. */
  spend(bytes: number): void {
    if (bytes > this.#credit) {
      throw new RangeError(`spent ${bytes} bytes with only ${this.#credit} of credit`);
    }
    this.#credit -= bytes;
  }

  /**
   * Adds a grant from the receiver and wakes a waiting sender. Returns false (and adds nothing) if the
   * credit would pass {@link MAX_CREDIT}: the peer is misbehaving.
   */
  grant(bytes: number): boolean {
    if (this.#credit + bytes > MAX_CREDIT) return false;
    this.#credit += bytes;
    for (const wake of this.#waiters.splice(0)) wake();
    return true;
  }

  /** Undefined while there is credit; otherwise a promise that resolves at the next grant or {@link cancel}. */
  wait(): Promise<void> | undefined {
    if (this.#credit > 0) return undefined;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Wakes every waiter (the socket is closing; the waiter re-checks its state). */
  cancel(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/**
 * The receiver's window on one socket. Invariant: credit the peer still holds plus bytes received but not
 * yet consumed never exceeds `window`, so the receiver buffers at most `window` bytes for this socket.
 */
export class ReceiveWindow {
  /** The window this receiver grants (at least {@link INITIAL_WINDOW}). */
  readonly window: number;
  /** Credit the peer holds: granted minus received. */
  #peerCredit = INITIAL_WINDOW;
  /** Bytes consumed and not yet granted back. */
  #pending = 0;

  /** `window` is raised to {@link INITIAL_WINDOW} if smaller (the peer holds that much from the start). */
  constructor(window: number) {
    this.window = Math.max(INITIAL_WINDOW, Math.min(window, MAX_GRANT));
  }

  /** Credit the peer still holds. */
  get peerCredit(): number {
    return this.#peerCredit;
  }

  /** The grant to send when the socket opens, taking the peer from {@link INITIAL_WINDOW} to the window. */
  opening(): number {
    const extra = this.window - INITIAL_WINDOW;
    this.#peerCredit += extra;
    return extra;
  }

  /** Records `bytes` received. False means the peer sent past its credit (a protocol violation). */
  receive(bytes: number): boolean {
    if (bytes > this.#peerCredit) return false;
    this.#peerCredit -= bytes;
    return true;
  }

  /**
   * Records `bytes` consumed (delivered onward) and returns how many bytes to grant now: 0 until a quarter
   * window has been consumed, so grants are batched; then everything consumed so far.
   */
  consumed(bytes: number): number {
    this.#pending += bytes;
    if (this.#pending < this.window / 4) return 0;
    const grant = this.#pending;
    this.#pending = 0;
    this.#peerCredit += grant;
    return grant;
  }
}

/** Where a {@link SocketFlow} reports: grants to send to the client. */
export type GrantSink = (bytes: number) => void;

/**
 * Both windows of one server-side socket in a v2 session, and the hooks a {@link TcpStream} needs:
 * `room()` before each read (waits while the client's credit is spent), `readLimit()` (a read never exceeds
 * the credit), `sent()` for each `data` sent, `received()` for each `send` accepted, `written()` as the
 * kernel takes bytes (renewing the client's upload credit through `grant`).
 *
 * Memory bound per socket: at most `uploadWindow` bytes queued towards the network, and nothing held
 * towards the client: bytes read are sent at once, and no more is read than the client granted.
 */
export class SocketFlow {
  /** Server → client: the credit the client granted for `data`. */
  readonly download = new SendCredit();
  /** Client → server: the window the server grants for `send`. */
  readonly upload: ReceiveWindow;
  readonly #grant: GrantSink;
  /** Total payload bytes sent as `data` (for tests and metrics). */
  sentBytes = 0;

  /** `uploadWindow` is the client's send window on this socket; `grant` sends a `credit` event. */
  constructor(uploadWindow: number, grant: GrantSink) {
    this.upload = new ReceiveWindow(uploadWindow);
    this.#grant = grant;
  }

  /** Call once the socket is open (`connected`/`accepted` sent): tops the client's credit up to the window. */
  opened(): void {
    const extra = this.upload.opening();
    if (extra > 0) this.#grant(extra);
  }

  /** Undefined while the client has credit left; else resolves at the next grant (or {@link close}). */
  room(): Promise<void> | undefined {
    return this.download.wait();
  }

  /** The most bytes the next read may return. */
  readLimit(): number {
    return this.download.available;
  }

  /** Records a `data` event of `bytes` payload bytes. */
  sent(bytes: number): void {
    this.download.spend(bytes);
    this.sentBytes += bytes;
  }

  /** Records a `send` of `bytes`; false if the client passed its window (the socket must be dropped). */
  received(bytes: number): boolean {
    return this.upload.receive(bytes);
  }

  /** Records `bytes` written to the kernel; grants the client more once a quarter window is consumed. */
  written(bytes: number): void {
    const grant = this.upload.consumed(bytes);
    if (grant > 0) this.#grant(grant);
  }

  /** The socket ended: wakes a read loop waiting for credit so it can see the end. */
  close(): void {
    this.download.cancel();
  }
}

/** A v2 socket's `waitForRoom`: first the client's credit on this socket, then the session's WebSocket room. */
export function flowRoom(
  flow: SocketFlow,
  sessionRoom: () => Promise<void> | undefined,
): Promise<void> | undefined {
  const credit = flow.room();
  return credit ? credit.then(sessionRoom) : sessionRoom();
}

/** The error a socket is dropped with when the client breaks its window (a buggy or hostile client). */
export function flowViolation(id: number, bytes: number, flow: SocketFlow): WasmnetError {
  return new WasmnetError(
    "BUFFER_FULL",
    `socket ${id}: the client sent or granted ${bytes} bytes past its flow-control window ` +
      `(${flow.upload.peerCredit} bytes of send credit left)`,
  );
}

/** Sends on a WebSocket that may have closed under us (the server then closes the session). */
export function sendQuietly(port: { send(message: Uint8Array): void }, message: Uint8Array): void {
  try {
    port.send(message);
  } catch {
    // closed: nothing to do
  }
}
