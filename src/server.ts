/**
 * HTTP side of wasmnet: answers plain requests, refuses early (before the upgrade) what must be refused,
 * upgrades WebSockets and hands each one to its front end (src/frontends/). The server owns its sessions: when its
 * signal aborts, every session is closed with code 1001 and every socket under it is closed.
 *
 * Longer than 500 lines because `Server` and its `ServerBuilder` are one module: the builder makes a
 * Server and `Server.builder()` returns a builder, so two modules would import each other. What the server
 * does for operators (drain, reload, metering, the admin listener) lives in src/ops/.
 *
 * @module
 */

import { warmAllocator } from "./core/allocator.ts";
import { clientIpOf, notWebSocket } from "./http/upgrade.ts";
import { wasmnetEndpoint } from "./frontends/wasmnet/endpoint.ts";
import { Admission } from "./http/admission.ts";
import type { Closable, Endpoint, EndpointContext } from "./frontends/endpoint.ts";
import { EXTRA_ENDPOINTS } from "./http/endpoints.ts";
import { type DecisionLog, jsonLineLog, rateLimitedLog, withReplica } from "./core/log.ts";
import { loadPolicyFileSync, Policy, type PolicyConfigInput } from "./policy/mod.ts";
import { defaultResolver } from "./core/sockets/dns.ts";
import type { Resolver } from "./core/sockets/resolver.ts";
import { SocketCore, type SocketQuota } from "./core/core.ts";
import type { SocketObserver } from "./core/observer.ts";
import { isWebSocketUpgrade } from "./core/websocket.ts";
import { type AdminSource, type RunningAdmin, serveAdmin } from "./ops/admin.ts";
import { PolicyHolder } from "./ops/live_policy.ts";
import type { AccessRecord, EventFields, LogLevel } from "./ops/logger.ts";
import { type RefusalKind, ServerMetrics } from "./ops/metrics.ts";
import { Drain } from "./ops/drain.ts";
import { prepareReload, type ReloadResult, reportReload } from "./ops/reload.ts";
import { SessionMetering } from "./ops/session_metering.ts";
import type { ClusterSetup } from "./cluster/mod.ts";
import { ClientBandwidth } from "./cluster/bandwidth.ts";
import { registerClusterMetrics } from "./cluster/metrics.ts";
import { clientKey } from "./http/admission.ts";
import type { WebTransportConfig } from "./policy/config.ts";
import { WebTransportFrontEnd, WELL_KNOWN_PATH } from "./frontends/webtransport/endpoint.ts";
import { AcceptLoop, type AcceptStats } from "./http/accept.ts";
import { connectionLimits } from "./http/bounds.ts";

/** Where the server listens and how it behaves. */
export interface ServerOptions {
  /** Interface to listen on (default `0.0.0.0`). */
  hostname: string;
  /** Port to listen on; 0 picks a free one (default 9000). */
  port: number;
  /** The policy every session runs under. */
  policy: Policy;
  /** Where decisions are logged (default: JSON lines on stdout). */
  log: DecisionLog;
  /** Name resolution (default: the system's, cached and timed per the policy's `[dns]`; see sockets/dns.ts). */
  resolver?: Resolver;
  /** The admin listener (`/metrics`, `/healthz`, `/readyz`, `/status`), started by {@link Server.serve}. Off when absent. */
  admin?: { hostname: string; port: number; token?: Uint8Array | null };
  /** Counts for `/metrics` and `/status`; created when `admin` or `accessLog` is set and this is not. */
  metrics?: ServerMetrics;
  /** Receives one record per ended session (the access log). */
  accessLog?: (record: AccessRecord) => void;
  /** Receives operational events: reloads (and why one failed), drains. */
  events?: (level: LogLevel, event: string, fields?: EventFields) => void;
  /** The policy file {@link Server.reload} re-reads when given no path. */
  policyFile?: string;
  /**
   * Limits beyond this process (src/cluster/): the shared store, the local share of each cap, and the
   * replica name every decision is logged with. Default: this process alone counts, unnamed.
   */
  cluster?: ClusterSetup;
  /** Share the port with other servers (`SO_REUSEPORT`; Deno 2.9.6 needs `--unstable-net`). Default false. */
  reusePort?: boolean;
  /** Told about every socket the core opens (src/core/observer.ts); default: the metrics', when counting. */
  observer?: SocketObserver;
  /** A quota every outbound socket is asked (src/core/core.ts, `SocketQuota`), e.g. one shared by replicas. */
  socketQuota?: SocketQuota;
  /** The WebTransport front end (docs/webtransport.md); default the policy's `[webtransport]` (off). */
  webtransport?: WebTransportConfig;
}

export type { ReloadResult };
export { handleWsUpgrade, type UpgradeOptions } from "./http/upgrade.ts";
export { wasmnetEndpoint } from "./frontends/wasmnet/endpoint.ts";

/** The WebTransport listener: its UDP port, the certificate's SHA-256 (base64), and when generated, its end. */
export interface WebTransportInfo {
  port: number;
  certificateHash: string;
  /** Set when the certificate was made at start-up (ISO time it expires). */
  generatedUntil?: string;
}

/** A server that is listening. */
export interface RunningServer {
  /** The address actually bound (the real port when 0 was asked). */
  addr: Deno.NetAddr;
  /** `ws://host:port/`, handy for clients and tests. */
  url: string;
  /** Resolves once the server has shut down and every session is closed. */
  finished: Promise<void>;
  /** The admin listener, when the server has one. */
  admin?: RunningAdmin;
  /** The WebTransport listener, when on: see {@link WebTransportInfo}. */
  webtransport?: WebTransportInfo;
}

/** Options for {@link Server.serve} and {@link Server.listen}. */
export interface ListenOptions {
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Called once with the bound address (and the WebTransport listener's, when on). */
  onListen?: (addr: Deno.NetAddr, webtransport?: WebTransportInfo) => void;
  /** Called once with the admin listener's address, when there is one. */
  onAdminListen?: (addr: Deno.NetAddr) => void;
}

/**
 * The wasmnet server. Build one with {@link Server.builder} or {@link Server.fromConfig}.
 *
 * Lifetimes: {@link serve}'s signal ends everything at once (sessions closed with 1001); {@link drain} first
 * refuses new sessions and lets open ones finish, for up to `[server] drain_timeout_secs`. {@link reload}
 * puts a new policy in force for every later decision, in every session.
 */
export class Server {
  /** The options in force; `options.policy` is a live view of the policy in force (see {@link reload}). */
  readonly options: ServerOptions;
  readonly #sessions = new Set<Closable>();
  readonly #admission: Admission;
  readonly #bandwidth: ClientBandwidth;
  readonly #endpoints: readonly Endpoint[];
  readonly #policy: PolicyHolder;
  /** Every decision of the server passes here: counted, kept for the status page, then logged. */
  readonly #log: DecisionLog;
  /** Metrics, status page and access log; undefined when nothing asks for them (no counting then). */
  readonly #metering: SessionMetering | undefined;
  readonly #readiness = new Map<string, () => string | null>();
  /** The socket core every front end opens its sockets through (src/core/core.ts). */
  readonly #core: SocketCore;
  #metricsSource: (() => Promise<string>) | undefined;
  readonly #drain: Drain;
  #webtransport: WebTransportFrontEnd | undefined;
  #accept: AcceptLoop | undefined;

  /** Prefer {@link Server.builder}. `endpoints` defaults to every protocol wasmnet speaks. */
  constructor(
    options: ServerOptions,
    endpoints: readonly Endpoint[] = [...EXTRA_ENDPOINTS, wasmnetEndpoint],
  ) {
    this.#policy = new PolicyHolder(options.policy);
    // One DNS cache per server, shared by every session and endpoint (src/core/sockets/dns.ts).
    this.options = {
      ...options,
      policy: this.#policy.view,
      resolver: options.resolver ?? defaultResolver(options.policy),
    };
    this.#endpoints = endpoints;
    const replica = options.cluster?.replica;
    const metrics = options.metrics ??
      (options.admin || options.accessLog
        ? new ServerMetrics({ eventLoopSampleMs: options.admin ? 100 : 0 })
        : undefined);
    this.#metering = metrics && new SessionMetering(metrics, options.accessLog, replica);
    const base = replica === undefined ? options.log : withReplica(options.log, replica);
    this.#log = this.#metering?.decisions(base) ?? base;
    this.#drain = new Drain(this.#sessions, () => this.closeSessions(), options.events);
    this.options = { ...this.options, log: base };
    this.#admission = new Admission(this.#policy.view, this.#log, undefined, {
      shared: options.cluster?.shared,
      localShare: options.cluster?.localShare,
      replica,
    });
    const shared = options.cluster?.shared;
    this.#bandwidth = new ClientBandwidth({
      mbps: options.policy.config.network.max_bandwidth_mbps_per_ip,
      store: shared?.store,
      localShare: shared ? options.policy.config.cluster.replicas : options.cluster?.localShare ?? 1,
      onStoreError: (err) => shared?.reportFailure(err),
    });
    if (metrics) this.#admission.onRefuse = (refusal) => metrics.refused(refusal.kind);
    if (metrics && shared) registerClusterMetrics(metrics.registry, shared);
    // on_store_failure = "closed": a required dependency is down, so /readyz says so.
    if (shared?.options.onFailure === "closed") {
      this.addReadinessCheck("cluster", () => shared.up ? null : "the shared limits store is unavailable");
    }
    this.#core = new SocketCore({
      log: this.#log,
      resolver: this.options.resolver,
      serverHost: options.hostname,
      observer: options.observer ?? metrics?.sockets,
      quota: options.socketQuota,
    });
    warmAllocator(); // keeps the data path off fresh pages (src/core/allocator.ts)
  }

  /** Starts a builder: `Server.builder().host("0.0.0.0").port(9000).policyFile("policy.toml").build()`. */
  static builder(): ServerBuilder {
    return new ServerBuilder();
  }

  /** A server from a policy (or policy config) and an address `host:port` (or `{ hostname, port }`). */
  static fromConfig(
    config: Policy | PolicyConfigInput,
    addr: string | { hostname: string; port: number },
  ): Server {
    const policy = config instanceof Policy ? config : Policy.fromConfig(config);
    const { hostname, port } = typeof addr === "string" ? parseHostPort(addr) : addr;
    return new Server({ hostname, port, policy, log: rateLimitedLog(jsonLineLog()) });
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The server's metrics, when it counts (admin listener or access log; see {@link ServerOptions.metrics}). */
  get metrics(): ServerMetrics | undefined {
    return this.#metering?.metrics;
  }

  /** True from the start of a {@link drain}: new sessions are refused with 503, `/readyz` answers 503. */
  get draining(): boolean {
    return this.#drain.active;
  }

  /**
   * Adds a readiness check for `/readyz` (e.g. a shared store's connection): `check` returns null when
   * fine, else why not. The server is not ready while any check says why.
   */
  addReadinessCheck(name: string, check: () => string | null): void {
    this.#readiness.set(name, check);
  }

  /**
   * Replaces what the admin listener's `/metrics` serves (under `--workers`, worker 0 serves every worker's
   * metrics, labelled by `worker`: src/cluster/worker_metrics.ts).
   */
  setMetricsSource(source: () => Promise<string>): void {
    this.#metricsSource = source;
  }

  /** Null when ready for new sessions, else why not (`draining`, or a failed readiness check). */
  notReady(): string | null {
    if (this.draining) return "draining";
    for (const [name, check] of this.#readiness) {
      const problem = check();
      if (problem !== null) return `${name}: ${problem}`;
    }
    return null;
  }

  /** What the admin listener serves for this server. */
  get adminSource(): AdminSource {
    const metering = this.#metering ?? new SessionMetering(new ServerMetrics({ eventLoopSampleMs: 0 }));
    return metering.adminSource({
      notReady: () => this.notReady(),
      draining: () => this.draining,
      policy: () => this.#policy.current.describe(),
      metricsText: () => this.#metricsSource?.(),
    });
  }

  /**
   * Drains: from now on new sessions get 503 and `/readyz` 503, open sessions keep working for up to
   * `timeoutMs` (default `[server] drain_timeout_secs`) and are then closed with 1001. Resolves as soon as
   * the last session has ended (or at the timeout, once the rest are closed); a second call returns the same
   * promise. Aborting {@link serve}'s signal ends the drain at once.
   */
  drain(timeoutMs?: number): Promise<void> {
    if (!this.#drain.active) {
      this.#admission.draining = true;
      if (this.metrics) this.metrics.draining = true;
    }
    return this.#drain.start(timeoutMs ?? this.#policy.current.config.server.drain_timeout_secs * 1000);
  }

  /**
   * Re-reads the policy (`path`, else {@link ServerOptions.policyFile}) or takes `policy`, and puts it in
   * force for every new decision, in open sessions as in new ones. A file that start-up would refuse (bad
   * TOML, a rule that does not parse, a missing `[auth]` secret or `[tls]` CA file) is refused with the same
   * error and the old policy stays. Logged (`events`) and counted (`wasmnet_policy_reloads_total`).
   */
  async reload(source: string | Policy | undefined = this.options.policyFile): Promise<ReloadResult> {
    let result: ReloadResult;
    try {
      const next = await prepareReload(source, this.#policy.current);
      this.#policy.replace(next.policy);
      this.#admission.replaceAuth(next.auth);
      result = { ok: true, policy: next.policy, notLive: next.notLive };
    } catch (err) {
      result = { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
    }
    this.metrics?.reloaded(result.ok);
    reportReload(result, this.options.events);
    return result;
  }

  /**
   * The request handler, for mounting in an existing `Deno.serve`: WebSocket upgrades become sessions,
   * anything else gets a short plain-text answer. Mounted there it runs on Deno's WebSocket, without the
   * accept-loop, handshake and fragment bounds {@link serve} has (docs/security.md, "Every bound").
   */
  readonly handler = (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Response | Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname === WELL_KNOWN_PATH && !isWebSocketUpgrade(request)) return this.#wellKnown(request);
    if (!isWebSocketUpgrade(request)) return notWebSocket();
    const endpoint = this.#endpoints.find((e) => e.matches(url));
    if (!endpoint) {
      this.metrics?.refused("endpoint");
      return new Response("wasmnet: no endpoint at this path\n", { status: 404 });
    }
    const clientIp = clientIpOf(request, info.remoteAddr.hostname, this.options.policy);
    return this.#admit(request, url, clientIp, endpoint.name, (ctx) => endpoint.upgrade(request, url, ctx));
  };

  /**
   * Origin, session caps and token are checked here, before any front end sets a session up
   * (src/http/admission.ts); `start` gets the session's terms. The WebSocket endpoints and WebTransport
   * (src/frontends/webtransport/) both come through here, so both are metered and tracked alike.
   */
  readonly #admit = (
    request: Request,
    url: URL,
    clientIp: string,
    frontend: string,
    start: (ctx: EndpointContext) => Response,
  ): Response | Promise<Response> => {
    return this.#admission.admit(request, url, clientIp, (admitted) => {
      const meter = this.#metering?.meterUpgrade(request, frontend, clientIp);
      // The address's shared bandwidth (max_bandwidth_mbps_per_ip): held while a session is tracked.
      const budget = this.#bandwidth.acquire(clientKey(clientIp));
      let tracked = false;
      const response = start({
        policy: admitted.policy,
        serverHost: this.options.hostname,
        clientIp,
        log: this.#log,
        resolver: this.options.resolver,
        core: this.#core.forUpgrade({ observer: meter?.observer, clientBudget: budget?.budget }),
        track: (session) => {
          tracked = true;
          this.#sessions.add(session);
          const release = admitted.hold();
          if (meter?.current && session.id !== undefined) meter.current.id = session.id;
          return () => {
            this.#sessions.delete(session);
            release();
            budget?.release();
            this.#drain.sessionEnded();
          };
        },
      });
      if (!tracked) budget?.release();
      return response;
    });
  };

  /**
  /** `/.well-known/wasmnet`: where else this server can be reached (WebTransport), for `transport: "auto"`. */
  #wellKnown(request: Request): Response | Promise<Response> {
    if (this.#webtransport) return this.#webtransport.wellKnown(request);
    return new Response(JSON.stringify({ webtransport: null }), {
      headers: { "content-type": "application/json", "access-control-allow-origin": "*" },
    });
  }

  /**
   * Starts listening and returns once bound; shut down by aborting `signal`. The server owns its accept
   * loop (src/http/accept.ts): it survives running out of file descriptors, bounds connections before
   * their upgrade, and upgrades to its own WebSocket, which bounds every message and reply. With
   * `[webtransport]` on, the QUIC listener is bound first (a certificate that cannot be read or a port that
   * cannot be bound rejects).
   */
  async serve(options: ListenOptions = {}): Promise<RunningServer> {
    const wtConfig = this.options.webtransport ?? this.options.policy.config.webtransport;
    const wtStop = new AbortController();
    if (wtConfig.port !== 0) {
      this.#webtransport = await WebTransportFrontEnd.start({
        config: wtConfig,
        hostname: this.options.hostname,
        policy: this.options.policy,
        admit: (request, url, clientIp, start) => this.#admit(request, url, clientIp, "webtransport", start),
        signal: wtStop.signal,
      });
    }
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({
        hostname: this.options.hostname,
        port: this.options.port,
        ...(this.options.reusePort ? { reusePort: true } : {}),
      } as Deno.TcpListenOptions);
    } catch (err) {
      wtStop.abort(); // the QUIC listener goes with it
      throw err;
    }
    const addr = listener.addr;
    const stop = new AbortController();
    // The bounds are read per connection, so a reloaded policy applies to the next one.
    const loop = new AcceptLoop(
      listener,
      this.handler,
      () => connectionLimits(this.#policy.current),
      stop.signal,
    );
    this.#accept = loop;
    const metrics = this.metrics;
    if (metrics) loop.onRefuse = (status) => metrics.refused(refusalForStatus(status));
    const closeListener = () => {
      stop.abort();
      try {
        listener.close();
      } catch {
        // already closed
      }
    };
    const adminStop = new AbortController();
    let admin: RunningAdmin | undefined;
    try {
      admin = this.options.admin &&
        serveAdmin(this.adminSource, { ...this.options.admin, signal: adminStop.signal });
    } catch (err) {
      wtStop.abort();
      closeListener();
      const { hostname, port } = this.options.admin!;
      throw new Error(`admin listener on ${hostname}:${port}: ${(err as Error).message}`, { cause: err });
    }
    const shutdown = async () => {
      wtStop.abort();
      this.#drain.stopNow();
      this.closeSessions();
      closeListener();
      await loop.done;
      adminStop.abort();
      await admin?.finished;
      await this.#webtransport?.finished;
      this.metrics?.close();
    };
    const finished = options.signal?.aborted
      ? shutdown()
      : new Promise<void>((done) =>
        options.signal?.addEventListener("abort", () => shutdown().then(done), { once: true })
      );
    const wt = this.#webtransport;
    const webtransport: WebTransportInfo | undefined = wt && {
      port: wt.port,
      certificateHash: wt.certificateHash,
      generatedUntil: wt.generatedUntil?.toISOString(),
    };
    options.onListen?.(addr, webtransport);
    if (admin) options.onAdminListen?.(admin.addr);
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    return { addr, url: `ws://${host}:${addr.port}/`, finished, admin, webtransport };
  }

  /** Counts of the accept loop (connections in their handshake, fd exhaustion, shed), once serving. */
  get acceptStats(): AcceptStats | undefined {
    return this.#accept?.stats;
  }

  /** Listens until `signal` aborts (like the original's `listen().await`). */
  async listen(options: ListenOptions = {}): Promise<void> {
    const running = await this.serve(options);
    await running.finished;
  }

  /** Closes every session with code 1001 and every socket under them. */
  closeSessions(): void {
    for (const session of this.#sessions) session.shutdown(1001, "server shutting down");
    this.#sessions.clear();
  }
}

/** What an HTTP status the accept loop answered with says about the refusal (a head too large: 431). */
function refusalForStatus(status: number): RefusalKind {
  return status === 431 || status === 414 ? "size" : status === 429 || status === 503 ? "caps" : "malformed";
}

/** Builds a {@link Server}, in the shape of the original's Rust builder. */
export class ServerBuilder {
  #hostname = "0.0.0.0";
  #port = 9000;
  #policy: Policy = Policy.defaults();
  #log: DecisionLog = rateLimitedLog(jsonLineLog()); // lines per session bounded (src/core/log.ts)
  #resolver: Resolver | undefined;
  #policyFile: string | undefined;
  #admin: ServerOptions["admin"];
  #accessLog: ServerOptions["accessLog"];
  #events: ServerOptions["events"];
  #metrics: ServerMetrics | undefined;
  #cluster: ClusterSetup | undefined;
  #reusePort = false;
  #webtransport: WebTransportConfig | undefined;

  /** Interface to listen on. */
  host(hostname: string): this {
    this.#hostname = hostname;
    return this;
  }

  /** Port to listen on (0: any free port). */
  port(port: number): this {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`port must be 0-65535, got ${port}`);
    }
    this.#port = port;
    return this;
  }

  /** Reads a TOML policy file now; throws `PolicyError` naming the file, key and rule on a bad file. */
  policyFile(path: string): this {
    this.#policy = loadPolicyFileSync(path);
    this.#policyFile = path;
    return this;
  }

  /** The file {@link Server.reload} re-reads (set by {@link policyFile}; for a policy loaded elsewhere). */
  reloadPath(path: string): this {
    this.#policyFile = path;
    return this;
  }

  /**
   * Serves the admin listener (`/metrics`, `/healthz`, `/readyz`, `/status`) on `hostname:port`, with
   * `/metrics` and `/status.json` behind `token` when given. Keep it off the public interface.
   */
  admin(hostname: string, port: number, token: Uint8Array | null = null): this {
    this.#admin = { hostname, port, token };
    return this;
  }

  /** Where the access log goes: one record per ended session. */
  accessLog(accessLog: (record: AccessRecord) => void): this {
    this.#accessLog = accessLog;
    return this;
  }

  /** Where operational events go (reloads, drains). */
  events(events: (level: LogLevel, event: string, fields?: EventFields) => void): this {
    this.#events = events;
    return this;
  }

  /** Counts into `metrics` (e.g. one registry shared with an application's own). */
  metrics(metrics: ServerMetrics): this {
    this.#metrics = metrics;
    return this;
  }

  /** Uses this policy. */
  policy(policy: Policy): this {
    this.#policy = policy;
    return this;
  }

  /** No restrictions at all (`--no-policy`). */
  noPolicy(): this {
    this.#policy = Policy.allowAll();
    return this;
  }

  /** Where decisions are logged (default: JSON lines on stdout; `silentLog` for none). */
  log(log: DecisionLog): this {
    this.#log = log;
    return this;
  }

  /** Name resolution to use (tests inject one). */
  resolver(resolver: Resolver): this {
    this.#resolver = resolver;
    return this;
  }

  /** Shares limits beyond this process (from `openCluster`, src/cluster/mod.ts). */
  cluster(cluster: ClusterSetup): this {
    this.#cluster = cluster;
    return this;
  }

  /** Shares the port with other servers on this host (`--workers`; needs `--unstable-net`). */
  reusePort(reuse: boolean): this {
    this.#reusePort = reuse;
    return this;
  }

  /** Serves WebTransport as `config` says (default: the policy's `[webtransport]`). */
  webtransport(config: WebTransportConfig): this {
    this.#webtransport = config;
    return this;
  }

  /** The server. */
  build(): Server {
    return new Server({
      hostname: this.#hostname,
      port: this.#port,
      policy: this.#policy,
      log: this.#log,
      resolver: this.#resolver,
      policyFile: this.#policyFile,
      admin: this.#admin,
      accessLog: this.#accessLog,
      events: this.#events,
      metrics: this.#metrics,
      cluster: this.#cluster,
      reusePort: this.#reusePort,
      webtransport: this.#webtransport,
    });
  }
}

/** Parses `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new RangeError(`expected host:port, got "${text}"`);
  return { hostname: m[1] ?? m[2], port };
}
