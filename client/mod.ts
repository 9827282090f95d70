/**
 * @wasmnet/client: real TCP sockets for browser (and Deno, Node) code over one WebSocket to a wasmnet
 * server. `WasmnetClient` keeps the original callback API; `client.openSocket()` gives web-stream sockets.
 *
 * ```ts
 * import { WasmnetClient } from "@wasmnet/client";
 * const client = new WasmnetClient("ws://localhost:9000");
 * await client.ready();
 * const id = await client.connect("example.com", 80);
 * client.onData(id, (data) => console.log(new TextDecoder().decode(data)));
 * client.send(id, "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n");
 * ```
 *
 * @module
 */

export { WasmnetClient, type WasmnetClientOptions } from "./src/client.ts";
export type {
  AcceptCallback,
  CloseCallback,
  DataCallback,
  DataFromCallback,
  Listener,
  SendData,
  UdpSocket,
  WebSocketConstructor,
  WebSocketLike,
} from "./src/types.ts";
export {
  type SocketChannel,
  type SocketSink,
  type StreamChunk,
  WasmnetSocket,
  type WasmnetSocketInfo,
  type WasmnetSocketOptions,
} from "./src/socket.ts";
export { WasmnetListener } from "./src/listener.ts";
export {
  discoverWebTransport,
  type Transport,
  type WebTransportInfo,
  type WebTransportStats,
  wellKnownUrl,
} from "./src/webtransport.ts";
export {
  type DatagramMessage,
  type ReceivedDatagram,
  WasmnetDatagramSocket,
  type WasmnetDatagramSocketInfo,
  type WasmnetDatagramSocketOptions,
} from "./src/datagram.ts";
export { WasmnetError, type WasmnetErrorKind } from "./src/errors.ts";
export {
  decodeBase64,
  decodeBinary,
  decodeJson,
  encodeBase64,
  encodeBinary,
  encodeJson,
  encodeSendInto,
  type Event,
  ProtocolError,
  type Request,
  SERVER_ID_BASE,
  type SocketId,
} from "./src/wire.ts";
