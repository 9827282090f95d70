/**
 * The socket core: the one way a front end opens a socket. Every front end (wasmnet's `Session`, Wisp,
 * websockify, Emscripten's POSIX proxy) asks its {@link CoreSession} to connect, bind, accept, open UDP
 * or resolve; the core applies, in one place, the policy decision and its log line (`sockets/`), the
 * session's socket limits (bandwidth and idle, `limits.ts`), a shared quota when the server has one, and
 * tells the server's observer what happened. No front end imports a dialer (`tests/layering_test.ts`
 * checks it).
 *
 * What stays with each front end: its wire format, its table of sockets (ids, fds, streams) and the
 * per-session counts the policy caps (`max_connections`, `max_listeners`, `max_pending_connects`), because
 * each front end refuses at its own moment (a POSIX `socket()` call, a wasmnet `connect`, a Wisp CONNECT)
 * and in its own words (`EMFILE`, `LIMIT_EXCEEDED`, a close reason).
 *
 * Observing costs nothing without an observer: connections are handed back as they are.
 *
 * @module
 */

import type { ErrorCode } from "@wasmnet/protocol";
import { toWasmnetError } from "./errors.ts";
import { SocketLimiter } from "./limits.ts";
import { type DecisionLog, type DecisionRecord, silentLog } from "./log.ts";
import { decideTarget, type Policy } from "../policy/mod.ts";
import { type DialContext, dialTcp, formatHostPort } from "./sockets/dial.ts";
import { defaultResolver } from "./sockets/dns.ts";
import { acceptLoop, bindTcpListener } from "./sockets/listener.ts";
import { resolveForClient } from "./sockets/lookup.ts";
import type { Resolver } from "./sockets/resolver.ts";
import { dialTls } from "./sockets/tls.ts";
import { openUdp, type UdpEvents, type UdpLimits, type UdpSocket } from "./sockets/udp.ts";

export { formatHostPort };

/** What a socket is, for observers and quotas. Accepted connections are `tcp`. */
export type SocketKind = "tcp" | "tls" | "udp" | "listener";

/** Who a core session is, as observers and quotas see it. */
export interface CoreSessionInfo {
  /** The front end: `wasmnet`, `wisp`, `websockify`, `posix`, … */
  readonly frontend: string;
  /** The session id its log lines carry. */
  readonly id: string;
  /** The client's IP. */
  readonly clientIp: string;
}

/**
 * What the core reports about one session's sockets. Every method is optional and is called on the
 * control path (opens, closes, decisions), never per byte: bytes each way, send-buffer pauses and the
 * close code of the WebSocket are reported by the port (`PortObserver` in `websocket.ts`).
 */
export interface SocketObserver {
  /** A socket of `kind` opened (connected, bound, accepted). */
  socketOpened?(kind: SocketKind): void;
  /** A socket of `kind` that {@link socketOpened} reported closed. */
  socketClosed?(kind: SocketKind): void;
  /** A connect of `kind` completed `ms` after it was asked for (lookup and policy included). */
  connected?(kind: SocketKind, ms: number): void;
  /** A decision the policy (or a limit) made, exactly as logged: outcome in `decision`, rule in `rule`. */
  decided?(record: DecisionRecord): void;
  /** Opening a socket of `kind` failed with `code` (refusals included: `POLICY_DENIED`, …). */
  failed?(kind: SocketKind, code: ErrorCode): void;
  /**
   * The session ended. A socket that drains after it (websockify writes what the browser sent before
   * closing) reports its {@link socketClosed} later.
   */
  sessionClosed?(): void;
}

/** The server's observer: gives each new core session the {@link SocketObserver} that watches it. */
export interface CoreObserver {
  sessionOpened(session: CoreSessionInfo): SocketObserver | undefined;
}

/**
 * A quota shared beyond one session (e.g. across replicas): asked before each outbound socket (TCP, TLS,
 * UDP) opens, told when it closes. `acquire` throws (a `WasmnetError`, normally `LIMIT_EXCEEDED`) to
 * refuse. Listeners and accepted connections are not asked: a bind answers at once, and an accept is
 * capped by the session's `max_connections`.
 */
export interface SocketQuota {
  acquire(session: CoreSessionInfo, kind: SocketKind): void | Promise<void>;
  release(session: CoreSessionInfo, kind: SocketKind): void;
}

/** What the server shares with every session: where decisions go, name resolution, observer, quota. */
export interface SocketCoreOptions {
  log?: DecisionLog;
  /** One resolver (DNS cache) for every session; default: one per session from its policy. */
  resolver?: Resolver;
  /** The interface the server listens on (the default bind address). */
  serverHost?: string;
  observer?: CoreObserver;
  quota?: SocketQuota;
}

/** What a front end tells the core about a new session. */
export interface CoreSessionOptions {
  frontend: string;
  /** The session's policy (narrowed by its token, if any). */
  policy: Policy;
  clientIp: string;
  /** The session id for logs; default: 8 random hex digits. */
  id?: string;
  /** Closing it closes the core session (its limiter's waits). */
  signal?: AbortSignal;
}

/** The per-server socket core. One per server; {@link session} makes the handle each session uses. */
export class SocketCore {
  readonly log: DecisionLog;
  readonly resolver: Resolver | undefined;
  readonly serverHost: string;
  readonly observer: CoreObserver | undefined;
  readonly quota: SocketQuota | undefined;
  readonly #options: SocketCoreOptions;

  constructor(options: SocketCoreOptions = {}) {
    this.#options = options;
    this.log = options.log ?? silentLog;
    this.resolver = options.resolver;
    this.serverHost = options.serverHost ?? "0.0.0.0";
    this.observer = options.observer;
    this.quota = options.quota;
  }

  /** The same core with decisions going to `log` (the server meters each upgrade's own log). */
  withLog(log: DecisionLog): SocketCore {
    return new SocketCore({ ...this.#options, log });
  }

  /** The handle a new session opens its sockets through. */
  session(options: CoreSessionOptions): CoreSession {
    return new CoreSession(this, options);
  }

  /**
   * The policy's verdict on `host:port` before any lookup, for a front end that refuses before upgrading
   * (websockify answers 403). A denial is logged (under session `op`: there is none yet) and its reason returned;
   * undefined when the target may be tried (it is vetted again, fully, when the session connects).
   */
  refusesEarly(policy: Policy, clientIp: string, op: string, host: string, port: number): string | undefined {
    const verdict = decideTarget(policy, host, port);
    if (verdict.kind !== "deny") return undefined;
    this.log({
      session: op,
      client: clientIp,
      op,
      target: formatHostPort(host, port),
      decision: "deny",
      rule: verdict.decision.rule,
      reason: verdict.decision.reason,
    });
    return verdict.decision.reason;
  }
}

/** What a front end's own options may carry when it is used as a library, without a server. */
export interface StandaloneCoreOptions {
  /** The handle the server made; when set, the rest is not used. */
  core?: CoreSession;
  policy: Policy;
  clientIp: string;
  id?: string;
  log?: DecisionLog;
  resolver?: Resolver;
  serverHost?: string;
}

/**
 * The session's handle: the one the server passed in `options.core`, or else one on a core of its own made
 * from the options (library use: `new Session(port, { policy, … })`), closing with `signal`.
 */
export function coreSessionOf(
  frontend: string,
  options: StandaloneCoreOptions,
  signal: AbortSignal,
): CoreSession {
  if (options.core) return options.core;
  const core = new SocketCore({
    log: options.log,
    resolver: options.resolver,
    serverHost: options.serverHost,
  });
  return core.session({
    frontend,
    policy: options.policy,
    clientIp: options.clientIp,
    id: options.id,
    signal,
  });
}

/** Options of {@link CoreSession.connect}. */
export interface ConnectOptions {
  /** Aborts the connect (socket closed, session gone); default: the session's. */
  signal?: AbortSignal;
  /** Default: the policy's `connection_timeout_secs`. */
  timeoutMs?: number;
  /** TLS done by the server (`connect_tls`). */
  tls?: boolean;
}

/**
 * One session's handle on the core: every socket the session opens, it opens here. Close it with the
 * session ({@link close}).
 */
export class CoreSession implements CoreSessionInfo {
  readonly frontend: string;
  readonly id: string;
  readonly clientIp: string;
  readonly policy: Policy;
  /** The interface the server listens on (the default bind address). */
  readonly serverHost: string;
  /** Bandwidth bucket and socket idle timers of this session (`limits.ts`). */
  readonly limiter: SocketLimiter;
  readonly #core: SocketCore;
  readonly #resolver: Resolver;
  readonly #log: DecisionLog;
  readonly #observer: SocketObserver | undefined;
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal;

  /** Use {@link SocketCore.session}. */
  constructor(core: SocketCore, options: CoreSessionOptions) {
    this.#core = core;
    this.frontend = options.frontend;
    this.id = options.id ?? crypto.randomUUID().slice(0, 8);
    this.clientIp = options.clientIp;
    this.policy = options.policy;
    this.serverHost = core.serverHost;
    this.#resolver = core.resolver ?? defaultResolver(options.policy);
    this.#signal = options.signal
      ? AbortSignal.any([options.signal, this.#controller.signal])
      : this.#controller.signal;
    this.limiter = SocketLimiter.forPolicy(options.policy, this.#signal);
    this.#observer = core.observer?.sessionOpened(this);
    const observer = this.#observer;
    this.#log = observer?.decided ? (r) => (observer.decided!(r), core.log(r)) : core.log;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Aborts when the session closes. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /**
   * Vets `host:port` with the policy and connects (TCP, or TLS done by the server), within the policy's
   * connect timeout. Throws `POLICY_DENIED`, `PERMISSION_DENIED`, `RESOLVE_FAILED`, `CONNECT_TIMEOUT`,
   * `CONNECT_FAILED`, `TLS_FAILED` or a quota's refusal. `op` names the request in the log.
   */
  connect(
    op: string,
    host: string,
    port: number,
    options?: ConnectOptions & { tls?: false },
  ): Promise<Deno.TcpConn>;
  connect(
    op: string,
    host: string,
    port: number,
    options: ConnectOptions,
  ): Promise<Deno.TcpConn | Deno.TlsConn>;
  async connect(
    op: string,
    host: string,
    port: number,
    options: ConnectOptions = {},
  ): Promise<Deno.TcpConn | Deno.TlsConn> {
    const kind: SocketKind = options.tls ? "tls" : "tcp";
    const started = performance.now();
    const release = await this.#acquire(kind);
    try {
      const ctx = this.#dialContext(options.signal ?? this.#signal);
      const timeoutMs = options.timeoutMs ?? this.policy.config.network.connection_timeout_secs * 1000;
      const { conn } = options.tls
        ? await dialTls(ctx, op, host, port, timeoutMs)
        : await dialTcp(ctx, op, host, port, timeoutMs);
      this.#observer?.connected?.(kind, performance.now() - started);
      return this.#opened<Deno.TcpConn | Deno.TlsConn>(kind, conn, release);
    } catch (err) {
      release?.();
      this.#failed(kind, err, "CONNECT_FAILED");
      throw err;
    }
  }

  /**
   * Checks and binds a TCP listener (`addr` 0 picks a port `bind_ports` allows). Throws `POLICY_DENIED`,
   * `PERMISSION_DENIED` or `BIND_FAILED`. Closing the listener never closes what it accepted.
   */
  bindListener(addr: string, port: number): Deno.TcpListener {
    try {
      const listener = bindTcpListener(this.#dialContext(this.#signal), this.serverHost, addr, port);
      return this.#opened("listener", listener, undefined);
    } catch (err) {
      this.#failed("listener", err, "BIND_FAILED");
      throw err;
    }
  }

  /** Accepts on `listener` until it closes; each connection ({@link accepted}) goes to `onConnection`. */
  acceptLoop(listener: Deno.TcpListener, onConnection: (conn: Deno.TcpConn) => void): Promise<void> {
    return acceptLoop(listener, (conn) => onConnection(this.accepted(conn)));
  }

  /** A connection a listener of this session accepted, now counted (observed) as a `tcp` socket. */
  accepted(conn: Deno.TcpConn): Deno.TcpConn {
    return this.#opened("tcp", conn, undefined);
  }

  /**
   * Vets `host:port` and opens a UDP socket aimed at it (later `sendTo` destinations are vetted by the
   * socket). Throws `POLICY_DENIED`, `RESOLVE_FAILED`, `PERMISSION_DENIED`, `BIND_FAILED` or `BAD_REQUEST`.
   */
  async openUdp(
    op: string,
    host: string,
    port: number,
    events: UdpEvents,
    limits: UdpLimits,
    signal: AbortSignal = this.#signal,
  ): Promise<UdpSocket> {
    const release = await this.#acquire("udp");
    try {
      const socket = await openUdp(this.#dialContext(signal), op, host, port, events, limits);
      if (this.#observer || release) {
        this.#observer?.socketOpened?.("udp");
        socket.whenClosed.then(() => {
          release?.();
          this.#observer?.socketClosed?.("udp");
        });
      }
      return socket;
    } catch (err) {
      release?.();
      this.#failed("udp", err, "BIND_FAILED");
      throw err;
    }
  }

  /** The addresses `name` resolves to that the policy would let this session reach (`resolve`, getaddrinfo). */
  resolve(name: string, signal: AbortSignal = this.#signal): Promise<string[]> {
    return resolveForClient(this.#dialContext(signal), name);
  }

  /**
   * Looks `name` up with the session's resolver and nothing else: for a front end that applies the policy
   * to the answer itself (Emscripten's `getaddrinfo`, which checks at the program's own service port) and
   * logs its decision through {@link decided}. Prefer {@link resolve}.
   */
  lookup(name: string, signal: AbortSignal = this.#signal): Promise<string[]> {
    return this.#resolver(name, signal);
  }

  /**
   * `conn` under the session's bandwidth and idle limits: `onIdle` is called with `IDLE_TIMEOUT` when it
   * sits idle too long (the caller destroys its stream). `conn` itself when no limit is configured.
   */
  limit<C extends Deno.Conn>(conn: C, onIdle: Parameters<SocketLimiter["wrap"]>[1]): C {
    return this.limiter.wrap(conn, onIdle);
  }

  /** Logs a decision a front end makes itself (an accept refused at a cap), through the observer too. */
  decided(record: Omit<DecisionRecord, "session" | "client">): void {
    this.#log({ session: this.id, client: this.clientIp, ...record });
  }

  /** Ends the session: waits on its limits are released and the observer told. Idempotent. */
  close(): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort();
    this.limiter.close();
    this.#observer?.sessionClosed?.();
  }

  #dialContext(signal: AbortSignal): DialContext {
    return {
      policy: this.policy,
      resolver: this.#resolver,
      log: this.#log,
      session: this.id,
      client: this.clientIp,
      // Every caller passes a signal the session's close aborts (its own, or a socket's that the front end
      // aborts on close), so no per-socket AbortSignal.any (which would stay registered on the session's).
      signal,
    };
  }

  async #acquire(kind: SocketKind): Promise<(() => void) | undefined> {
    const quota = this.#core.quota;
    if (!quota) return undefined;
    await quota.acquire(this, kind);
    return () => quota.release(this, kind);
  }

  #failed(kind: SocketKind, err: unknown, fallback: ErrorCode): void {
    this.#observer?.failed?.(kind, toWasmnetError(err, fallback).code);
  }

  /**
   * Reports `resource` opened and, when someone watches, its first `close()` (the release runs then too).
   * The close is observed on the instance itself, so whatever wraps it later (limits) still reaches it.
   */
  #opened<R extends { close(): void }>(kind: SocketKind, resource: R, release: (() => void) | undefined): R {
    const observer = this.#observer;
    if (!observer && !release) return resource;
    observer?.socketOpened?.(kind);
    const close = resource.close.bind(resource);
    let closed = false;
    resource.close = () => {
      if (!closed) {
        closed = true;
        release?.();
        observer?.socketClosed?.(kind);
      }
      close();
    };
    return resource;
  }
}
