/**
 * The plain types of the client's public callback API (what `send` takes, what `bind` and `connectUdp`
 * give, the callbacks) and of the WebSocket it drives, in a module of their own so the parts of the
 * client that build on them (`datagram.ts`, `webtransport.ts`) need not import `client.ts`.
 *
 * @module
 */

import type { WasmnetError } from "./errors.ts";
import type { SocketId } from "./wire.ts";

/** What `send` accepts: text is sent as UTF-8. */
export type SendData = string | Uint8Array | ArrayBuffer | ArrayBufferView;

/** The listener made by `WasmnetClient.bind`: its socket id and the port the server really bound. */
export interface Listener {
  /** Socket id of the listener, for `onAccept`, `listen` and `close`. */
  id: SocketId;
  /** The bound port (useful when binding port 0). */
  port: number;
}

/** A UDP socket made by `WasmnetClient.connectUdp`: its id and the local port the server bound. */
export interface UdpSocket {
  /** Socket id, for `send`, `sendTo`, `onData`, `onDataFrom` and `close`. */
  id: SocketId;
  /** Local UDP port on the server. */
  port: number;
}

/** Called with each chunk of bytes received, in order. */
export type DataCallback = (data: Uint8Array) => void;
/** Called with each datagram and its source. */
export type DataFromCallback = (
  data: Uint8Array,
  addr: string,
  port: number,
) => void;
/** Called once per inbound connection on a listener, with the new socket's id and `"ip:port"` of the peer. */
export type AcceptCallback = (connId: SocketId, remote: string) => void;
/** Called once when a socket is closed; `error` says why when it was not a normal close. */
export type CloseCallback = (error?: WasmnetError) => void;

/** The part of the WebSocket API the client uses, so a Node `ws` WebSocket can stand in for the global one. */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Bytes queued by `send` but not yet handed to the network; drives the writable's backpressure. */
  readonly bufferedAmount: number;
  /** Set to `"arraybuffer"` by the client. */
  binaryType: string;
  /** The subprotocol the server chose (`wasmnet.v2` turns flow control on). */
  readonly protocol?: string;
  /** Sends one text or binary message (an `ArrayBuffer`-backed view, as the DOM's `WebSocket.send` takes). */
  send(data: string | Uint8Array<ArrayBuffer>): void;
  /** Closes the connection. */
  close(code?: number, reason?: string): void;
  /** Subscribes to `open`, `message`, `error` and `close`. */
  // deno-lint-ignore no-explicit-any -- events differ between runtimes (DOM, Deno, the ws package)
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** A constructor of {@link WebSocketLike}, e.g. `globalThis.WebSocket` or the `ws` package's `WebSocket`. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;
