/**
 * The server side of Emscripten's POSIX socket proxy (`-lwebsocket.js -sPROXY_POSIX_SOCKETS -pthread
 * -sPROXY_TO_PTHREAD`), served at `/posix` (any path under it). The program's
 * `emscripten_init_websocket_to_posix_socket_bridge("ws://wasmnet-host:9000/posix/")` opens one WebSocket;
 * every socket call becomes one message (`posix_codec.ts`) and is answered when it completes, so a
 * blocking `connect`, `recv` or `accept` blocks the calling pthread until then, while calls from other
 * threads go on.
 *
 * Sockets are virtual: numbers handed out per session from {@link FD_BASE} up, never host descriptors, and
 * a session can only name its own. TCP and UDP (`posix_udp.ts`). Every `connect`, UDP socket and `bind` is
 * opened through the session's socket core (`src/core/core.ts`: policy, log, limits), every UDP destination
 * of `sendto` is vetted too, and every name lookup goes through the policy before its answer reaches the
 * program.
 *
 * A refusal by the policy reaches the program as `EACCES` from `connect`, `bind` and UDP `sendto` (Linux's
 * errno for "a local firewall rule refused it", distinct from `ECONNREFUSED`, which keeps meaning "nothing
 * listens there"), and as `EAI_FAIL` from `getaddrinfo` (a name that does not exist is `EAI_NONAME`).
 *
 * Bounds (per session): sockets `network.max_connections` (`socket`/`accept` fail with `EMFILE`), listeners
 * `network.max_listeners` (`ENOBUFS`), connects in flight `network.max_pending_connects` (`EAGAIN`), calls in
 * flight {@link MAX_PENDING_CALLS} (`ENOBUFS`), received bytes waiting for `recv` per socket
 * `DEFAULT_RECV_BUFFER_BYTES` (reading pauses), accepted connections waiting for `accept` per listener
 * {@link MAX_ACCEPT_BACKLOG} (accepting pauses), datagrams waiting per UDP socket (`posix_udp.ts`; more are
 * dropped), and a message larger than `server.max_message_bytes` closes the session with 1009.
 *
 * Longer than 500 lines: it is the calls, one method each (socket, connect, bind, listen, accept, send,
 * recv, the options, names, getaddrinfo); the descriptor table is `posix_fds.ts`, lookups
 * `posix_lookup.ts`, errno mapping `posix_calls.ts`, the wire codec `posix_codec.ts`.
 *
 * @module
 */

import { type Closable, type Endpoint, type EndpointContext, trackedHandlers } from "../endpoint.ts";
import { toWasmnetError } from "../../core/errors.ts";
import type { BandwidthBudget } from "../../core/limits.ts";
import type { SocketObserver } from "../../core/observer.ts";
import { type CoreSession, coreSessionOf, formatHostPort } from "../../core/core.ts";
import type { DecisionLog } from "../../core/log.ts";
import { isIpLiteral, type Policy } from "../../policy/mod.ts";
import type { Resolver } from "../../core/sockets/resolver.ts";
import { DRAIN_FLUSH_MS } from "../../core/sockets/tcp.ts";
import { offeredProtocols, upgradeToPort, type WebSocketPort } from "../../core/websocket.ts";
import {
  type AddrinfoEntry,
  decodeCall,
  Eai,
  encodeAddressReply,
  encodeGetaddrinfoReply,
  encodeGetsockoptReply,
  encodeRecvfromReply,
  encodeRecvReply,
  encodeResult,
  encodeSockaddr,
  Errno,
  Fn,
  intOption,
  Musl,
  parseService,
  type PosixCall,
  type SockAddr,
} from "./posix_codec.ts";
import { CallIds, codeOf, errnoForError } from "./posix_calls.ts";
import { lookUpForProgram } from "./posix_lookup.ts";
import { applyOptions, destroySocket, FD_BASE, FdTable, peerBytes, type VSocket } from "./posix_fds.ts";
import { DEFAULT_RECV_BUFFER_BYTES, PosixConn } from "./posix_conn.ts";
import { PosixUdp } from "./posix_udp.ts";

/** The path this endpoint serves (and every path under it). */
export const POSIX_PATH = "/posix";

/** Calls in flight per session; more are answered `ENOBUFS` at once. */
export const MAX_PENDING_CALLS = 256;

/** Accepted connections waiting for `accept` per listener; while full, the listener is not accepted from. */
export { FD_BASE };
export { CallIds, errnoForError } from "./posix_calls.ts";
export { lookupProbePorts } from "./posix_lookup.ts";

/** Accepted connections waiting for `accept` per listener; while full, the listener is not accepted from. */
export const MAX_ACCEPT_BACKLOG = 64;

/** Options of one proxy session. */
export interface PosixProxyOptions {
  policy: Policy;
  /** The interface the server listens on: the default bind address. */
  serverHost: string;
  clientIp: string;
  /** The bandwidth this client address shares with its other sessions (`max_bandwidth_mbps_per_ip`). */
  clientBudget?: BandwidthBudget;
  /** Told about every socket the core opens for this session (metrics; src/core/observer.ts). */
  observer?: SocketObserver;
  log: DecisionLog;
  resolver?: Resolver;
  /** Session id for logs (default: random). */
  id?: string;
  /**
   * The socket core's handle for this session (the server passes one, with its observer and quota). When
   * set, it supplies the id, resolver and log, and `id`, `resolver` and `log` above are not used.
   */
  core?: CoreSession;
  /** Received bytes waiting for `recv`, per socket. */
  maxRecvBufferBytes?: number;
}

/** One WebSocket speaking the POSIX proxy protocol. Feed it messages with {@link PosixProxySession.receive}. */
export class PosixProxySession implements Closable {
  /** Session id for logs. */
  readonly id: string;
  readonly #port: WebSocketPort;
  readonly #options: PosixProxyOptions;
  /** Every socket, bind and lookup goes through it (src/core/core.ts). */
  readonly #core: CoreSession;
  /** The session's virtual sockets (posix_fds.ts). */
  readonly #sockets = new FdTable();
  readonly #controller = new AbortController();
  readonly #calls = new CallIds();
  #pending = 0;

  /** Starts a session answering through `port`. */
  constructor(port: WebSocketPort, options: PosixProxyOptions) {
    this.#port = port;
    this.#options = options;
    this.#core = coreSessionOf("posix", options, this.#controller.signal);
    this.id = this.#core.id;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Open sockets (for tests). */
  get socketCount(): number {
    return this.#sockets.size;
  }

  /** Handles one WebSocket message; answers (now or when the call completes). Never throws. */
  receive(message: string | Uint8Array): void {
    if (this.closed) return;
    if (typeof message === "string") {
      this.shutdown(1003, "the POSIX socket proxy speaks binary messages only");
      return;
    }
    if (message.length > this.#options.policy.config.server.max_message_bytes) {
      this.shutdown(1009, `message of ${message.length} bytes is over server.max_message_bytes`);
      return;
    }
    const decoded = decodeCall(message);
    if (!decoded.ok) {
      if (decoded.callId !== undefined) {
        this.#calls.saw(decoded.callId);
        this.#reply(encodeResult(decoded.callId, decoded.code ?? 0, -1, Errno.EINVAL));
      } else if (message.length === 0) {
        // Emscripten 3.1.6's getsockname()/getpeername() compute a negative message size and send nothing
        // at all; answer the call that is missing so that its thread does not block forever.
        const callId = this.#calls.guessMissing();
        if (callId !== undefined) this.#reply(encodeResult(callId, Fn.GETSOCKNAME, -1, Errno.EOPNOTSUPP));
      }
      return;
    }
    const call = decoded.call;
    this.#calls.saw(call.callId);
    if (this.#pending >= MAX_PENDING_CALLS) {
      this.#reply(encodeResult(call.callId, codeOf(call), -1, Errno.ENOBUFS));
      return;
    }
    this.#pending++;
    this.#dispatch(call).then(
      (reply) => {
        this.#pending--;
        if (reply) this.#reply(reply);
      },
      (err) => {
        this.#pending--;
        console.error("wasmnet posix proxy: unexpected error", err);
        this.#reply(encodeResult(call.callId, codeOf(call), -1, Errno.EIO));
      },
    );
  }

  /** Closes every socket and listener; pending calls are not answered (the WebSocket is gone). */
  close(): void {
    if (this.closed) return;
    this.#controller.abort();
    this.#core.close();
    this.#sockets.destroyAll();
  }

  /**
   * How a drain ends the session: like {@link shutdown}, but every connected socket first writes the sends
   * it already accepted (for up to `flushMs`) and then closes. Resolves once all have closed.
   */
  async finish(code = 1001, reason = "server shutting down", flushMs = DRAIN_FLUSH_MS): Promise<void> {
    if (this.closed) return;
    const flushing: Promise<void>[] = [];
    for (const sock of [...this.#sockets.values()]) {
      if (!sock.conn) continue;
      this.#sockets.delete(sock.fd); // not closed with the rest: it closes once written
      flushing.push(sock.conn.closeWithin(flushMs).finally(() => destroySocket(sock)));
    }
    this.shutdown(code, reason);
    await Promise.all(flushing);
  }

  /** Closes the session and its WebSocket with `code`. */
  shutdown(code = 1001, reason = "server shutting down"): void {
    this.close();
    try {
      this.#port.close(code, reason);
    } catch {
      // already closed
    }
  }

  #reply(bytes: Uint8Array): void {
    if (this.closed) return;
    try {
      this.#port.send(bytes);
    } catch {
      // The WebSocket closed; the server closes the session.
    }
  }

  async #dispatch(call: PosixCall): Promise<Uint8Array | undefined> {
    const code = codeOf(call);
    const fail = (errno: number, ret = -1) => encodeResult(call.callId, code, ret, errno);
    switch (call.fn) {
      case "socket":
        return this.#socket(call.callId, call.domain, call.type, call.protocol);
      case "getaddrinfo":
        return await this.#getaddrinfo(call);
      case "socketpair":
        return fail(Errno.EOPNOTSUPP);
      case "unsupported":
        return fail(Errno.ENOSYS);
    }
    const sock = this.#sockets.get(call.fd);
    if (!sock) return fail(Errno.EBADF);
    switch (call.fn) {
      case "connect":
        if ("errno" in call.address) return fail(call.address.errno);
        if (sock.udp) return fail(...(await this.#connectUdp(sock, sock.udp, call.address)));
        return fail(...(await this.#connect(sock, call.address)));
      case "bind":
        if ("errno" in call.address) return fail(call.address.errno);
        if (sock.udp) return fail(Errno.EOPNOTSUPP);
        return fail(...this.#bind(sock, call.address));
      case "listen":
        return fail(...(sock.udp ? [Errno.EOPNOTSUPP] as [number] : this.#listen(sock)));
      case "accept":
        if (sock.udp) return fail(Errno.EOPNOTSUPP);
        return await this.#accept(sock, call.callId, call.addressLen);
      case "send":
      case "sendto": {
        if (sock.udp) {
          const to = call.fn === "sendto" ? call.address : null;
          const sent = to ? await sock.udp.sendTo(to.address, to.port, call.data) : sock.udp.send(call.data);
          return typeof sent === "number" ? encodeResult(call.callId, code, sent, 0) : fail(sent.errno);
        }
        if (!sock.conn) return fail(sock.state === "connecting" ? Errno.EAGAIN : Errno.ENOTCONN);
        const sent = await sock.conn.send(call.data);
        return typeof sent === "number" ? encodeResult(call.callId, code, sent, 0) : fail(sent.errno);
      }
      case "recv":
      case "recvfrom":
        return await this.#recv(sock, call);
      case "shutdown":
        return fail(...this.#shutdown(sock, call.how));
      case "getsockname":
      case "getpeername":
        return this.#name(sock, call.callId, code, call.fn === "getpeername", call.addressLen);
      case "getsockopt":
        return this.#getsockopt(sock, call.callId, call.level, call.name);
      case "setsockopt":
        return fail(...this.#setsockopt(sock, call.level, call.name, call.value));
    }
  }

  #socket(callId: number, domain: number, type: number, protocol: number): Uint8Array {
    const fail = (errno: number) => encodeResult(callId, Fn.SOCKET, -1, errno);
    if (domain !== Musl.AF_INET && domain !== Musl.AF_INET6) return fail(Errno.EAFNOSUPPORT);
    const base = type & ~(Musl.SOCK_NONBLOCK | Musl.SOCK_CLOEXEC);
    if (base !== Musl.SOCK_STREAM && base !== Musl.SOCK_DGRAM) return fail(Errno.EPROTONOSUPPORT);
    const expected = base === Musl.SOCK_STREAM ? Musl.IPPROTO_TCP : Musl.IPPROTO_UDP;
    if (protocol !== 0 && protocol !== expected) return fail(Errno.EPROTONOSUPPORT);
    if (this.#sockets.size >= this.#options.policy.config.network.max_connections) return fail(Errno.EMFILE);
    const sock = this.#sockets.open(domain === Musl.AF_INET ? 4 : 6, (type & Musl.SOCK_NONBLOCK) !== 0);
    if (base === Musl.SOCK_DGRAM) {
      const udp = this.#options.policy.config.udp;
      sock.udp = new PosixUdp(
        (op, host, port, events, limits) =>
          this.#core.openUdp(op, host, port, events, limits, this.#socketSignal(sock)),
        {
          maxDatagramBytes: udp.max_datagram_bytes,
          maxDatagramsPerSec: udp.max_datagrams_per_sec,
        },
      );
    }
    return encodeResult(callId, Fn.SOCKET, sock.fd, 0);
  }

  async #connect(sock: VSocket, to: SockAddr): Promise<[number, number?]> {
    if (sock.state === "connected") return [Errno.EISCONN];
    if (sock.state === "connecting") return [Errno.EALREADY];
    if (sock.state !== "new") return [Errno.EOPNOTSUPP];
    const limits = this.#options.policy.config.network;
    if (this.#sockets.connecting >= limits.max_pending_connects) return [Errno.EAGAIN];
    sock.state = "connecting";
    try {
      const conn = await this.#core.connect("connect", to.address, to.port, {
        signal: this.#socketSignal(sock),
        timeoutMs: limits.connection_timeout_secs * 1000,
      });
      if (this.#sockets.get(sock.fd) !== sock) {
        conn.close();
        return [Errno.EBADF];
      }
      sock.conn = this.#newConn(conn);
      sock.state = "connected";
      applyOptions(sock);
      return [0, 0];
    } catch (err) {
      if (this.#sockets.get(sock.fd) === sock) sock.state = "new";
      const errno = errnoForError(toWasmnetError(err, "CONNECT_FAILED"));
      sock.error = errno;
      return [errno];
    }
  }

  async #connectUdp(sock: VSocket, udp: PosixUdp, to: SockAddr): Promise<[number, number?]> {
    const errno = await udp.connect(to.address, to.port);
    if (errno !== 0) {
      sock.error = errno;
      return [errno];
    }
    sock.state = "connected";
    return [0, 0];
  }

  #bind(sock: VSocket, at: SockAddr): [number, number?] {
    if (sock.state !== "new") return [Errno.EINVAL];
    if (this.#sockets.listeners >= this.#options.policy.config.network.max_listeners) return [Errno.ENOBUFS];
    try {
      sock.listener = this.#core.bindListener(at.address, at.port);
    } catch (err) {
      const e = toWasmnetError(err, "BIND_FAILED");
      // INADDR_ANY / in6addr_any means "wherever the server may listen": the server's own host.
      const wildcard = at.address === "0.0.0.0" || at.address === "::";
      if (!(e.code === "POLICY_DENIED" && wildcard && this.#options.serverHost !== at.address)) {
        return [errnoForError(e)];
      }
      try {
        sock.listener = this.#core.bindListener(this.#options.serverHost, at.port);
      } catch (err2) {
        return [errnoForError(toWasmnetError(err2, "BIND_FAILED"))];
      }
    }
    sock.state = "bound";
    return [0, 0];
  }

  #listen(sock: VSocket): [number, number?] {
    if (sock.state === "listening") return [0, 0];
    if (sock.state === "new") {
      // listen() without bind(): like Linux, bind an ephemeral port first (on the server's own host).
      const bound = this.#bind(sock, { family: sock.family, address: this.#options.serverHost, port: 0 });
      if (bound[0] !== 0) return bound;
    }
    if (sock.state !== "bound" || !sock.listener) return [Errno.EINVAL];
    sock.state = "listening";
    this.#acceptLoop(sock, sock.listener);
    return [0, 0];
  }

  async #acceptLoop(sock: VSocket, listener: Deno.TcpListener): Promise<void> {
    const signal = sock.controller.signal;
    try {
      while (!signal.aborted) {
        if (sock.backlog.length >= MAX_ACCEPT_BACKLOG) {
          await new Promise<void>((r) => (sock.backlogRoom = r));
          continue;
        }
        const conn = this.#core.accepted(await listener.accept());
        if (signal.aborted) {
          conn.close();
          return;
        }
        sock.backlog.push(conn);
        for (const r of sock.backlogWaiters.splice(0)) r();
      }
    } catch {
      // listener closed
    }
    for (const r of sock.backlogWaiters.splice(0)) r();
  }

  async #accept(sock: VSocket, callId: number, room: number): Promise<Uint8Array | undefined> {
    const fail = (errno: number) => encodeResult(callId, Fn.ACCEPT, -1, errno);
    if (sock.state !== "listening") return fail(Errno.EINVAL);
    while (sock.backlog.length === 0) {
      if (sock.nonblocking) return fail(Errno.EAGAIN);
      if (sock.controller.signal.aborted || this.closed) return this.closed ? undefined : fail(Errno.EINVAL);
      await new Promise<void>((r) => sock.backlogWaiters.push(r));
      if (this.closed) return undefined;
      if (this.#sockets.get(sock.fd) !== sock) return fail(Errno.EBADF);
    }
    if (this.#sockets.size >= this.#options.policy.config.network.max_connections) {
      this.#core.decided({
        op: "accept",
        target: remoteOf(sock.backlog[0]),
        decision: "deny",
        rule: "network.max_connections",
        reason: "session has its maximum of open sockets",
      });
      return fail(Errno.EMFILE);
    }
    const conn = sock.backlog.shift()!;
    sock.backlogRoom?.();
    sock.backlogRoom = undefined;
    const accepted = this.#sockets.open(sock.family, false);
    accepted.conn = this.#newConn(conn);
    accepted.state = "connected";
    const remote = conn.remoteAddr;
    return encodeAddressReply(callId, accepted.fd, 0, encodeSockaddr(remote.hostname, remote.port), room);
  }

  async #recv(
    sock: VSocket,
    call: Extract<PosixCall, { fn: "recv" | "recvfrom" }>,
  ): Promise<Uint8Array | undefined> {
    const encode = (ret: number, errno: number, data: Uint8Array = new Uint8Array()) =>
      call.fn === "recv"
        ? encodeRecvReply(call.callId, ret, errno, data)
        : encodeRecvfromReply(call.callId, ret, errno, data, peerBytes(sock), call.addressLen);
    const mode = {
      peek: (call.flags & Musl.MSG_PEEK) !== 0,
      waitAll: (call.flags & Musl.MSG_WAITALL) !== 0,
      nonblocking: sock.nonblocking || (call.flags & Musl.MSG_DONTWAIT) !== 0,
    };
    if (sock.udp) {
      const datagram = await sock.udp.recv(call.length, mode, this.#controller.signal);
      if (this.closed) return undefined;
      if ("errno" in datagram) return encode(-1, datagram.errno);
      const { data } = datagram;
      return call.fn === "recv" ? encodeRecvReply(call.callId, data.length, 0, data) : encodeRecvfromReply(
        call.callId,
        data.length,
        0,
        data,
        encodeSockaddr(datagram.address, datagram.port),
        call.addressLen,
      );
    }
    if (!sock.conn) return encode(-1, Errno.ENOTCONN);
    const got = await sock.conn.recv(call.length, mode, this.#controller.signal);
    if (this.closed) return undefined;
    if (got instanceof Uint8Array) return encode(got.length, 0, got);
    return encode(-1, got.errno);
  }

  #shutdown(sock: VSocket, how: number): [number, number?] {
    if (how !== Musl.SHUT_RD && how !== Musl.SHUT_WR && how !== Musl.SHUT_RDWR) return [Errno.EINVAL];
    if (how === Musl.SHUT_RDWR) {
      // close() is not proxied in Emscripten 3.1.6, so shutdown(SHUT_RDWR) is how a program closes a socket
      // (as with the reference proxy): the number is freed.
      this.#sockets.delete(sock.fd);
      if (sock.conn) sock.conn.shutdown(true, true);
      destroySocket(sock, true);
      return [0, 0];
    }
    if (sock.udp) return [sock.udp.connected ? 0 : Errno.ENOTCONN];
    if (!sock.conn) return [Errno.ENOTCONN];
    sock.conn.shutdown(how === Musl.SHUT_RD, how === Musl.SHUT_WR);
    return [0, 0];
  }

  #name(sock: VSocket, callId: number, code: number, peer: boolean, room: number): Uint8Array {
    let address: Uint8Array;
    if (peer) {
      if (!sock.conn && !sock.udp?.connected) return encodeResult(callId, code, -1, Errno.ENOTCONN);
      address = peerBytes(sock);
    } else if (sock.udp) {
      address = encodeSockaddr(sock.family === 4 ? "0.0.0.0" : "::", sock.udp.localPort ?? 0);
    } else if (sock.conn) {
      const local = sock.conn.conn.localAddr;
      address = encodeSockaddr(local.hostname, local.port);
    } else if (sock.listener) {
      const local = sock.listener.addr;
      address = encodeSockaddr(local.hostname, local.port);
    } else {
      address = encodeSockaddr(sock.family === 4 ? "0.0.0.0" : "::", 0);
    }
    return encodeAddressReply(callId, 0, 0, address, room);
  }

  #getsockopt(sock: VSocket, callId: number, level: number, name: number): Uint8Array {
    const ok = (value: number) => encodeGetsockoptReply(callId, 0, 0, intOption(value));
    if (level === Musl.SOL_SOCKET && name === Musl.SO_ERROR) {
      const error = sock.error;
      sock.error = 0;
      return ok(error);
    }
    if (level === Musl.SOL_SOCKET && name === Musl.SO_TYPE) {
      return ok(sock.udp ? Musl.SOCK_DGRAM : Musl.SOCK_STREAM);
    }
    if (level === Musl.SOL_SOCKET && name === Musl.SO_ACCEPTCONN) {
      return ok(sock.state === "listening" ? 1 : 0);
    }
    const stored = sock.options.get(`${level}:${name}`);
    if (stored) return encodeGetsockoptReply(callId, 0, 0, stored);
    if (level === Musl.SOL_SOCKET || level === Musl.IPPROTO_TCP) return ok(0);
    return encodeResult(callId, Fn.GETSOCKOPT, -1, Errno.ENOPROTOOPT);
  }

  #setsockopt(sock: VSocket, level: number, name: number, value: Uint8Array): [number, number?] {
    if (level !== Musl.SOL_SOCKET && level !== Musl.IPPROTO_TCP) return [Errno.ENOPROTOOPT];
    // Options are kept (getsockopt reads them back); TCP_NODELAY and SO_KEEPALIVE are applied, the others
    // (buffer sizes, SO_REUSEADDR, timeouts) have no effect on the server's sockets.
    sock.options.set(`${level}:${name}`, value.slice(0, 16));
    applyOptions(sock);
    return [0, 0];
  }

  async #getaddrinfo(call: Extract<PosixCall, { fn: "getaddrinfo" }>): Promise<Uint8Array> {
    const fail = (eai: number, errno = 0) => encodeGetaddrinfoReply(call.callId, eai, errno, "", []);
    const hints = call.hints ?? { flags: 0, family: Musl.AF_UNSPEC, socktype: 0, protocol: 0 };
    if (![Musl.AF_UNSPEC, Musl.AF_INET, Musl.AF_INET6].includes(hints.family as 0)) return fail(Eai.FAMILY);
    if (![0, Musl.SOCK_STREAM, Musl.SOCK_DGRAM].includes(hints.socktype as 0)) return fail(Eai.SOCKTYPE);
    if (call.node === null && call.service === null) return fail(Eai.NONAME);
    const service = parseService(call.service, (hints.flags & Musl.AI_NUMERICSERV) !== 0);
    if ("eai" in service) return fail(service.eai);
    const port = service.port ?? 0;

    let addresses: string[];
    if (call.node === null) {
      const passive = (hints.flags & Musl.AI_PASSIVE) !== 0;
      addresses = passive ? ["0.0.0.0", "::"] : ["127.0.0.1", "::1"];
    } else if (isIpLiteral(call.node)) {
      // Parsing a literal looks nothing up; connect() and bind() check the address itself.
      addresses = [call.node.replace(/^\[|\]$/g, "")];
    } else {
      if ((hints.flags & Musl.AI_NUMERICHOST) !== 0) return fail(Eai.NONAME);
      const looked = await lookUpForProgram(this.#core, this.#options.policy, call.node, service.port);
      if (typeof looked === "number") return fail(looked);
      addresses = looked;
    }
    const wanted = addresses.filter((a) => {
      const v6 = a.includes(":");
      return hints.family === Musl.AF_UNSPEC || (hints.family === Musl.AF_INET6) === v6;
    });
    if (wanted.length === 0) return fail(Eai.NONAME);
    const socktype = hints.socktype || Musl.SOCK_STREAM;
    const entries: AddrinfoEntry[] = wanted.map((a) => ({
      flags: 0,
      family: a.includes(":") ? Musl.AF_INET6 : Musl.AF_INET,
      socktype,
      protocol: hints.protocol || (socktype === Musl.SOCK_STREAM ? Musl.IPPROTO_TCP : Musl.IPPROTO_UDP),
      addr: encodeSockaddr(a, port),
    }));
    const canon = (hints.flags & Musl.AI_CANONNAME) !== 0 ? call.node ?? "" : "";
    return encodeGetaddrinfoReply(call.callId, 0, 0, canon, entries);
  }

  /** A connected socket's connection, metered by the session's limits; idle too long is `ETIMEDOUT`. */
  #newConn(conn: Deno.TcpConn): PosixConn {
    const posix: PosixConn = new PosixConn(
      // max_bandwidth_mbps (shared by the session's sockets) and socket_idle_timeout_secs (per socket).
      this.#core.limit(conn, () => posix.fail(Errno.ETIMEDOUT)),
      this.#options.maxRecvBufferBytes ?? DEFAULT_RECV_BUFFER_BYTES,
    );
    return posix;
  }

  /** A socket's connect or open ends with the socket or the session. */
  #socketSignal(sock: VSocket): AbortSignal {
    return AbortSignal.any([this.#controller.signal, sock.controller.signal]);
  }
}

/** The POSIX proxy endpoint: `/posix` and every path under it. */
export const posixProxyEndpoint: Endpoint = {
  name: "emscripten-posix",
  matches: (url) => url.pathname === POSIX_PATH || url.pathname.startsWith(`${POSIX_PATH}/`),
  upgrade(request, _url, ctx: EndpointContext) {
    const offered = offeredProtocols(request);
    return upgradeToPort(request, (port) => {
      const session = new PosixProxySession(port, {
        policy: ctx.policy,
        serverHost: ctx.serverHost,
        clientIp: ctx.clientIp,
        log: ctx.log,
        core: ctx.core.session({ frontend: "posix", policy: ctx.policy, clientIp: ctx.clientIp }),
      });
      return trackedHandlers(ctx, session);
    }, offered.includes("binary") ? { protocol: "binary" } : {});
  },
};

function remoteOf(conn: Deno.TcpConn): string {
  return formatHostPort(conn.remoteAddr.hostname, conn.remoteAddr.port);
}
