/**
 * The plain types of the client's public callback API (what `send` takes, what `bind` and `connectUdp`
 * give, the callbacks), in a module of their own so the parts of the client that build on the API
 * (`datagram.ts`) need not import `client.ts`.
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
