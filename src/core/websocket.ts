/**
 * The one place a request becomes a WebSocket: every front end (wasmnet, Wisp, websockify, Emscripten's
 * POSIX proxy) upgrades through {@link upgradeToPort} and gets a {@link WebSocketPort} plus callbacks.
 *
 * @module
 */

import { TOKEN_PROTOCOL_PREFIX } from "../auth/mod.ts";
import { MessageGuard, messageLimitsFor } from "./limits.ts";

/** The part of a WebSocket a session needs: send, close, and how much is waiting to go out. */
export interface WebSocketPort {
  send(message: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
  /** Counts this WebSocket's traffic, when the server meters sessions (metrics, access log). */
  readonly observer?: PortObserver;
}

/**
 * What the server counts about one WebSocket (src/ops/metrics.ts implements it). Called on the data path,
 * so an implementation only adds to numbers.
 */
export interface PortObserver {
  /** A message of `bytes` from the browser (text: its length in UTF-16 units). */
  received(bytes: number): void;
  /** A message of `bytes` to the browser. */
  sent(bytes: number): void;
  /** The front end stopped reading its sockets: the send buffer is over its bound. */
  paused(): void;
  /** The front end learned its framing from the first message (wasmnet v1: `json` or `binary`). */
  framed?(framing: string): void;
  /** The WebSocket closed with `code` (1006 when it failed without a close frame). */
  closed(code: number): void;
}

const observerByRequest = new WeakMap<Request, (protocol: string | undefined) => PortObserver>();

/**
 * Attaches a meter to an admitted request: {@link upgradeToPort} calls `open` with the subprotocol the front
 * end chose and counts the WebSocket's messages, pauses and close on what it returns. No endpoint can skip it.
 */
export function observeUpgrade(
  request: Request,
  open: (protocol: string | undefined) => PortObserver,
): void {
  observerByRequest.set(request, open);
}

/**
 * The meter attached to `request` by {@link observeUpgrade}, opened with `protocol`: for a front end that
 * sets its session up without {@link upgradeToPort} (WebTransport), so it is counted all the same.
 */
export function observerFor(request: Request, protocol: string | undefined): PortObserver | undefined {
  return observerByRequest.get(request)?.(protocol);
}

/** What a front end does with its WebSocket once upgraded. */
export interface PortHandlers {
  /** The WebSocket is open: the first moment `send` works (protocols where the server speaks first, e.g. Wisp). */
  open?(): void;
  /** One message (text as string, binary as bytes). */
  message(data: string | Uint8Array): void;
  /** The WebSocket closed (either side) or failed. Called once. */
  close(): void;
}

/** What a server-side WebSocket implementation gives {@link upgradeToPort}: Deno's, or the server's own. */
export interface UpgradedSocket {
  send(message: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
  onopen: (() => void) | undefined;
  onmessage: ((data: string | Uint8Array) => void) | undefined;
  /** The connection is gone; `code` is the close code seen (1006: none). */
  onclose: ((code: number) => void) | undefined;
}

/** What {@link upgradeToPort} asks of an {@link Upgrader}. */
export interface UpgradeRequestOptions {
  /** The `Sec-WebSocket-Protocol` to answer with. */
  protocol?: string;
  /** The largest message, summed over its fragments, enforced while it arrives. */
  maxMessageBytes: number;
}

/** Makes the WebSocket for one request (throws, like `Deno.upgradeWebSocket`, on a bad upgrade request). */
export type Upgrader = (options: UpgradeRequestOptions) => UpgradedSocket;

const upgraders = new WeakMap<Request, Upgrader>();

/**
 * Says how `request` is upgraded: the server's accept loop (src/http/accept.ts) installs its own
 * WebSocket here; a request without one (a handler mounted in a user's `Deno.serve`) gets Deno's.
 */
export function installUpgrader(request: Request, upgrader: Upgrader): void {
  upgraders.set(request, upgrader);
}

/** The largest message Deno's own WebSocket takes in one frame (its fragments are not bounded at all). */
const DENO_FRAME_LIMIT = 64 * 1024 * 1024;

/**
 * Upgrades `request` (which must be a WebSocket upgrade) and wires it to the handlers `start` returns.
 * `protocol` is the `Sec-WebSocket-Protocol` value to answer with, if the client offered one.
 */
export function upgradeToPort(
  request: Request,
  start: (port: WebSocketPort) => PortHandlers,
  options: { protocol?: string; idleTimeout?: number } = {},
): Response {
  // A client that offered only a token protocol still needs an answer, or browsers fail the handshake.
  const protocol = options.protocol ?? offeredTokenProtocol(request);
  // Message size and session idle limits the server attached at admission (src/core/limits.ts).
  const limits = messageLimitsFor(request);
  // The server's own WebSocket when the request came through its accept loop (src/http/), else Deno's.
  const own = upgraders.get(request);
  const { socket, response } = own
    ? {
      socket: own({ protocol, maxMessageBytes: limits?.maxMessageBytes ?? DENO_FRAME_LIMIT }),
      response: new UpgradeResponse(), // not sent: the accept loop writes the 101 itself
    }
    : denoUpgrade(request, { ...options, protocol });
  const guard = limits && new MessageGuard(limits, (code, reason) => socket.close(code, reason));
  const observer = observerByRequest.get(request)?.(options.protocol);
  const port: WebSocketPort = {
    send: observer
      ? (message) => {
        guard?.touch();
        observer.sent(message.length);
        socket.send(message);
      }
      : (message) => (guard?.touch(), socket.send(message)),
    close: (code, reason) => socket.close(code, reason),
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    observer,
  };
  const handlers = start(port);
  let closed = false;
  socket.onclose = (code) => {
    if (closed) return;
    closed = true;
    guard?.stop();
    handlers.close();
    observer?.closed(code);
  };
  socket.onmessage = (data) => {
    observer?.received(data.length);
    if (guard && !guard.accept(data)) return; // too big: closed with 1009, never decoded
    handlers.message(data);
  };
  if (handlers.open) socket.onopen = () => handlers.open!();
  return response;
}

/**
 * What a handler returns for an upgrade done by the server's own WebSocket: status 101 like Deno's upgrade
 * response (admission holds a session slot only for a 101), though `Response` itself refuses to build one.
 */
class UpgradeResponse extends Response {
  constructor() {
    super(null, { status: 200 });
  }
  override get status(): number {
    return 101;
  }
}

/** Deno's WebSocket, behind the same {@link UpgradedSocket} shape. */
function denoUpgrade(
  request: Request,
  options: { protocol?: string; idleTimeout?: number },
): { socket: UpgradedSocket; response: Response } {
  const { socket, response } = Deno.upgradeWebSocket(request, options);
  socket.binaryType = "arraybuffer";
  const wrapped: UpgradedSocket = {
    send: (message) => socket.send(message as string | Uint8Array<ArrayBuffer>),
    close: (code, reason) => socket.close(code, reason),
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    onopen: undefined,
    onmessage: undefined,
    onclose: undefined,
  };
  socket.onmessage = (e: MessageEvent<string | ArrayBuffer>) =>
    wrapped.onmessage?.(typeof e.data === "string" ? e.data : new Uint8Array(e.data));
  socket.onopen = () => wrapped.onopen?.();
  socket.onclose = socket.onerror = (event: Event) =>
    wrapped.onclose?.(event instanceof CloseEvent ? event.code : 1006);
  return { socket: wrapped, response };
}

/** True if `request` asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The subprotocols a client offered, in order (token carriers `wasmnet.token.<jwt>` left out). */
export function offeredProtocols(request: Request): string[] {
  return (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim()).filter(
    (p) => p !== "" && !p.startsWith(TOKEN_PROTOCOL_PREFIX),
  );
}

/** The `wasmnet.token.<jwt>` protocol the client offered, if any (answered when nothing else is chosen). */
function offeredTokenProtocol(request: Request): string | undefined {
  return (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim()).find((p) =>
    p.startsWith(TOKEN_PROTOCOL_PREFIX)
  );
}

/**
 * Default bound of a WebSocket's send buffer before a front end stops reading its TCP sockets. Deno has no
 * drain event, so a paused session polls; the bound must hold enough to cover the poll and the reader's
 * scheduling delay. On loopback with two shared cores 8 MiB relays a bulk download about a third faster than
 * 4 MiB (docs/benchmarks.md); it is a bound, not an allocation: a session whose browser keeps up holds far less.
 */
export const DEFAULT_SEND_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Waits for a WebSocket's send buffer to drain below a bound: how every front end pauses reading its TCP
 * sockets while the browser is slow. The runtime has no "drain" event, so while anyone waits it polls
 * `bufferedAmount` every `pollMs`; waiters are released once it is at or below half the bound.
 */
export class SendBufferGate {
  readonly #port: WebSocketPort;
  readonly #maxBuffered: number;
  readonly #pollMs: number;
  #waiters: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Gates on `port`'s send buffer holding at most `maxBuffered` bytes. */
  constructor(port: WebSocketPort, maxBuffered = DEFAULT_SEND_BUFFER_BYTES, pollMs = 1) {
    this.#port = port;
    this.#maxBuffered = maxBuffered;
    this.#pollMs = pollMs;
  }

  /** True while the send buffer is within the bound. */
  get hasRoom(): boolean {
    return this.#port.bufferedAmount <= this.#maxBuffered;
  }

  /** Undefined when there is room now (nothing allocated on the hot path), else resolves when there is. */
  wait(): Promise<void> | undefined {
    if (this.#closed || this.hasRoom) return undefined;
    if (this.#waiters.length === 0) this.#port.observer?.paused(); // one pause per episode, not per socket
    const waiting = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#poll();
    return waiting;
  }

  /** Releases every waiter and stops polling (the session is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const release of this.#waiters.splice(0)) release();
  }

  #poll(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed || this.#port.bufferedAmount <= this.#maxBuffered / 2) {
        for (const release of this.#waiters.splice(0)) release();
      } else {
        this.#poll();
      }
    }, this.#pollMs);
  }
}
