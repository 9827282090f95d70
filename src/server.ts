/**
 * HTTP side of wasmnet: answers plain requests, refuses early (before the upgrade) what must be refused,
 * upgrades WebSockets and hands each one to a {@link Session}. The server owns its sessions: when its
 * signal aborts, every session is closed with code 1001 and every socket under it is closed.
 *
 * @module
 */

import { warmAllocator } from "./core/allocator.ts";
import { Admission } from "./http/admission.ts";
import { messageLimits, setMessageLimits } from "./core/limits.ts";
import type { Closable, Endpoint, EndpointContext } from "./frontends/endpoint.ts";
import { EXTRA_ENDPOINTS } from "./http/endpoints.ts";
import { type DecisionLog, jsonLineLog, silentLog, withReplica } from "./core/log.ts";
import { clientAddressOf, loadPolicyFileSync, Policy, type PolicyConfigInput } from "./policy/mod.ts";
import { Session } from "./frontends/wasmnet/session.ts";
import { defaultResolver } from "./core/sockets/dns.ts";
import type { Resolver } from "./core/sockets/resolver.ts";
import { isWebSocketUpgrade, offeredProtocols, upgradeToPort } from "./core/websocket.ts";
import { PROTOCOL_V2 } from "./frontends/wasmnet/flow.ts";
import type { ClusterSetup } from "./cluster/mod.ts";
import type { WebTransportConfig } from "./policy/config.ts";
import { WebTransportFrontEnd, WELL_KNOWN_PATH } from "./frontends/webtransport/endpoint.ts";

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
  /**
   * Limits beyond this process (src/cluster/): the shared store, the local share of each cap, and the
   * replica name every decision is logged with. Default: this process alone counts, unnamed.
   */
  cluster?: ClusterSetup;
  /** Share the port with other servers (`SO_REUSEPORT`; Deno 2.9.6 needs `--unstable-net`). Default false. */
  reusePort?: boolean;
  /** The WebTransport front end (docs/webtransport.md); default the policy's `[webtransport]` (off). */
  webtransport?: WebTransportConfig;
}

/** A server that is listening. */
export interface RunningServer {
  /** The address actually bound (the real port when 0 was asked). */
  addr: Deno.NetAddr;
  /** `ws://host:port/`, handy for clients and tests. */
  url: string;
  /** Resolves once the server has shut down and every session is closed. */
  finished: Promise<void>;
  /** The WebTransport listener, when on: its UDP port and the certificate's SHA-256 (base64). */
  webtransport?: { port: number; certificateHash: string };
}

/** Options for {@link Server.serve} and {@link Server.listen}. */
export interface ListenOptions {
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Called once with the bound address (and the WebTransport listener's, when on). */
  onListen?: (addr: Deno.NetAddr, webtransport?: { port: number; certificateHash: string }) => void;
}

/** The wasmnet server. Build one with {@link Server.builder} or {@link Server.fromConfig}. */
export class Server {
  /** The options in force. */
  readonly options: ServerOptions;
  readonly #sessions = new Set<Closable>();
  readonly #admission: Admission;
  readonly #endpoints: readonly Endpoint[];
  #webtransport: WebTransportFrontEnd | undefined;

  /** Prefer {@link Server.builder}. `endpoints` defaults to every protocol wasmnet speaks. */
  constructor(
    options: ServerOptions,
    endpoints: readonly Endpoint[] = [...EXTRA_ENDPOINTS, wasmnetEndpoint],
  ) {
    // One DNS cache per server, shared by every session and endpoint (src/core/sockets/dns.ts).
    const resolver = options.resolver ?? defaultResolver(options.policy);
    const replica = options.cluster?.replica;
    const log = replica === undefined ? options.log : withReplica(options.log, replica);
    this.options = { ...options, resolver, log };
    this.#endpoints = endpoints;
    this.#admission = new Admission(options.policy, log, undefined, {
      shared: options.cluster?.shared,
      localShare: options.cluster?.localShare,
      replica,
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
    return new Server({ hostname, port, policy, log: jsonLineLog() });
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * The request handler, for mounting in an existing `Deno.serve`: WebSocket upgrades become sessions,
   * anything else gets a short plain-text answer.
   */
  readonly handler = (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Response | Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname === WELL_KNOWN_PATH && !isWebSocketUpgrade(request)) return this.#wellKnown(request);
    if (!isWebSocketUpgrade(request)) return notWebSocket();
    const endpoint = this.#endpoints.find((e) => e.matches(url));
    if (!endpoint) return new Response("wasmnet: no endpoint at this path\n", { status: 404 });
    const clientIp = clientIpOf(request, info.remoteAddr.hostname, this.options.policy);
    return this.#admit(request, url, clientIp, (ctx) => endpoint.upgrade(request, url, ctx));
  };

  /**
   * Origin, session caps and token are checked here, before any front end sets a session up
   * (src/http/admission.ts); `start` gets the session's terms. The WebSocket and WebTransport both use it.
   */
  readonly #admit = (
    request: Request,
    url: URL,
    clientIp: string,
    start: (ctx: EndpointContext) => Response,
  ): Response | Promise<Response> => {
    return this.#admission.admit(request, url, clientIp, (admitted) => {
      return start({
        policy: admitted.policy,
        serverHost: this.options.hostname,
        clientIp,
        log: this.options.log,
        resolver: this.options.resolver,
        track: (session) => {
          this.#sessions.add(session);
          const release = admitted.hold();
          return () => (this.#sessions.delete(session), release());
        },
      });
    });
  };

  /** `/.well-known/wasmnet`: where else this server can be reached (WebTransport), for `transport: "auto"`. */
  #wellKnown(request: Request): Response | Promise<Response> {
    if (this.#webtransport) return this.#webtransport.wellKnown(request);
    return new Response(JSON.stringify({ webtransport: null }), {
      headers: { "content-type": "application/json", "access-control-allow-origin": "*" },
    });
  }

  /**
   * Starts listening and returns once bound; shut down by aborting `signal`. With `[webtransport]` on, the
   * QUIC listener is bound too (and a failure to read its certificate or bind its port rejects).
   */
  async serve(options: ListenOptions = {}): Promise<RunningServer> {
    const wtConfig = this.options.webtransport ?? this.options.policy.config.webtransport;
    const wtStop = new AbortController();
    if (wtConfig.port !== 0) {
      this.#webtransport = await WebTransportFrontEnd.start({
        config: wtConfig,
        hostname: this.options.hostname,
        policy: this.options.policy,
        log: this.options.log,
        admit: this.#admit,
        signal: wtStop.signal,
      });
    }
    const http = Deno.serve({
      hostname: this.options.hostname,
      port: this.options.port,
      reusePort: this.options.reusePort,
      onListen: () => {},
    }, this.handler);
    const addr = http.addr;
    const shutdown = async () => {
      wtStop.abort();
      this.closeSessions();
      await http.shutdown();
      await this.#webtransport?.finished;
    };
    const finished = options.signal?.aborted ? shutdown() : new Promise<void>((done) => {
      options.signal?.addEventListener("abort", () => shutdown().then(done), { once: true });
      http.finished.then(done);
    });
    const wt = this.#webtransport;
    const wtInfo = wt && { port: wt.port, certificateHash: wt.certificateHash };
    options.onListen?.(addr, wtInfo);
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    return { addr, url: `ws://${host}:${addr.port}/`, finished, webtransport: wtInfo };
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

/** Builds a {@link Server}, in the shape of the original's Rust builder. */
export class ServerBuilder {
  #hostname = "0.0.0.0";
  #port = 9000;
  #policy: Policy = Policy.defaults();
  #log: DecisionLog = jsonLineLog();
  #resolver: Resolver | undefined;
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
      cluster: this.#cluster,
      reusePort: this.#reusePort,
      webtransport: this.#webtransport,
    });
  }
}

/**
 * The client's address for limits and logs: `peer`, or, when `peer` is one of the policy's trusted reverse
 * proxies, the browser's address from `Forwarded` or `X-Forwarded-For` (src/policy/proxies.ts).
 */
function clientIpOf(request: Request, peer: string, policy: Policy): string {
  const headers = request.headers;
  return clientAddressOf(
    peer,
    headers.get("x-forwarded-for"),
    policy.rules.trustedProxies,
    headers.get("forwarded"),
  ).ip;
}

/** Options for {@link handleWsUpgrade}. */
export interface UpgradeOptions {
  /**
   * The client's IP (for logs and limits); from `info.remoteAddr.hostname` in a `Deno.serve` handler. When it
   * is one of the policy's `server.trusted_proxies`, `Forwarded` or `X-Forwarded-For` says who the client is.
   */
  clientIp?: string;
  /** The interface the server listens on (default bind address). Default `0.0.0.0`. */
  serverHost?: string;
  log?: DecisionLog;
  resolver?: Resolver;
  /** Closing this signal closes the session. */
  signal?: AbortSignal;
}

/**
 * Upgrades one request to a wasmnet session and returns the `Response` to hand back to `Deno.serve`.
 * A request that is not a WebSocket upgrade gets `426 Upgrade Required`.
 */
export function handleWsUpgrade(request: Request, policy: Policy, options: UpgradeOptions = {}): Response {
  if (!isWebSocketUpgrade(request)) return notWebSocket();
  warmAllocator(); // once per process (src/core/allocator.ts)
  setMessageLimits(request, messageLimits(policy)); // max_message_bytes, session idle (src/core/limits.ts)
  const ctx: EndpointContext = {
    policy,
    serverHost: options.serverHost ?? "0.0.0.0",
    clientIp: clientIpOf(request, options.clientIp ?? "unknown", policy),
    log: options.log ?? silentLog,
    resolver: options.resolver,
    track: (session) => {
      const onAbort = () => session.shutdown(1001, "server shutting down");
      options.signal?.addEventListener("abort", onAbort, { once: true });
      return () => options.signal?.removeEventListener("abort", onAbort);
    },
  };
  return wasmnetEndpoint.upgrade(request, new URL(request.url), ctx);
}

/** wasmnet's own protocol: served at every path no other endpoint claims. */
export const wasmnetEndpoint: Endpoint = {
  name: "wasmnet",
  matches: () => true,
  upgrade(request, _url, ctx) {
    // Protocol v2 (flow control) when the client offers it; everyone else gets the original, unchanged.
    const v2 = offeredProtocols(request).includes(PROTOCOL_V2);
    return upgradeToPort(request, (port) => {
      const session = new Session(port, {
        policy: ctx.policy,
        serverHost: ctx.serverHost,
        clientIp: ctx.clientIp,
        log: ctx.log,
        resolver: ctx.resolver,
        flowControl: v2,
        reuseReadBuffers: true, // Deno's WebSocket.send copies before returning (issue 5, measured)
      });
      const untrack = ctx.track(session);
      return {
        message: (data) => session.receive(data),
        close: () => {
          session.close();
          untrack();
        },
      };
    }, v2 ? { protocol: PROTOCOL_V2 } : {});
  },
};

function notWebSocket(): Response {
  return new Response("wasmnet: this endpoint speaks WebSocket; see docs/protocol.md\n", {
    status: 426,
    headers: { "upgrade": "websocket", "content-type": "text/plain; charset=utf-8" },
  });
}

/** Parses `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new RangeError(`expected host:port, got "${text}"`);
  return { hostname: m[1] ?? m[2], port };
}
