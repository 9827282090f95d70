/**
 * The server's accept loop and the life of a connection until it is a WebSocket, so that no client can
 * make the process hold more than its share (Deno.serve hides its accept loop: one EMFILE from `accept`
 * ends it with an uncaught rejection, and it has no header timeout; docs/security.md):
 *
 * - `accept` failing with EMFILE/ENFILE (out of file descriptors) backs off (10 ms doubling to 1 s), sheds
 *   the oldest connection still sending its head, and goes on; one line on stderr per 10 s at most;
 * - a connection must finish its request head within `header_timeout_secs`, in at most 16 KiB;
 * - connections not yet upgraded: at most `max_handshakes` on the server (more: 503) and
 *   `max_handshakes_per_ip` per peer address (an IPv6 one by its /64; more: 429; trusted proxies are exempt, the global cap holds);
 * - upgrades go to the server's own WebSocket ({@link RawWebSocket}), which bounds messages and replies.
 *
 * @module
 */

import { installUpgrader, type UpgradedSocket, type UpgradeRequestOptions } from "../core/websocket.ts";
import { sleep } from "../core/limits.ts";
import { acceptKey } from "./ws_frames.ts";
import { clientKey } from "./admission.ts";
import { RawWebSocket } from "./raw_websocket.ts";
import {
  encodeResponse,
  isHeadError,
  readRequestHead,
  statusResponse,
  toRequest,
  writeAll,
} from "./http1.ts";

/** Bounds of the connections before their upgrade, and of the WebSockets after. */
export interface ConnectionLimits {
  headerTimeoutMs: number;
  maxHandshakes: number;
  maxHandshakesPerIp: number;
  /** Peers exempt from the per-IP handshake cap (trusted reverse proxies). */
  isTrustedProxy(ip: string): boolean;
  sendTimeoutMs: number;
  /** Send-queue bytes above which a WebSocket stops reading its client. */
  readPauseBytes: number;
  /** A client throttled this long by its unread replies is closed (4429). */
  floodCloseMs: number;
}

/** What the request handler gets besides the request (the shape of `Deno.ServeHandlerInfo`). */
export type Handler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Counts kept by the accept loop (tests, metrics). */
export interface AcceptStats {
  /** Connections not yet upgraded or answered. */
  handshakes: number;
  /** Times `accept` failed for lack of file descriptors. */
  fdExhausted: number;
  /** Connections dropped to make room (EMFILE) or refused over a cap. */
  shed: number;
}

const MAX_BACKOFF_MS = 1000;
/** A handshake younger than this is never shed for lack of descriptors. */
const SHED_MIN_AGE_MS = 1000;
const WARN_EVERY_MS = 10_000;

/** True for the errors `accept` gives when the process or system is out of file descriptors. */
export function isFdExhaustion(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /os error (24|23)\b|EMFILE|ENFILE|too many open files/i.test(text);
}

/**
 * Accepts connections from `listener` until `signal` aborts, answering each with `handler`. Resolves when
 * the loop has stopped (the listener is closed by the caller). Never rejects.
 */
export class AcceptLoop {
  readonly stats: AcceptStats = { handshakes: 0, fdExhausted: 0, shed: 0 };
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #handler: Handler;
  readonly #limitsOf: () => ConnectionLimits;
  #limits: ConnectionLimits;
  readonly #signal: AbortSignal;
  /** Connections still in their handshake with their peer IP and accept time, oldest first. */
  readonly #handshaking = new Map<Deno.Conn, { ip: string; at: number }>();
  readonly #perIp = new Map<string, number>();
  /** Upgraded sockets, closed when the signal aborts and they have not closed themselves. */
  readonly #open = new Set<Deno.Conn>();
  #lastWarning = -Infinity;
  readonly done: Promise<void>;
  /** Told the status of every connection refused before its request reached the handler (metrics). */
  onRefuse: ((status: number) => void) | undefined;

  constructor(
    listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
    handler: Handler,
    limits: () => ConnectionLimits,
    signal: AbortSignal,
  ) {
    this.#listener = listener;
    this.#handler = handler;
    this.#limitsOf = limits;
    this.#limits = limits();
    this.#signal = signal;
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    let backoff = 0;
    while (!this.#signal.aborted) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
        backoff = 0;
      } catch (err) {
        if (this.#signal.aborted || err instanceof Deno.errors.BadResource) break;
        if (isFdExhaustion(err)) {
          this.stats.fdExhausted++;
          this.#warn(`out of file descriptors (${(err as Error).message}); shedding, backing off`);
          this.#shedOldest();
        }
        backoff = Math.min(Math.max(10, backoff * 2), MAX_BACKOFF_MS);
        await sleep(backoff, this.#signal);
        continue;
      }
      this.#admit(conn);
    }
    for (const conn of [...this.#handshaking.keys(), ...this.#open]) closeQuietly(conn);
  }

  #warn(message: string): void {
    const now = performance.now();
    if (now - this.#lastWarning < WARN_EVERY_MS) return;
    this.#lastWarning = now;
    console.error(`wasmnet-server: ${message}`);
  }

  /**
   * Out of descriptors: drops the oldest handshake, if it has had {@link SHED_MIN_AGE_MS} (Linux fails
   * `accept` with EMFILE even with nothing queued, so a fresh handshake must not pay for it).
   */
  #shedOldest(): void {
    const oldest = this.#handshaking.entries().next();
    if (oldest.done || performance.now() - oldest.value[1].at < SHED_MIN_AGE_MS) return;
    this.stats.shed++;
    closeQuietly(oldest.value[0]);
  }

  #admit(conn: Deno.TcpConn): void {
    // Replies are written as they come (`connected`, then the first `data`, ...): with Nagle's algorithm on,
    // a small write waits for the ACK of the one before, which the client delays by up to 40 ms. Deno.serve
    // set TCP_NODELAY for us; an own accept loop must. (Measured from a page: 19 connects/s without, ~900 with.)
    try {
      conn.setNoDelay(true);
    } catch {
      // already closed: the handshake below fails on its own
    }
    const peer = conn.remoteAddr.hostname;
    // Counted as admission counts sessions: an IPv6 peer by its /64 (one host commonly holds all of it).
    const ip = clientKey(peer);
    const limits = this.#limits = this.#limitsOf();
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (this.#handshaking.size >= limits.maxHandshakes) {
      return this.#refuse(conn, 503, "too many connections in their handshake (max_handshakes)");
    }
    if (fromIp >= limits.maxHandshakesPerIp && !limits.isTrustedProxy(peer)) {
      return this.#refuse(conn, 429, "too many connections from this address (max_handshakes_per_ip)");
    }
    this.#handshaking.set(conn, { ip, at: performance.now() });
    this.#perIp.set(ip, fromIp + 1);
    this.stats.handshakes = this.#handshaking.size;
    const timer = setTimeout(() => closeQuietly(conn), limits.headerTimeoutMs);
    this.#handshake(conn, () => {
      clearTimeout(timer);
      this.#release(conn);
    }).catch(() => closeQuietly(conn)).finally(() => {
      clearTimeout(timer);
      this.#release(conn);
    });
  }

  /** The connection is no longer in its handshake (upgraded, answered or gone). Idempotent. */
  #release(conn: Deno.Conn): void {
    const ip = this.#handshaking.get(conn)?.ip;
    if (ip === undefined) return;
    this.#handshaking.delete(conn);
    const left = (this.#perIp.get(ip) ?? 1) - 1;
    if (left > 0) this.#perIp.set(ip, left);
    else this.#perIp.delete(ip);
    this.stats.handshakes = this.#handshaking.size;
  }

  #refuse(conn: Deno.Conn, status: number, reason: string): void {
    this.stats.shed++;
    this.onRefuse?.(status);
    // Best effort and bounded: one small write, then the connection is closed whatever happened.
    const timer = setTimeout(() => closeQuietly(conn), 1000);
    writeAll(conn, statusResponse(status, reason)).catch(() => {}).finally(() => {
      clearTimeout(timer);
      closeQuietly(conn);
    });
  }

  async #handshake(conn: Deno.TcpConn, upgraded: () => void): Promise<void> {
    const read = await readRequestHead(conn);
    if (read === null) return closeQuietly(conn);
    if (isHeadError(read)) {
      this.onRefuse?.(read.status);
      await writeAll(conn, statusResponse(read.status, read.reason)).catch(() => {});
      return closeQuietly(conn);
    }
    const local = conn.localAddr;
    let request: Request;
    try {
      request = toRequest(read.head, hostPort(local));
    } catch {
      // A method `Request` refuses to carry (CONNECT, TRACE, TRACK): a plain 400, like any bad head.
      this.onRefuse?.(400);
      await writeAll(conn, statusResponse(400, "method not accepted")).catch(() => {});
      return closeQuietly(conn);
    }
    let socket: RawWebSocket | undefined;
    let answer: { protocol?: string; accept: string } | undefined;
    const upgrader = (options: UpgradeRequestOptions): UpgradedSocket => {
      const key = request.headers.get("sec-websocket-key") ?? "";
      const invalid = upgradeProblem(request);
      if (invalid) throw invalid;
      answer = { protocol: options.protocol, accept: key };
      socket = new RawWebSocket(conn, read.rest, {
        maxMessageBytes: options.maxMessageBytes,
        readPauseBytes: this.#limits.readPauseBytes,
        floodCloseMs: this.#limits.floodCloseMs,
        sendTimeoutMs: this.#limits.sendTimeoutMs,
      });
      return socket;
    };
    installUpgrader(request, upgrader);
    let response: Response;
    const completed = Promise.withResolvers<void>();
    try {
      response = await this.#handler(request, { remoteAddr: conn.remoteAddr, completed: completed.promise });
    } catch (err) {
      // Admission ran first (origin, caps, token: their own statuses); a malformed upgrade is a plain 400.
      response = err instanceof InvalidUpgrade
        ? err.response()
        : new Response("wasmnet: internal error\n", { status: 500 });
    }
    if (socket && answer) {
      const ws = socket;
      try {
        const lines = [
          "HTTP/1.1 101 Switching Protocols",
          "upgrade: websocket",
          "connection: Upgrade",
          `sec-websocket-accept: ${await acceptKey(answer.accept)}`,
        ];
        if (answer.protocol) lines.push(`sec-websocket-protocol: ${answer.protocol}`);
        await writeAll(conn, new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
      } catch (err) {
        // The front end already set its session up on this socket: it must hear the end, or the session
        // (and its admission slot) would be held forever.
        ws.abandon();
        completed.resolve();
        throw err;
      }
      upgraded();
      this.#open.add(conn);
      const onclose = ws.onclose;
      ws.onclose = (code) => {
        this.#open.delete(conn);
        completed.resolve();
        onclose?.(code);
      };
      ws.start();
      return;
    }
    await writeAll(conn, await encodeResponse(response, request.method)).catch(() => {});
    completed.resolve();
    closeQuietly(conn);
  }
}

/** Thrown by the upgrader for a request that is not a well-formed WebSocket upgrade. */
class InvalidUpgrade extends Error {
  constructor(readonly status: 400 | 426) {
    super("bad WebSocket upgrade");
  }

  /** 400, or 426 naming the version spoken (RFC 6455 §4.4), as Deno's upgrade refuses these too. */
  response(): Response {
    if (this.status === 426) {
      return new Response("wasmnet: WebSocket version 13 only\n", {
        status: 426,
        headers: { "sec-websocket-version": "13" },
      });
    }
    return new Response("wasmnet: bad WebSocket upgrade (GET, Connection: Upgrade, a 16-byte key)\n", {
      status: 400,
    });
  }
}

/**
 * Why `request` is not a well-formed WebSocket upgrade (RFC 6455 §4.2.1), or undefined: GET, a Connection
 * header with the `upgrade` token, version 13, a base64 16-byte key.
 */
function upgradeProblem(request: Request): InvalidUpgrade | undefined {
  const headers = request.headers;
  const key = headers.get("sec-websocket-key") ?? "";
  const connection = (headers.get("connection") ?? "").split(",").map((t) => t.trim().toLowerCase());
  if (request.method !== "GET" || !connection.includes("upgrade") || !/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    return new InvalidUpgrade(400);
  }
  if (headers.get("sec-websocket-version") !== "13") return new InvalidUpgrade(426);
  return undefined;
}

function hostPort(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `${host}:${addr.port}`;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** What {@link probeOpenFiles} found. */
export interface OpenFileRoom {
  /** The soft limit, when /proc could be read (it needs --allow-all). */
  limit?: number;
  /** How many more descriptors could be opened right now (probed by opening a file), up to the probe's cap. */
  room: number;
  /** True when the probe stopped at its cap, not at the limit. */
  capped: boolean;
}

/**
 * How many file descriptors this process can still open: the soft `RLIMIT_NOFILE` from /proc/self/limits
 * when readable, else found by opening `probePath` (a file the process may read: the policy file, or
 * /dev/null) until that fails with EMFILE, at most `cap` times, all closed at once. Deno has no getrlimit
 * and reads /proc only with --allow-all; files, unlike listeners, take no ports another process might be
 * about to bind. Null when neither works.
 */
export function probeOpenFiles(probePath = "/dev/null", cap = 4096): OpenFileRoom | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (m) {
      const limit = m[1] === "unlimited" ? Infinity : Number(m[1]);
      return { limit, room: limit, capped: false };
    }
  } catch {
    // no permission, or not Linux: probe instead
  }
  const held: Deno.FsFile[] = [];
  try {
    while (held.length < cap) held.push(Deno.openSync(probePath, { read: true }));
    return { room: cap, capped: true };
  } catch (err) {
    return isFdExhaustion(err) ? { room: held.length, capped: false } : null;
  } finally {
    for (const f of held) f.close();
  }
}
