/**
 * The socket core: the one way a front end opens a socket. Every front end (wasmnet's `Session`, Wisp,
 * websockify, Emscripten's POSIX proxy) asks its {@link CoreSession} to connect, bind, accept, open UDP
 * or resolve; the core applies, in one place, the policy decision and its log line (`sockets/`), the
 * session's socket limits (bandwidth and idle, `limits.ts`, with the client address's shared budget when
 * capped), a shared quota when the server has one, and the server's observer (`observer.ts`: each socket
 * opened, connected, failed and closed, by kind). No front end imports a dialer (`tests/layering_test.ts`
 * checks it).
 *
 * What stays with each front end: its wire format, its table of sockets (ids, fds, streams) and the
 * per-session counts the policy caps (`max_connections`, `max_listeners`, `max_pending_connects`), because
 * each front end refuses at its own moment (a POSIX `socket()` call, a wasmnet `connect`, a Wisp CONNECT)
 * and in its own words (`EMFILE`, `LIMIT_EXCEEDED`, a close reason).
 *
 * Without an observer or a quota, connections are handed back as the runtime made them.
 *
 * @module
 */

import { type BandwidthBudget, SocketLimiter } from "./limits.ts";
import { type DecisionLog, type DecisionRecord, silentLog } from "./log.ts";
import { observeClose, type SocketKind, type SocketObserver } from "./observer.ts";
import { decideTarget, type Policy } from "../policy/mod.ts";
import { type DialContext, dialTcp, formatHostPort } from "./sockets/dial.ts";
import { defaultResolver } from "./sockets/dns.ts";
import { acceptLoop, bindTcpListener } from "./sockets/listener.ts";
import { resolveForClient } from "./sockets/lookup.ts";
import type { Resolver } from "./sockets/resolver.ts";
import { dialTls } from "./sockets/tls.ts";
import { openUdp, type UdpEvents, type UdpLimits, type UdpSocket } from "./sockets/udp.ts";

export { formatHostPort };
export type { SocketKind, SocketObserver };

/** Who a core session is, as a quota sees it. */
export interface CoreSessionInfo {
  /** The front end: `wasmnet`, `wisp`, `websockify`, `posix`, … */
  readonly frontend: string;
  /** The session id its log lines carry. */
  readonly id: string;
  /** The client's IP. */
  readonly clientIp: string;
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
  /** Told about every socket (`observer.ts`; the server's metrics implement it). */
  observer?: SocketObserver;
  quota?: SocketQuota;
  /** The bandwidth the client address of this upgrade shares with its other sessions, if capped. */
  clientBudget?: BandwidthBudget;
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

/** The socket core of a server. {@link session} makes the handle each session opens its sockets through. */
export class SocketCore {
  readonly log: DecisionLog;
  readonly resolver: Resolver | undefined;
  readonly serverHost: string;
  readonly observer: SocketObserver | undefined;
  readonly quota: SocketQuota | undefined;
  readonly clientBudget: BandwidthBudget | undefined;
  readonly #options: SocketCoreOptions;

  constructor(options: SocketCoreOptions = {}) {
    this.#options = options;
    this.log = options.log ?? silentLog;
    this.resolver = options.resolver;
    this.serverHost = options.serverHost ?? "0.0.0.0";
    this.observer = options.observer;
    this.quota = options.quota;
    this.clientBudget = options.clientBudget;
  }

  /**
   * This core as one upgrade sees it: the session's own observer (the server meters each session's
   * sockets), the client address's shared bandwidth, another log. What is left undefined stays the
   * server's, as do the resolver and the quota.
   */
  forUpgrade(
    options: { log?: DecisionLog; observer?: SocketObserver; clientBudget?: BandwidthBudget },
  ): SocketCore {
    const own = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    return new SocketCore({ ...this.#options, ...own });
  }

  /** The handle a new session opens its sockets through. */
  session(options: CoreSessionOptions): CoreSession {
    return new CoreSession(this, options);
  }

  /**
   * The policy's verdict on `host:port` before any lookup, for a front end that refuses before upgrading
   * (websockify answers 403). A denial is logged (under session `op`: there is none yet) and its reason
   * returned; undefined when the target may be tried (it is vetted again, fully, when the session connects).
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
  /** Told about every socket (`observer.ts`). */
  observer?: SocketObserver;
  /** The bandwidth this client address shares with its other sessions (`max_bandwidth_mbps_per_ip`). */
  clientBudget?: BandwidthBudget;
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
    observer: options.observer,
    clientBudget: options.clientBudget,
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
  /** Bandwidth bucket(s) and socket idle timers of this session (`limits.ts`). */
  readonly limiter: SocketLimiter;
  readonly #core: SocketCore;
  readonly #resolver: Resolver;
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
    this.limiter = SocketLimiter.forPolicy(options.policy, this.#signal, core.clientBudget);
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
    const release = await this.#acquire(options.tls ? "tls" : "tcp");
    try {
      const ctx = this.#dialContext(options.signal ?? this.#signal);
      const timeoutMs = options.timeoutMs ?? this.policy.config.network.connection_timeout_secs * 1000;
      const { conn } = options.tls
        ? await dialTls(ctx, op, host, port, timeoutMs)
        : await dialTcp(ctx, op, host, port, timeoutMs);
      return releasedOnClose(conn, release);
    } catch (err) {
      release?.();
      throw err;
    }
  }

  /**
   * Checks and binds a TCP listener (port 0 picks one `bind_ports` allows). Throws `POLICY_DENIED`,
   * `PERMISSION_DENIED` or `BIND_FAILED`. Closing the listener never closes what it accepted.
   */
  bindListener(addr: string, port: number): Deno.TcpListener {
    return bindTcpListener(this.#dialContext(this.#signal), this.serverHost, addr, port);
  }

  /** Accepts on `listener` until it closes; each connection ({@link accepted}) goes to `onConnection`. */
  acceptLoop(listener: Deno.TcpListener, onConnection: (conn: Deno.TcpConn) => void): Promise<void> {
    return acceptLoop(listener, (conn) => onConnection(this.accepted(conn)));
  }

  /** A connection a listener of this session accepted, reported to the observer as a `tcp` socket. */
  accepted(conn: Deno.TcpConn): Deno.TcpConn {
    return observeClose(this.#core.observer, "tcp", conn);
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
      if (release) socket.whenClosed.then(release);
      return socket;
    } catch (err) {
      release?.();
      throw err;
    }
  }

  /** The addresses `name` resolves to that the policy would let this session reach (`resolve`). */
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

  /** Logs a decision a front end makes itself (an accept refused at a cap, a Wisp password). */
  decided(record: Omit<DecisionRecord, "session" | "client">): void {
    this.#core.log({ session: this.id, client: this.clientIp, ...record });
  }

  /** Ends the session: waits on its limits are released. Idempotent. */
  close(): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort();
    this.limiter.close();
  }

  #dialContext(signal: AbortSignal): DialContext {
    return {
      policy: this.policy,
      resolver: this.#resolver,
      log: this.#core.log,
      session: this.id,
      client: this.clientIp,
      // Every caller passes a signal the session's close aborts (its own, or a socket's that the front end
      // aborts on close), so no per-socket AbortSignal.any (which would stay registered on the session's).
      signal,
      observer: this.#core.observer,
    };
  }

  async #acquire(kind: SocketKind): Promise<(() => void) | undefined> {
    const quota = this.#core.quota;
    if (!quota) return undefined;
    await quota.acquire(this, kind);
    return () => quota.release(this, kind);
  }
}

/** `conn`, whose first `close()` also runs `release` (a quota's), when there is one. */
function releasedOnClose<C extends { close(): void }>(conn: C, release: (() => void) | undefined): C {
  if (!release) return conn;
  const close = conn.close.bind(conn);
  let open = true;
  conn.close = () => {
    if (open) (open = false), release();
    close();
  };
  return conn;
}
