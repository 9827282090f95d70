/**
 * The UDP and DNS parts of a wasmnet {@link Session}: `connect_udp`, `send`/`send_to`/`close` on a UDP id,
 * and `resolve`. Kept apart so session.ts stays about TCP; the session hands in a few {@link SessionHooks}.
 *
 * UDP socket ids (`connect_udp`):
 * - answered by `udp_bound {id, port}` (the server's local port) once the target is vetted and the socket
 *   bound, or by `denied`/`error`. A UDP socket counts in `max_connections`, and while it is being opened in
 *   `max_pending_connects`.
 * - `send` sends one datagram to the target; `send_to` one datagram to `addr:port`, each new destination
 *   checked by the policy. A refused datagram (too large, over the rate, denied, not yet bound) is answered by
 *   `error`/`denied` on the id and dropped; the socket stays open.
 * - A datagram from the target arrives as `data`; one from any other source as `data_from {addr, port}`,
 *   and only if the policy would allow sending to that source (others are dropped, so hosts the policy
 *   hides cannot reach the browser either). Datagrams are never merged or split.
 * - Incoming datagrams are not queued: when the WebSocket's send buffer is over its bound, they are dropped
 *   (counted in {@link UdpEntry.dropped}), as a congested network would.
 * - `close` answers `closed` at once (also while still opening: the late socket is closed unseen).
 *
 * `resolve {id, name}`: the id is a request id in its own space (it does not occupy a socket slot and may
 * equal an open socket's id, though clients are advised to keep them distinct); it is answered exactly once,
 * by `resolved`, `denied` or `error` (`RESOLVE_FAILED`, `LIMIT_EXCEEDED`). At most `max_pending_connects`
 * lookups per session are in flight.
 *
 * @module
 */

import { toWasmnetError, WasmnetError } from "../../core/errors.ts";
import { decideTarget, normaliseAddress, type Policy } from "../../policy/mod.ts";
import type { Event, Framing, SocketId } from "@wasmnet/protocol";
import type { TableEntry } from "./socket_table.ts";
import type { CoreSession } from "../../core/core.ts";
import type { UdpSocket } from "../../core/sockets/udp.ts";

/** What the UDP and DNS handlers need from their session. */
export interface SessionHooks {
  readonly policy: Policy;
  /** Sends an event (no-op once the session is closed). */
  emit(event: Event, framing: Framing): void;
  /** Sends `error` or `denied` for `err`. */
  reportError(id: SocketId, framing: Framing, err: WasmnetError): void;
  /** The session's handle on the socket core: UDP sockets and lookups are opened through it. */
  readonly core: CoreSession;
  /** False while the WebSocket's send buffer is over its bound. */
  hasRoom(): boolean;
}

/** One UDP socket id of a session. Build it, add it to the table, then {@link UdpEntry.open}. */
export class UdpEntry implements TableEntry {
  readonly kind = "udp" as const;
  /** True until the socket is bound (or failed). */
  connecting = true;
  /** Incoming datagrams dropped: from sources the policy denies, or while the WebSocket was full. */
  dropped = 0;
  readonly #id: SocketId;
  readonly #framing: Framing;
  readonly #hooks: SessionHooks;
  /** Removes this entry from the session's table; false if it was no longer there. */
  readonly #release: () => boolean;
  readonly #controller = new AbortController();
  #socket: UdpSocket | undefined;
  #target = "";

  /** `release` removes the entry from the session's table (false if it was already gone). */
  constructor(id: SocketId, framing: Framing, hooks: SessionHooks, release: () => boolean) {
    this.#id = id;
    this.#framing = framing;
    this.#hooks = hooks;
    this.#release = release;
  }

  /** Vets the target and binds; answers `udp_bound`, or `denied`/`error` and leaves the table. */
  open(host: string, port: number): void {
    const udp = this.#hooks.policy.config.udp;
    this.#hooks.core.openUdp(
      "connect_udp",
      host,
      port,
      {
        onDatagram: (data, addr, fromPort) => this.#onDatagram(data, addr, fromPort),
        onError: (err) => this.#onError(err),
      },
      { maxDatagramBytes: udp.max_datagram_bytes, maxDatagramsPerSec: udp.max_datagrams_per_sec },
      this.#controller.signal,
    ).then(
      (socket) => {
        if (this.#controller.signal.aborted) return socket.close();
        this.#socket = socket;
        this.#target = key(socket.target.address, socket.target.port);
        this.connecting = false;
        this.#hooks.emit({ ev: "udp_bound", id: this.#id, port: socket.localPort }, this.#framing);
      },
      (err) => {
        if (this.#controller.signal.aborted || !this.#release()) return;
        this.#controller.abort();
        this.#hooks.reportError(this.#id, this.#framing, toWasmnetError(err, "BIND_FAILED"));
      },
    );
  }

  /** One datagram to the target. Throws the refusal (the caller answers it with `error`). */
  send(data: Uint8Array): void {
    if (!this.#socket) throw notBound(this.#id);
    const refused = this.#socket.send(data);
    if (refused) throw refused;
  }

  /** One datagram to `addr:port`, vetted by the policy; a refusal is answered on the id. */
  sendTo(addr: string, port: number, data: Uint8Array): void {
    if (!this.#socket) throw notBound(this.#id);
    this.#socket.sendTo(addr, port, data).catch((err) => {
      if (this.#controller.signal.aborted) return;
      this.#hooks.reportError(this.#id, this.#framing, toWasmnetError(err, "SEND_FAILED"));
    });
  }

  /** `close`: closes the socket and answers `closed` at once. */
  close(): void {
    this.#release();
    this.destroy();
    this.#hooks.emit({ ev: "closed", id: this.#id }, this.#framing);
  }

  /** Closes the socket without an event (session shutdown). */
  destroy(): void {
    this.#controller.abort();
    this.#socket?.close();
  }

  #onDatagram(data: Uint8Array, addr: string, port: number): void {
    if (this.#controller.signal.aborted) return;
    const from = key(addr, port);
    const own = from === this.#target;
    if (!this.#hooks.hasRoom() || (!own && decideTarget(this.#hooks.policy, addr, port).kind !== "allow")) {
      this.dropped++;
      return;
    }
    const canonical = normaliseAddress(addr) ?? addr;
    this.#hooks.emit(
      own
        ? { ev: "data", id: this.#id, data }
        : { ev: "data_from", id: this.#id, data, addr: canonical, port },
      this.#framing,
    );
  }

  #onError(err: WasmnetError): void {
    if (this.#controller.signal.aborted) return;
    this.#hooks.reportError(this.#id, this.#framing, err);
    if (this.#socket?.isClosed && this.#release()) {
      this.#controller.abort();
      this.#hooks.emit({ ev: "closed", id: this.#id }, this.#framing);
    }
  }
}

/** The `resolve` requests of one session: bounded in number, each answered once. */
export class ResolveRequests {
  readonly #hooks: SessionHooks;
  readonly #signal: AbortSignal;
  #inFlight = 0;

  /** `signal` is the session's: when it aborts, lookups stop and nothing more is sent. */
  constructor(hooks: SessionHooks, signal: AbortSignal) {
    this.#hooks = hooks;
    this.#signal = signal;
  }

  /** Lookups not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts a lookup answered by `resolved`, `denied` or `error` on `id`. Throws `LIMIT_EXCEEDED` when too many are in flight. */
  start(id: SocketId, name: string, framing: Framing): void {
    const limit = this.#hooks.policy.config.network.max_pending_connects;
    if (this.#inFlight >= limit) {
      throw new WasmnetError(
        "LIMIT_EXCEEDED",
        `this session already has ${limit} lookups in flight (max_pending_connects)`,
      );
    }
    this.#inFlight++;
    this.#hooks.core.resolve(name, this.#signal).then(
      (addrs) => this.#hooks.emit({ ev: "resolved", id, addrs }, framing),
      (err) => this.#hooks.reportError(id, framing, toWasmnetError(err, "RESOLVE_FAILED")),
    ).finally(() => this.#inFlight--);
  }
}

function notBound(id: SocketId): WasmnetError {
  return new WasmnetError("SEND_FAILED", `UDP socket ${id} is not bound yet (wait for udp_bound)`);
}

function key(addr: string, port: number): string {
  return `${normaliseAddress(addr) ?? addr}|${port}`;
}
