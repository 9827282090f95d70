/**
 * `transport: "auto"` ({@link AutoSocket}): WebTransport where the browser has it and the server advertises
 * it, else the WebSocket, decided within a bounded time, behind the same {@link WebSocketLike} as both.
 *
 * @module
 */

import type { WebSocketConstructor, WebSocketLike } from "./types.ts";
import {
  DEFAULT_WEBTRANSPORT_TIMEOUT_MS,
  Events,
  hasWebTransport,
  type MessageListener,
  PROTOCOL_V2,
  WebTransportSocket,
  type WebTransportStats,
} from "./webtransport.ts";

/** Options of {@link AutoSocket}. */
export interface AutoSocketOptions {
  v2: boolean;
  protocols?: string | string[];
  WebSocket?: WebSocketConstructor;
  /** Time WebTransport gets before the WebSocket is used (default {@link DEFAULT_WEBTRANSPORT_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/**
 * `transport: "auto"`: WebTransport when this browser has it and the server advertises it, and it comes up
 * within `timeoutMs`; otherwise the WebSocket. A refusal over WebTransport (origin, token, caps) is final,
 * not a reason to fall back. {@link chosen} says which one is in use once open.
 */
export class AutoSocket implements WebSocketLike {
  binaryType = "arraybuffer";
  /** `"webtransport"` or `"websocket"` once decided. */
  chosen: "webtransport" | "websocket" | undefined;
  readonly #events = new Events();
  #inner: WebSocketLike | undefined;

  /** Starts with WebTransport (or the WebSocket at once when the browser has no WebTransport). */
  constructor(readonly url: string, readonly options: AutoSocketOptions) {
    if (!hasWebTransport()) {
      this.#useWebSocket();
      return;
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_WEBTRANSPORT_TIMEOUT_MS;
    const wt = new WebTransportSocket(url, { v2: options.v2, timeoutMs });
    let settled = false;
    wt.addEventListener("open", () => {
      if (settled) return;
      settled = true;
      this.#use(wt, "webtransport");
      this.#events.emit("open", {});
    });
    wt.addEventListener("close", (event) => {
      if (settled) return;
      settled = true;
      const code = Number(event.code);
      // A refusal carries the HTTP status it would have been: final. Anything else: the WebSocket.
      if (code >= 400 && code < 600) {
        this.#use(wt, "webtransport");
        this.#events.emit("error", { message: String(event.reason) });
        this.#events.emit("close", event);
      } else {
        this.#useWebSocket();
      }
    });
  }

  get readyState(): number {
    return this.#inner?.readyState ?? 0;
  }

  get bufferedAmount(): number {
    return this.#inner?.bufferedAmount ?? 0;
  }

  get protocol(): string | undefined {
    return this.#inner?.protocol;
  }

  /** The WebTransport counts, when WebTransport is in use. */
  get stats(): WebTransportStats | undefined {
    return this.#inner instanceof WebTransportSocket ? this.#inner.stats : undefined;
  }

  addEventListener(type: string, listener: MessageListener): void {
    this.#events.on(type, listener);
  }

  send(data: string | Uint8Array<ArrayBuffer>): void {
    this.#inner?.send(data);
  }

  close(code?: number, reason?: string): void {
    this.#inner?.close(code, reason);
  }

  #use(inner: WebSocketLike, chosen: "webtransport" | "websocket"): void {
    this.#inner = inner;
    this.chosen = chosen;
    if (chosen === "webtransport") {
      for (const type of ["message", "error", "close"]) {
        inner.addEventListener(type, (event) => this.#events.emit(type, event));
      }
    }
  }

  #useWebSocket(): void {
    const Ctor = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new TypeError("wasmnet: no global WebSocket here");
    const { v2, protocols } = this.options;
    const offered = v2 ? [...[protocols ?? []].flat(), PROTOCOL_V2] : protocols;
    const ws = offered === undefined ? new Ctor(this.url) : new Ctor(this.url, offered);
    ws.binaryType = "arraybuffer";
    this.#inner = ws;
    this.chosen = "websocket";
    for (const type of ["open", "message", "error", "close"]) {
      ws.addEventListener(type, (event) => this.#events.emit(type, event));
    }
  }
}
