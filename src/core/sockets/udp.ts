/**
 * A policy-checked UDP socket, shared by every front end (Wisp UDP streams, wasmnet's `connect_udp` and
 * `send_to`). Built on `node:dgram` because `Deno.listenDatagram` still needs `--unstable-net`.
 *
 * - The target given to {@link openUdp} is vetted once (policy, then every resolved address, logged once);
 *   {@link UdpSocket.send} goes to that approved address, never through a second lookup.
 * - {@link UdpSocket.sendTo} vets each new destination the same way; approvals are remembered per socket
 *   (at most {@link MAX_REMEMBERED_DESTINATIONS}, oldest forgotten first) so a busy socket does not log or
 *   resolve once per datagram.
 * - Datagrams are never merged or split. One larger than `maxDatagramBytes` is refused (`BAD_REQUEST`), not
 *   truncated; an incoming one larger than that is dropped and counted in {@link UdpSocket.droppedIncoming}.
 * - Sending is rate limited by a token bucket per socket (`maxDatagramsPerSec`, burst of one second's
 *   worth): a datagram over the rate is refused with `LIMIT_EXCEEDED` and dropped.
 * - Incoming datagrams are delivered with their source when it is the target or a source the policy would
 *   let the client send to; from any other source they are dropped here, for every front end (issue 13:
 *   a policy allowing only `127.0.0.1:A` must not let `127.0.0.1:B` talk to the client), and counted in
 *   {@link UdpSocket.droppedRefused}. Nothing is queued inside: each goes straight to `onDatagram`.
 *
 * @module
 */

import dgram from "node:dgram";
import { isIP } from "node:net";
import { toWasmnetError, WasmnetError } from "../errors.ts";
import { type DialContext, formatHostPort, observeFailure, vetTarget } from "./dial.ts";
import { decideTarget } from "../../policy/mod.ts";

/** Callbacks of a UDP socket. */
export interface UdpEvents {
  /** One datagram arrived from `addr:port` (the target or anyone else). */
  onDatagram(data: Uint8Array, addr: string, port: number): void;
  /**
   * The socket failed. Send failures reported by the OS (e.g. ICMP port unreachable) come with code
   * `NETWORK_ERROR` and leave the socket open; a failure of the socket itself closes it first
   * ({@link UdpSocket.isClosed} is then true).
   */
  onError(err: WasmnetError): void;
}

/** Size and rate limits of one socket (normally the policy's `[udp]` section). */
export interface UdpLimits {
  /** Largest datagram sent or received, in bytes. */
  maxDatagramBytes: number;
  /** Datagrams sent per second; 0 means unlimited. */
  maxDatagramsPerSec: number;
}

/** Destinations whose approval a socket remembers for {@link UdpSocket.sendTo}. */
export const MAX_REMEMBERED_DESTINATIONS = 256;

/**
 * Vets `host:port` with the policy, binds an ephemeral socket of the approved address's family and returns
 * it. Throws `POLICY_DENIED`, `RESOLVE_FAILED`, `PERMISSION_DENIED` or `BIND_FAILED`.
 */
export async function openUdp(
  ctx: DialContext,
  op: string,
  host: string,
  port: number,
  events: UdpEvents,
  limits: UdpLimits,
): Promise<UdpSocket> {
  const udp = await observeFailure(ctx, bindUdp(ctx, op, host, port, events, limits));
  if (ctx.observer) {
    ctx.observer.opened("udp");
    udp.whenClosed.then(() => ctx.observer!.closed("udp"));
  }
  return udp;
}

async function bindUdp(
  ctx: DialContext,
  op: string,
  host: string,
  port: number,
  events: UdpEvents,
  limits: UdpLimits,
): Promise<UdpSocket> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new WasmnetError("BAD_REQUEST", `UDP port must be 1-65535, got ${port}`);
  }
  const [address] = await vetTarget(ctx, op, host, port);
  const family = isIP(address) === 6 ? "udp6" : "udp4";
  const socket = dgram.createSocket({ type: family });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, () => {
        socket.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    try {
      socket.close();
    } catch {
      // never bound
    }
    const e = toWasmnetError(err, "BIND_FAILED");
    throw e.code === "PERMISSION_DENIED"
      ? e
      : new WasmnetError("BIND_FAILED", `cannot bind a UDP socket: ${e.message}`);
  }
  return new UdpSocket(socket, ctx, op, { address, port }, events, limits);
}

/** One bound UDP socket with an approved target. Build it with {@link openUdp}. */
export class UdpSocket {
  /** The local port the socket is bound to. */
  readonly localPort: number;
  /** The approved target address and port (an IP, never a name). */
  readonly target: { address: string; port: number };
  /** Incoming datagrams dropped because they were larger than `maxDatagramBytes`. */
  droppedIncoming = 0;
  /** Incoming datagrams dropped because the policy refuses their source. */
  droppedRefused = 0;
  /** Resolves once the socket is closed. */
  readonly whenClosed: Promise<void>;
  readonly #socket: dgram.Socket;
  readonly #ctx: DialContext;
  readonly #op: string;
  readonly #events: UdpEvents;
  readonly #limits: UdpLimits;
  readonly #family: 4 | 6;
  readonly #approved = new Map<string, string>();
  /** Sources already decided (allowed or not), at most {@link MAX_REMEMBERED_DESTINATIONS}. */
  readonly #sources = new Map<string, boolean>();
  #closed = false;
  #tokens: number;
  #refilledAt = performance.now();
  #markClosed!: () => void;

  /** Use {@link openUdp}. */
  constructor(
    socket: dgram.Socket,
    ctx: DialContext,
    op: string,
    target: { address: string; port: number },
    events: UdpEvents,
    limits: UdpLimits,
  ) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#op = op;
    this.target = target;
    this.#events = events;
    this.#limits = limits;
    this.#tokens = limits.maxDatagramsPerSec;
    this.#family = isIP(target.address) === 6 ? 6 : 4;
    this.localPort = socket.address().port;
    this.whenClosed = new Promise((resolve) => (this.#markClosed = resolve));
    socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      if (this.#closed) return;
      if (msg.length > limits.maxDatagramBytes) {
        this.droppedIncoming++;
        return;
      }
      if (!this.#sourceAllowed(rinfo.address, rinfo.port)) {
        this.droppedRefused++;
        return;
      }
      events.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), rinfo.address, rinfo.port);
    });
    socket.on("error", (err: Error) => {
      if (this.#closed) return;
      this.close();
      events.onError(new WasmnetError("NETWORK_ERROR", `UDP socket failed: ${err.message}`));
    });
    socket.on("close", () => this.#markClosed());
    if (ctx.signal.aborted) this.close();
    else ctx.signal.addEventListener("abort", () => this.close(), { once: true });
  }

  /**
   * Whether a datagram from `address:port` may reach the client: the target, or a source the policy allows
   * as a target (a literal address: no lookup, decided on the data path; the last answers are cached).
   */
  #sourceAllowed(address: string, port: number): boolean {
    if (address === this.target.address && port === this.target.port) return true;
    const key = formatHostPort(address, port);
    const known = this.#sources.get(key);
    if (known !== undefined) return known;
    const allowed = decideTarget(this.#ctx.policy, address, port).kind === "allow";
    if (this.#sources.size >= MAX_REMEMBERED_DESTINATIONS) {
      this.#sources.delete(this.#sources.keys().next().value!);
    }
    this.#sources.set(key, allowed);
    return allowed;
  }

  /** True once closed. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Sends one datagram to the target. Returns the refusal (size, rate, closed) instead of sending. */
  send(data: Uint8Array): WasmnetError | undefined {
    const refused = this.#check(data);
    if (refused) return refused;
    this.#transmit(data, this.target.address, this.target.port);
    return undefined;
  }

  /**
   * Vets `host:port` (policy, logged the first time), then sends one datagram there. Throws `POLICY_DENIED`,
   * `RESOLVE_FAILED`, `BAD_REQUEST` (size, or an address of the other IP family), `LIMIT_EXCEEDED` (rate)
   * or `SEND_FAILED` (closed).
   */
  async sendTo(host: string, port: number, data: Uint8Array): Promise<void> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new WasmnetError("BAD_REQUEST", `UDP port must be 1-65535, got ${port}`);
    }
    if (data.length > this.#limits.maxDatagramBytes) throw this.#tooLarge(data);
    const key = formatHostPort(host, port);
    let address = this.#approved.get(key);
    if (address === undefined) {
      const addresses = await vetTarget(this.#ctx, this.#op, host, port);
      address = addresses.find((a) => (isIP(a) === 6 ? 6 : 4) === this.#family);
      if (address === undefined) {
        throw new WasmnetError(
          "BAD_REQUEST",
          `${key} has no IPv${this.#family} address; this socket is IPv${this.#family} (its target's family)`,
        );
      }
      if (this.#approved.size >= MAX_REMEMBERED_DESTINATIONS) {
        this.#approved.delete(this.#approved.keys().next().value!);
      }
      this.#approved.set(key, address);
    }
    const refused = this.#check(data);
    if (refused) throw refused;
    this.#transmit(data, address, port);
  }

  /** Closes the socket. Idempotent; {@link whenClosed} resolves once it is closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch {
      this.#markClosed();
    }
  }

  #check(data: Uint8Array): WasmnetError | undefined {
    if (this.#closed) return new WasmnetError("SEND_FAILED", "UDP socket is closed");
    if (data.length > this.#limits.maxDatagramBytes) return this.#tooLarge(data);
    const rate = this.#limits.maxDatagramsPerSec;
    if (rate === 0) return undefined;
    const now = performance.now();
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#refilledAt) / 1000) * rate);
    this.#refilledAt = now;
    if (this.#tokens < 1) {
      return new WasmnetError(
        "LIMIT_EXCEEDED",
        `more than ${rate} datagrams per second (udp.max_datagrams_per_sec); datagram dropped`,
      );
    }
    this.#tokens -= 1;
    return undefined;
  }

  #tooLarge(data: Uint8Array): WasmnetError {
    return new WasmnetError(
      "BAD_REQUEST",
      `datagram of ${data.length} bytes is larger than ${this.#limits.maxDatagramBytes} (udp.max_datagram_bytes)`,
    );
  }

  #transmit(data: Uint8Array, address: string, port: number): void {
    this.#socket.send(data, port, address, (err: Error | null) => {
      if (err && !this.#closed) {
        this.#events.onError(
          new WasmnetError(
            "NETWORK_ERROR",
            `sending to ${formatHostPort(address, port)} failed: ${err.message}`,
          ),
        );
      }
    });
  }
}
