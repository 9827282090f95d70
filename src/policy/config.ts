/**
 * The policy config schema: a parsed TOML table or a partial object in, a fully checked {@link PolicyConfig}
 * with every default filled in out. Strict on purpose: an unknown key or section, a wrong type, a number out
 * of range or a rule that does not parse is a {@link PolicyError} naming the source, the key and the value,
 * because a typo in a security policy must not silently fall back to a default. Longer than 500 lines: it
 * is the one schema of every table, each key's type, doc, default and range side by side, so a key cannot
 * be documented in one place and checked in another.
 *
 * @module
 */

import { DEFAULT_DENY } from "./default_deny.ts";
import { type PortRange, UNPRIVILEGED_PORTS } from "./ports.ts";
import type { Rule } from "./rules.ts";
import { asTable, TableReader, TomlFloat } from "./table_reader.ts";

export { TomlFloat };

/** `[network]`: which targets may be reached, what may be bound, and per-session socket limits. */
export interface NetworkConfig {
  /**
   * Rules for targets that are blocked; a match here always wins over `allow`. A bare `*` makes the policy
   * deny-by-default (only what `allow` names gets through). Default: {@link DEFAULT_DENY} when the key is
   * absent; an explicit `[]` means no deny rules at all.
   */
  readonly deny: readonly string[];
  /** Rules for targets that may be reached. Default `["*"]`. An empty list allows nothing. */
  readonly allow: readonly string[];
  /**
   * Ports a client may bind (bind port 0, "server picks", is allowed whenever this is not empty). Default
   * 1024-65535 (every unprivileged port); `"*"` is 1-65535; `[]` forbids binding.
   */
  readonly bind_ports: readonly PortRange[];
  /**
   * Rules (`*`, IPs, CIDR ranges; no ports, no names) for the local addresses a client may bind. Default
   * `null`: only the server's own listen host. `[]` forbids binding.
   */
  readonly bind_addrs: readonly string[] | null;
  /** Open sockets plus listeners per session. Default 50. */
  readonly max_connections: number;
  /** Listeners per session. Default 8; 0 forbids binding. */
  readonly max_listeners: number;
  /** Outbound connects in flight (resolving or handshaking) per session. Default 8. */
  readonly max_pending_connects: number;
  /** Time allowed for an outbound connect, in seconds. Default 30. */
  readonly connection_timeout_secs: number;
  /** Bandwidth per session in megabits per second, both directions together. Default 0 = unlimited. */
  readonly max_bandwidth_mbps: number;
  /** A socket with no traffic this long, in seconds, is closed. Default 0 = never. */
  readonly socket_idle_timeout_secs: number;
  /**
   * Bandwidth of all sessions from one client address (IPv4, or IPv6 /64) together, in megabits per second,
   * both directions; shared across replicas through `[cluster] redis`. Default 0 = unlimited.
   */
  readonly max_bandwidth_mbps_per_ip: number;
}

/** `[server]`: who may open a session, and server-wide limits. */
export interface ServerConfig {
  /**
   * Origin header values allowed to open a session: `*` (any), `null` (opaque origins) or exact origins like
   * `https://app.example.com`. Default `["*"]`. Requests without an Origin header are not browsers; they are
   * let in unless `require_origin` is set.
   */
  readonly allowed_origins: readonly string[];
  /** Refuse sessions whose request has no Origin header. Default false. */
  readonly require_origin: boolean;
  /** Sessions open at once on the whole server. Default 1000. */
  readonly max_sessions: number;
  /** Sessions open at once from one client IP. Default 32. */
  readonly max_sessions_per_ip: number;
  /** Largest WebSocket message accepted; a larger one closes the session with 1009. Default 1 MiB, minimum 1024. */
  readonly max_message_bytes: number;
  /** A session with no messages this long, in seconds, is closed. Default 0 = never. */
  readonly session_idle_timeout_secs: number;
  /** A connection must finish its request head within this many seconds, or it is dropped. Default 10. */
  readonly header_timeout_secs: number;
  /** Connections accepted and not yet upgraded, on the whole server; more are answered 503. Default 1024. */
  readonly max_handshakes: number;
  /** Connections not yet upgraded from one peer IP (an IPv6 peer: its /64; trusted proxies exempt); more get 429. Default 8. */
  readonly max_handshakes_per_ip: number;
  /** A WebSocket write that makes no progress this long (the client stopped reading) drops it. Default 60. */
  readonly send_timeout_secs: number;
  /**
   * Reverse proxies whose `Forwarded` or `X-Forwarded-For` is believed: IP addresses or CIDR ranges. A request from one of
   * them is counted (per-IP caps) and logged under the client address the proxies recorded. Default `[]`:
   * the header is ignored and the peer address is the client.
   */
  readonly trusted_proxies: readonly string[];
  /**
   * On SIGTERM (or `Server.drain()`), how long open sessions may keep working before they are closed with
   * 1001, in seconds. New sessions are refused (503) from the start of the drain. Default 30.
   */
  readonly drain_timeout_secs: number;
  /** Servers on the one port (`--workers`): a count; 0 or `"auto"` is one per CPU. Default 1. */
  readonly workers: number;
}

/**
 * `[admin]`: the operators' listener (`/metrics`, `/healthz`, `/readyz`, `/status`), never the public port.
 * Off unless `listen` (or `--admin`) is set. Like `[auth]`, a bearer token is named by where it is, never
 * written here.
 */
export interface AdminConfig {
  /** `HOST:PORT`, `[V6]:PORT` or a bare `PORT` (then on 127.0.0.1). Default "" (no admin listener). */
  readonly listen: string;
  /** Environment variable holding the bearer token every admin request must carry. Default "" (none). */
  readonly token_env: string;
  /** File holding the bearer token. Default "" (none). */
  readonly token_file: string;
}

/** `[auth]`: HMAC tokens. The secret itself never appears in the config or the logs, only where to find it. */
export interface AuthConfig {
  /** Whether every session needs a valid token. Default false. Needs exactly one of the two secret keys. */
  readonly required: boolean;
  /** Name of the environment variable holding the secret. Default "" (unset). */
  readonly secret_env: string;
  /** Path of a file holding the secret. Default "" (unset). */
  readonly secret_file: string;
  /** Sessions open at once under one token subject (its `sub`, else the token itself). Default 0 = no cap. */
  readonly max_sessions_per_token: number;
}

/** `[cluster]`: limits shared by several replicas (docs/deployment.md). */
export interface ClusterConfig {
  /** `redis://host:port[/db]` or `rediss://…` (no password in it). Default "": limits are counted locally. */
  readonly redis: string;
  /** Name of the environment variable holding the Redis password. Default "" (none). */
  readonly password_env: string;
  /** For `rediss://`: a PEM file of the CA that signed Redis's certificate. Default "": the system roots. */
  readonly tls_ca_file: string;
  /** Prefix of every Redis key. Default `wasmnet:`. */
  readonly key_prefix: string;
  /** This replica's name in logs and leases. Default "": host name, plus `-w<index>` under `--workers`. */
  readonly name: string;
  /** How long a session's lease lasts unrenewed, in seconds. Default 30 (renewed every third of it). */
  readonly lease_secs: number;
  /** While Redis is down: `local` (each process enforces its share) or `closed` (new sessions get 503). */
  readonly on_store_failure: "local" | "closed";
  /** How many server processes share the caps (machines × workers): the local share is ceil(cap / this). */
  readonly replicas: number;
}

/** `[udp]`: datagram limits. */
export interface UdpConfig {
  /** Largest datagram sent or received. Default 65507 (the IPv4 maximum), range 1-65507. */
  readonly max_datagram_bytes: number;
  /** Datagrams one UDP socket may send per second (a token bucket per socket). Default 1000; 0 = unlimited. */
  readonly max_datagrams_per_sec: number;
}

/** `[dns]`: the resolver used for names. */
export interface DnsConfig {
  /** Time allowed for one lookup, in milliseconds. Default 5000. */
  readonly timeout_ms: number;
  /** Answers kept in the cache. Default 1024; 0 disables the cache. */
  readonly cache_entries: number;
  /** How long an answer is kept, in seconds (capped by its own TTL where known). Default 60; 0 = no caching. */
  readonly cache_ttl_secs: number;
}

/** `[tls]`: certificate checks for `connect_tls`. */
export interface TlsConfig {
  /** Extra CA root certificates (PEM files) trusted besides the system roots. Default `[]`. */
  readonly ca_files: readonly string[];
}

/** `[wisp]`: settings of the Wisp endpoint (docs/wisp.md); everything else comes from the sections above. */
export interface WispConfig {
  /** Message of the day sent to Wisp v2 clients (MOTD extension). Default "" (none). */
  readonly motd: string;
  /**
   * Username → password for the Wisp v2 password extension. Default `{}`: no password asked. When set, a v2
   * client must send one of these pairs; v1 clients cannot and are refused.
   */
  readonly password_users: Readonly<Record<string, string>>;
}

/**
 * `[webtransport]`: the opt-in WebTransport front end (docs/webtransport.md). Off unless `port` is set; it
 * then needs `cert` and `key`. The server must run with `--unstable-net` (Deno 2.9.6).
 */
export interface WebTransportConfig {
  /** UDP port of the QUIC listener. Default 0: WebTransport off. */
  readonly port: number;
  /**
   * Certificate chain, PEM file. Default "": a self-signed ECDSA certificate is made at start-up, valid 13
   * days (browsers accept it by its advertised hash).
   */
  readonly cert: string;
  /** Private key, PEM file; set with `cert`. */
  readonly key: string;
  /**
   * Advertise the certificate's SHA-256 at `/.well-known/wasmnet`, so browsers accept a self-signed one
   * (`serverCertificateHashes`: ECDSA P-256, valid at most 14 days). Default true; set false with a
   * CA-issued certificate.
   */
  readonly pin_certificate: boolean;
  /** Host name put in the advertised URL. Default "": the host the well-known request was sent to. */
  readonly public_host: string;
}

/** A fully checked policy config: every section present, every default filled in. */
export interface PolicyConfig {
  /** `[network]`: targets, binds, per-session socket limits. */
  readonly network: NetworkConfig;
  /** `[server]`: origins and server-wide limits. */
  readonly server: ServerConfig;
  /** `[auth]`: tokens. */
  readonly auth: AuthConfig;
  /** `[udp]`: datagram limits. */
  readonly udp: UdpConfig;
  /** `[dns]`: resolver timeout and cache. */
  readonly dns: DnsConfig;
  /** `[tls]`: extra CA roots. */
  readonly tls: TlsConfig;
  readonly wisp: WispConfig;
  /** `[admin]`: the operators' listener. */
  readonly admin: AdminConfig;
  /** `[cluster]`: shared limits. */
  readonly cluster: ClusterConfig;
  /** `[webtransport]`: the opt-in WebTransport front end. */
  readonly webtransport: WebTransportConfig;
}

/** `bind_ports` as written: an integer, a string like `"3000,8080,9000-9100"` or `"*"`, or an array of those. */
export type PortSetInput = number | string | PortRange | readonly (number | string | PortRange)[];

/** Any part of `[network]`, in the same snake_case keys as TOML. */
export type NetworkConfigInput = Partial<Omit<NetworkConfig, "bind_ports">> & {
  readonly bind_ports?: PortSetInput;
};

/** A partial config in the same shape as the TOML file; what is left out gets its default. */
export interface PolicyConfigInput {
  /** Any keys of {@link NetworkConfig}. */
  readonly network?: NetworkConfigInput;
  /** Any keys of {@link ServerConfig} (`workers` also as `"auto"`). */
  readonly server?: Partial<Omit<ServerConfig, "workers">> & { readonly workers?: number | "auto" };
  /** Any keys of {@link AuthConfig}. */
  readonly auth?: Partial<AuthConfig>;
  /** Any keys of {@link UdpConfig}. */
  readonly udp?: Partial<UdpConfig>;
  /** Any keys of {@link DnsConfig}. */
  readonly dns?: Partial<DnsConfig>;
  /** Any keys of {@link TlsConfig}. */
  readonly tls?: Partial<TlsConfig>;
  readonly wisp?: Partial<WispConfig>;
  readonly admin?: Partial<AdminConfig>;
  /** Any keys of {@link ClusterConfig}. */
  readonly cluster?: Partial<ClusterConfig>;
  /** Any keys of {@link WebTransportConfig}. */
  readonly webtransport?: Partial<WebTransportConfig>;
}

/** The parsed rule lists of a config, labelled with their keys (`network.deny[3] "10.0.0.0/8"`). */
export interface PolicyRules {
  /** `network.deny`, in order. */
  readonly deny: readonly Rule[];
  /** `network.allow`, in order. */
  readonly allow: readonly Rule[];
  /** Null means the default: only the server's listen host. */
  readonly bindAddrs: readonly Rule[] | null;
  /** `server.trusted_proxies`: address ranges only. */
  readonly trustedProxies: readonly Rule[];
}

/** A checked config together with its parsed rules. */
export interface CheckedConfig {
  readonly config: PolicyConfig;
  readonly rules: PolicyRules;
}

/** Checks `input` (a parsed TOML table or a {@link PolicyConfigInput}) and fills in defaults. Throws {@link PolicyError}. */
export function checkConfig(input: unknown, source: string): CheckedConfig {
  const root = new TableReader(source, "", asTable(input, source, undefined));
  const { network, rules: networkRules } = checkNetwork(root.section("network"));
  const { server, trustedProxies } = checkServer(root.section("server"));
  const rules: PolicyRules = { ...networkRules, trustedProxies };
  const config: PolicyConfig = {
    network,
    server,
    auth: checkAuth(root.section("auth")),
    udp: checkUdp(root.section("udp")),
    dns: checkDns(root.section("dns")),
    tls: checkTls(root.section("tls")),
    wisp: checkWisp(root.section("wisp")),
    admin: checkAdmin(root.section("admin")),
    cluster: checkCluster(root.section("cluster")),
    webtransport: checkWebTransport(root.section("webtransport")),
  };
  root.finish();
  return { config: deepFreeze(config), rules: Object.freeze(rules) };
}

function checkNetwork(
  r: TableReader,
): { network: NetworkConfig; rules: Omit<PolicyRules, "trustedProxies"> } {
  const deny = r.rules("deny", DEFAULT_DENY);
  const allow = r.rules("allow", ["*"]);
  const bindAddrs = r.bindAddrRules("bind_addrs");
  const network: NetworkConfig = {
    deny: deny.texts,
    allow: allow.texts,
    bind_ports: r.portSet("bind_ports", UNPRIVILEGED_PORTS),
    bind_addrs: bindAddrs?.texts ?? null,
    max_connections: r.integer("max_connections", 50, 1, 1_000_000),
    max_listeners: r.integer("max_listeners", 8, 0, 1_000_000),
    max_pending_connects: r.integer("max_pending_connects", 8, 1, 1_000_000),
    connection_timeout_secs: r.integer("connection_timeout_secs", 30, 1, 3600),
    max_bandwidth_mbps: r.integer("max_bandwidth_mbps", 0, 0, 1_000_000),
    socket_idle_timeout_secs: r.integer("socket_idle_timeout_secs", 0, 0, 604_800),
    max_bandwidth_mbps_per_ip: r.integer("max_bandwidth_mbps_per_ip", 0, 0, 1_000_000),
  };
  r.finish();
  return { network, rules: { deny: deny.rules, allow: allow.rules, bindAddrs: bindAddrs?.rules ?? null } };
}

function checkServer(r: TableReader): { server: ServerConfig; trustedProxies: Rule[] } {
  const proxies = r.addressRules("trusted_proxies", "trusted proxies");
  const server: ServerConfig = {
    allowed_origins: r.stringList("allowed_origins", ["*"], originProblem),
    require_origin: r.boolean("require_origin", false),
    max_sessions: r.integer("max_sessions", 1000, 1, 1_000_000),
    max_sessions_per_ip: r.integer("max_sessions_per_ip", 32, 1, 1_000_000),
    max_message_bytes: r.integer("max_message_bytes", 1_048_576, 1024, 64 * 1_048_576),
    session_idle_timeout_secs: r.integer("session_idle_timeout_secs", 0, 0, 604_800),
    header_timeout_secs: r.integer("header_timeout_secs", 10, 1, 3600),
    max_handshakes: r.integer("max_handshakes", 1024, 1, 1_000_000),
    max_handshakes_per_ip: r.integer("max_handshakes_per_ip", 8, 1, 1_000_000),
    send_timeout_secs: r.integer("send_timeout_secs", 60, 1, 86_400),
    trusted_proxies: proxies.texts,
    drain_timeout_secs: r.integer("drain_timeout_secs", 30, 0, 86_400),
    workers: r.autoOr("workers") ?? r.integer("workers", 1, 0, 256),
  };
  r.finish();
  return { server, trustedProxies: proxies.rules };
}

function checkAuth(r: TableReader): AuthConfig {
  const auth: AuthConfig = {
    required: r.boolean("required", false),
    secret_env: r.string("secret_env", "", envNameProblem),
    secret_file: r.string("secret_file", ""),
    max_sessions_per_token: r.integer("max_sessions_per_token", 0, 0, 1_000_000),
  };
  if (auth.secret_env !== "" && auth.secret_file !== "") {
    r.fail("secret_file", "set either auth.secret_env or auth.secret_file, not both");
  }
  if (auth.required && auth.secret_env === "" && auth.secret_file === "") {
    r.fail(
      "required",
      "auth is required but neither auth.secret_env nor auth.secret_file says where the secret is",
    );
  }
  r.finish();
  return auth;
}

function checkUdp(r: TableReader): UdpConfig {
  const udp: UdpConfig = {
    max_datagram_bytes: r.integer("max_datagram_bytes", 65_507, 1, 65_507),
    max_datagrams_per_sec: r.integer("max_datagrams_per_sec", 1000, 0, 1_000_000),
  };
  r.finish();
  return udp;
}

function checkDns(r: TableReader): DnsConfig {
  const dns: DnsConfig = {
    timeout_ms: r.integer("timeout_ms", 5000, 1, 60_000),
    cache_entries: r.integer("cache_entries", 1024, 0, 1_000_000),
    cache_ttl_secs: r.integer("cache_ttl_secs", 60, 0, 86_400),
  };
  r.finish();
  return dns;
}

function checkTls(r: TableReader): TlsConfig {
  const tls: TlsConfig = {
    ca_files: r.stringList("ca_files", [], (s) => (s === "" ? "must not be empty" : null)),
  };
  r.finish();
  return tls;
}

function checkCluster(r: TableReader): ClusterConfig {
  const word = (s: string) => (/^[\w.:-]{0,64}$/.test(s) ? null : "must be 0-64 of A-Z a-z 0-9 _ . : -");
  const cluster: ClusterConfig = {
    redis: r.string("redis", "", redisUrlProblem),
    password_env: r.string("password_env", "", envNameProblem),
    tls_ca_file: r.string("tls_ca_file", ""),
    key_prefix: r.string("key_prefix", "wasmnet:", word),
    name: r.string("name", "", word),
    lease_secs: r.integer("lease_secs", 30, 1, 3600),
    on_store_failure: r.oneOf("on_store_failure", "local", ["local", "closed"] as const),
    replicas: r.integer("replicas", 1, 1, 100_000),
  };
  r.finish();
  return cluster;
}

/** A `redis://` or `rediss://` URL with a host, optional port and database, and no password or query. */
function redisUrlProblem(text: string): string | null {
  if (text === "") return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text.slice(0, 80))} is not a URL like "redis://127.0.0.1:6379"`;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") return "must start with redis:// or rediss://";
  if (url.username !== "" || url.password !== "") {
    return "must not carry a user or password: name an environment variable in cluster.password_env";
  }
  if (url.search !== "" || url.hash !== "") return "must not have a query or fragment";
  if (url.hostname === "") return "must name a host";
  if (!/^\/?(\d{1,2})?$/.test(url.pathname)) return "database must be a number from 0 to 99";
  return null;
}

function checkWebTransport(r: TableReader): WebTransportConfig {
  const path = (s: string) => (s.includes("\0") ? "must not contain NUL" : null);
  const webtransport: WebTransportConfig = {
    port: r.integer("port", 0, 0, 65535),
    cert: r.string("cert", "", path),
    key: r.string("key", "", path),
    pin_certificate: r.boolean("pin_certificate", true),
    public_host: r.string(
      "public_host",
      "",
      (s) => (/^[\w.:\[\]-]{0,253}$/.test(s) ? null : "must be a host name or IP"),
    ),
  };
  if ((webtransport.cert === "") !== (webtransport.key === "")) {
    r.fail(webtransport.cert === "" ? "cert" : "key", "webtransport.cert and webtransport.key go together");
  }
  if (webtransport.cert === "" && !webtransport.pin_certificate) {
    r.fail(
      "pin_certificate",
      "a generated certificate (no webtransport.cert) is only accepted by its hash: keep it true",
    );
  }
  r.finish();
  return webtransport;
}

function checkWisp(r: TableReader): WispConfig {
  const wisp: WispConfig = { motd: r.string("motd", ""), password_users: r.stringTable("password_users") };
  r.finish();
  return wisp;
}

function checkAdmin(r: TableReader): AdminConfig {
  const admin: AdminConfig = {
    listen: r.string("listen", "", (s) => (s === "" || parseListenAddress(s) ? null : listenProblem(s))),
    token_env: r.string("token_env", "", envNameProblem),
    token_file: r.string("token_file", ""),
  };
  if (admin.token_env !== "" && admin.token_file !== "") {
    r.fail("token_file", "set either admin.token_env or admin.token_file, not both");
  }
  r.finish();
  return admin;
}

/**
 * Reads a listen address: `HOST:PORT`, `[V6]:PORT`, or a bare `PORT`, which means loopback (`127.0.0.1`),
 * so an operator who names only a port never exposes the listener. Null when it is none of those.
 */
export function parseListenAddress(text: string): { hostname: string; port: number } | null {
  const m = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]+)):)?(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { hostname: m[1] ?? m[2] ?? "127.0.0.1", port };
}

function listenProblem(text: string): string {
  return `${JSON.stringify(text)} is not HOST:PORT, [IPv6]:PORT or PORT (0-65535)`;
}

function originProblem(origin: string): string | null {
  if (origin === "*" || origin === "null") return null;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return `"${origin}" is not an origin like "https://app.example.com", "*" or "null"`;
  }
  if (parsed.origin === "null") return `"${origin}" has no origin (use a http: or https: URL)`;
  if (parsed.origin !== origin) return `"${origin}" is not an origin; write it as "${parsed.origin}"`;
  return null;
}

function envNameProblem(name: string): string | null {
  return name === "" || /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)
    ? null
    : `"${name}" is not an environment variable name`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
