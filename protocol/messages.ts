/**
 * The wasmnet wire protocol as data: requests (browser → server) and events (server → browser).
 * No I/O here; codecs live in `json.ts` and `binary.ts`. docs/protocol.md is the prose form.
 *
 * @module
 */

/** A socket id: a non-negative safe integer. Client ids and server-chosen `conn_id`s never collide (see {@link SERVER_ID_BASE}). */
export type SocketId = number;

/**
 * Server-chosen ids (`conn_id` of `accepted`) are allocated from 2^53 - 2^32 upward, i.e. the top 2^32 of the
 * safe integer range. Clients must choose their ids below this base; a request opening a socket with an id
 * at or above it is refused with `error` (`BAD_REQUEST`).
 */
export const SERVER_ID_BASE = Number.MAX_SAFE_INTEGER - 0xffff_ffff; // 2^53 - 1 - (2^32 - 1) = 2^53 - 2^32

/** The framing a message came in; a server answers in the framing of the request. */
export type Framing = "json" | "binary";

/** Outbound TCP. */
export interface ConnectRequest {
  op: "connect";
  id: SocketId;
  addr: string;
  port: number;
}
/** Bind a local TCP port and start accepting. */
export interface BindRequest {
  op: "bind";
  id: SocketId;
  addr: string;
  port: number;
}
/** Compatibility no-op on a bound id; may set the backlog. */
export interface ListenRequest {
  op: "listen";
  id: SocketId;
  backlog?: number;
}
/** Write bytes to a socket (TCP) or send one datagram to its target (UDP). */
export interface SendRequest {
  op: "send";
  id: SocketId;
  data: Uint8Array;
}
/** Close a socket or a listener. */
export interface CloseRequest {
  op: "close";
  id: SocketId;
}
/**
 * Half-close (an extension, both framings): no more `send` on TCP socket `id`; once what was sent is written,
 * the peer reads end-of-stream. Data from the peer keeps coming until it closes too, then `closed`.
 */
export interface ShutdownRequest {
  op: "shutdown";
  id: SocketId;
}
/** Outbound TCP plus a TLS handshake done by the server. */
export interface ConnectTlsRequest {
  op: "connect_tls";
  id: SocketId;
  addr: string;
  port: number;
}
/** A UDP socket aimed at a target. */
export interface ConnectUdpRequest {
  op: "connect_udp";
  id: SocketId;
  addr: string;
  port: number;
}
/** One datagram to a given destination. */
export interface SendToRequest {
  op: "send_to";
  id: SocketId;
  addr: string;
  port: number;
  data: Uint8Array;
}
/** A DNS lookup. */
export interface ResolveRequest {
  op: "resolve";
  id: SocketId;
  name: string;
}
/**
 * Flow control (protocol v2 only): the client grants the server `bytes` more bytes of `data` payload on
 * socket `id` (see docs/protocol.md, "Flow control (v2)"). Binary payload: 4-byte big-endian unsigned `bytes`, 1 to 2^32-1.
 */
export interface CreditRequest {
  op: "credit";
  id: SocketId;
  bytes: number;
}

/** Every request a client may send. */
export type Request =
  | ConnectRequest
  | BindRequest
  | ListenRequest
  | SendRequest
  | CloseRequest
  | ShutdownRequest
  | ConnectTlsRequest
  | ConnectUdpRequest
  | SendToRequest
  | ResolveRequest
  | CreditRequest;

/** The name of a request operation. */
export type Op = Request["op"];

/** Connection established (TCP or TLS). */
export interface ConnectedEvent {
  ev: "connected";
  id: SocketId;
}
/** Bytes received, in order (TCP) or one datagram (UDP socket's own target). */
export interface DataEvent {
  ev: "data";
  id: SocketId;
  data: Uint8Array;
}
/** Listener bound, with the real port. */
export interface ListeningEvent {
  ev: "listening";
  id: SocketId;
  port: number;
}
/** A new inbound connection on listener `id`, addressed by `conn_id` from then on. */
export interface AcceptedEvent {
  ev: "accepted";
  id: SocketId;
  conn_id: SocketId;
  remote: string;
}
/** The peer closed, or the close asked for is done. */
export interface ClosedEvent {
  ev: "closed";
  id: SocketId;
}
/** Something failed. `msg` is for people; `code` (JSON only, an extension) is for programs. */
export interface ErrorEvent {
  ev: "error";
  id: SocketId;
  msg: string;
  code?: string;
}
/** Refused by policy or by the runtime's permissions. */
export interface DeniedEvent {
  ev: "denied";
  id: SocketId;
  msg: string;
  code?: string;
}
/** A datagram from a given source. */
export interface DataFromEvent {
  ev: "data_from";
  id: SocketId;
  data: Uint8Array;
  addr: string;
  port: number;
}
/** The answer to `resolve`: the addresses the policy would allow. */
export interface ResolvedEvent {
  ev: "resolved";
  id: SocketId;
  addrs: string[];
}
/** UDP socket ready, with its local port. */
export interface UdpBoundEvent {
  ev: "udp_bound";
  id: SocketId;
  port: number;
}
/** Flow control (protocol v2 only): the server grants the client `bytes` more bytes of `send` payload on `id`. */
export interface CreditEvent {
  ev: "credit";
  id: SocketId;
  bytes: number;
}

/** Every event a server may send. */
export type Event =
  | ConnectedEvent
  | DataEvent
  | ListeningEvent
  | AcceptedEvent
  | ClosedEvent
  | ErrorEvent
  | DeniedEvent
  | DataFromEvent
  | ResolvedEvent
  | UdpBoundEvent
  | CreditEvent;

/** The name of an event. */
export type EventName = Event["ev"];
