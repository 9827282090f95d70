/**
 * The one place a request becomes a WebSocket: every front end (wasmnet, Wisp, websockify, Emscripten's
 * POSIX proxy) upgrades through {@link upgradeToPort} and gets a {@link WebSocketPort} plus callbacks.
 *
 * @module
 */

/** The part of a WebSocket a session needs: send, close, and how much is waiting to go out. */
export interface WebSocketPort {
  send(message: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
}

/** What a front end does with its WebSocket once upgraded. */
export interface PortHandlers {
  /** One message (text as string, binary as bytes). */
  message(data: string | Uint8Array): void;
  /** The WebSocket closed (either side) or failed. Called once. */
  close(): void;
}

/**
 * Upgrades `request` (which must be a WebSocket upgrade) and wires it to the handlers `start` returns.
 * `protocol` is the `Sec-WebSocket-Protocol` value to answer with, if the client offered one.
 */
export function upgradeToPort(
  request: Request,
  start: (port: WebSocketPort) => PortHandlers,
  options: { protocol?: string; idleTimeout?: number } = {},
): Response {
  const { socket, response } = Deno.upgradeWebSocket(request, options);
  socket.binaryType = "arraybuffer";
  const port: WebSocketPort = {
    send: (message) => socket.send(message as string | Uint8Array<ArrayBuffer>),
    close: (code, reason) => socket.close(code, reason),
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
  };
  const handlers = start(port);
  let closed = false;
  const onClose = () => {
    if (closed) return;
    closed = true;
    handlers.close();
  };
  socket.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    handlers.message(typeof e.data === "string" ? e.data : new Uint8Array(e.data));
  };
  socket.onclose = onClose;
  socket.onerror = onClose;
  return response;
}

/** True if `request` asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The subprotocols a client offered, in order. */
export function offeredProtocols(request: Request): string[] {
  return (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim()).filter(
    Boolean,
  );
}
