import assert from "node:assert/strict";
import { DEFAULT_DENY, loadPolicyFile, Policy, PolicyError } from "./mod.ts";

/** Asserts that `build` throws a PolicyError whose message names every one of `mentions`. */
function assertPolicyError(
  build: () => unknown,
  key: string | undefined,
  ...mentions: string[]
): PolicyError {
  let error: unknown;
  try {
    build();
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof PolicyError, `expected a PolicyError, got ${error}`);
  assert.equal(error.key, key);
  for (const text of mentions) {
    assert.ok(error.message.includes(text), `${error.message} should mention ${text}`);
  }
  return error;
}

Deno.test("defaults: every key filled in", () => {
  const { config, source } = Policy.defaults();
  assert.equal(source, "built-in default");
  assert.deepEqual(config.network.deny, DEFAULT_DENY);
  assert.deepEqual(config.network.allow, ["*"]);
  assert.deepEqual(config.network.bind_ports, [{ first: 1024, last: 65535 }]);
  assert.equal(config.network.bind_addrs, null);
  assert.equal(config.network.max_connections, 50);
  assert.equal(config.network.max_listeners, 8);
  assert.equal(config.network.max_pending_connects, 8);
  assert.equal(config.network.connection_timeout_secs, 30);
  assert.equal(config.network.max_bandwidth_mbps, 0);
  assert.equal(config.network.socket_idle_timeout_secs, 0);
  assert.deepEqual(config.server, {
    allowed_origins: ["*"],
    require_origin: false,
    max_sessions: 1000,
    max_sessions_per_ip: 32,
    max_message_bytes: 1_048_576,
    session_idle_timeout_secs: 0,
    header_timeout_secs: 10,
    max_handshakes: 1024,
    max_handshakes_per_ip: 8,
    send_timeout_secs: 60,
    trusted_proxies: [],
    drain_timeout_secs: 30,
    workers: 1,
  });
  assert.deepEqual(config.admin, { listen: "", token_env: "", token_file: "" });
  assert.deepEqual(config.auth, {
    required: false,
    secret_env: "",
    secret_file: "",
    max_sessions_per_token: 0,
  });
  assert.equal(config.network.max_bandwidth_mbps_per_ip, 0);
  assert.deepEqual(config.cluster, {
    redis: "",
    password_env: "",
    tls_ca_file: "",
    key_prefix: "wasmnet:",
    name: "",
    lease_secs: 30,
    on_store_failure: "local",
    replicas: 1,
  });
  assert.deepEqual(config.udp, { max_datagram_bytes: 65_507, max_datagrams_per_sec: 1000 });
  assert.deepEqual(config.dns, { timeout_ms: 5000, cache_entries: 1024, cache_ttl_secs: 60 });
  assert.deepEqual(config.tls, { ca_files: [] });
  assert.ok(Object.isFrozen(config.network.deny));
});

Deno.test("an empty file is the default policy; the example file parses", async () => {
  assert.deepEqual(Policy.fromToml("", "empty.toml").config, Policy.defaults().config);
  const example = await Deno.readTextFile(new URL("../../policy.example.toml", import.meta.url)).catch(() =>
    null
  );
  if (example !== null) {
    assert.deepEqual(Policy.fromToml(example, "policy.example.toml").config, Policy.defaults().config);
  }
});

Deno.test("policy.example.toml documents every key of every section", async () => {
  const example = await Deno.readTextFile(new URL("../../policy.example.toml", import.meta.url));
  const sections = Policy.defaults().config as unknown as Record<string, Record<string, unknown>>;
  for (const [section, keys] of Object.entries(sections)) {
    const start = example.indexOf(`\n[${section}]\n`);
    assert.ok(start >= 0, `policy.example.toml has no [${section}]`);
    const next = example.slice(start + 1).search(new RegExp(`\\n\\[(?!${section}\\.)`));
    const body = next < 0 ? example.slice(start) : example.slice(start, start + 1 + next);
    for (const key of Object.keys(keys)) {
      assert.ok(
        new RegExp(`^(# )?${key} *=`, "m").test(body) /* commented: a default that depends on the host */ ||
          body.includes(`\n[${section}.${key}]\n`),
        `policy.example.toml [${section}] does not document ${key}`,
      );
    }
  }
});

Deno.test("a full file is read key by key", () => {
  const policy = Policy.fromToml(
    `
[network]
deny = ["*", "10.0.0.0/8"]
allow = ["example.com", "[2001:db8::/32]:443"]
bind_ports = [8080, "9000-9100"]
bind_addrs = ["127.0.0.1", "::1"]
max_connections = 10
max_listeners = 0
max_pending_connects = 2
connection_timeout_secs = 5
max_bandwidth_mbps = 100
socket_idle_timeout_secs = 600
[server]
allowed_origins = ["https://app.example.com", "null"]
require_origin = true
max_sessions = 10
max_sessions_per_ip = 2
max_message_bytes = 1024
session_idle_timeout_secs = 60
[auth]
required = true
secret_env = "WASMNET_SECRET"
[udp]
max_datagram_bytes = 1200
max_datagrams_per_sec = 0
[dns]
timeout_ms = 100
cache_entries = 0
cache_ttl_secs = 0
[tls]
ca_files = ["ca.pem"]
`,
    "full.toml",
  );
  const { network, server, auth, udp, dns, tls } = policy.config;
  assert.deepEqual(network.deny, ["*", "10.0.0.0/8"]);
  assert.deepEqual(network.bind_ports, [{ first: 8080, last: 8080 }, { first: 9000, last: 9100 }]);
  assert.deepEqual(network.bind_addrs, ["127.0.0.1", "::1"]);
  assert.equal(network.max_listeners, 0);
  assert.equal(server.require_origin, true);
  assert.equal(auth.secret_env, "WASMNET_SECRET");
  assert.equal(udp.max_datagrams_per_sec, 0);
  assert.equal(dns.cache_entries, 0);
  assert.deepEqual(tls.ca_files, ["ca.pem"]);
  assert.equal(policy.source, "full.toml");
  assert.equal(policy.rules.allow[1].label, `network.allow[1] "[2001:db8::/32]:443"`);
});

Deno.test("deny: omitted means DEFAULT_DENY, [] means none", () => {
  assert.deepEqual(Policy.fromToml(`[network]\nallow = ["*"]`).config.network.deny, DEFAULT_DENY);
  assert.deepEqual(Policy.fromToml(`[network]\ndeny = []`).config.network.deny, []);
  assert.deepEqual(Policy.fromConfig({ network: { allow: ["*"] } }).config.network.deny, DEFAULT_DENY);
});

Deno.test("a checked config can be passed back into fromConfig", () => {
  const policy = Policy.fromToml(`[network]\nbind_ports = "3000-3100,8080"\nbind_addrs = ["0.0.0.0"]`);
  assert.deepEqual(Policy.fromConfig(policy.config).config, policy.config);
  assert.deepEqual(Policy.fromConfig(Policy.defaults().config).config, Policy.defaults().config);
});

Deno.test("schema errors name the source, the key and the value", () => {
  const cases: [string, string | undefined, string[]][] = [
    [`[network]\nmax_connections = 1.5`, "network.max_connections", ["1.5", "integer"]],
    [`[network]\nmax_connections = 50.0`, "network.max_connections", ["50.0", "float"]],
    [`[network]\nmax_connections = "50"`, "network.max_connections", [`"50"`]],
    [`[network]\nmax_connections = 0`, "network.max_connections", ["0"]],
    [`[network]\nmax_connections = -1`, "network.max_connections", ["-1"]],
    [`[network]\nmax_conections = 5`, "network.max_conections", ["unknown key", "max_connections"]],
    [`[netwerk]\nallow = []`, "netwerk", ["unknown section"]],
    [`network = 5`, "network", ["table"]],
    [`[network]\ndeny = "10.0.0.0/8"`, "network.deny", ["array"]],
    [`[network]\ndeny = [10]`, "network.deny[0]", ["string"]],
    [`[network]\ndeny = ["10.0.0.0/8", "10.0.0.0/33"]`, "network.deny[1]", ["10.0.0.0/33"]],
    [`[network]\nallow = ["exa mple.com"]`, "network.allow[0]", ["exa mple.com"]],
    [`[network]\nbind_ports = "9999-3000"`, "network.bind_ports", ["9999-3000"]],
    [`[network]\nbind_ports = 0`, "network.bind_ports", ["0"]],
    [`[network]\nbind_ports = 1.5`, "network.bind_ports", ["float"]],
    [`[network]\nbind_addrs = ["example.com"]`, "network.bind_addrs[0]", ["example.com"]],
    [`[network]\nbind_addrs = ["10.0.0.0/8:80"]`, "network.bind_addrs[0]", ["10.0.0.0/8:80"]],
    [`[server]\nallowed_origins = ["https://app.example.com/"]`, "server.allowed_origins[0]", [
      "https://app.example.com",
    ]],
    [`[server]\nallowed_origins = ["app.example.com"]`, "server.allowed_origins[0]", ["app.example.com"]],
    [`[server]\nrequire_origin = "yes"`, "server.require_origin", [`"yes"`]],
    [`[server]\nmax_message_bytes = 100`, "server.max_message_bytes", ["1024"]],
    [`[auth]\nrequired = true`, "auth.required", ["secret_env"]],
    [`[auth]\nsecret_env = "A"\nsecret_file = "b"`, "auth.secret_file", ["not both"]],
    [`[auth]\nsecret_env = "MY-SECRET"`, "auth.secret_env", ["MY-SECRET"]],
    [`[udp]\nmax_datagram_bytes = 70000`, "udp.max_datagram_bytes", ["70000"]],
    [`[dns]\ntimeout_ms = 0`, "dns.timeout_ms", ["0"]],
    [`[tls]\nca_files = [""]`, "tls.ca_files[0]", ["empty"]],
    [`[tls]\nca_files = "a.pem"`, "tls.ca_files", ["array"]],
    [`[network]\nmax_connections = 1979-05-27`, "network.max_connections", ["date"]],
    [`[network`, undefined, ["TOML", "line 1"]],
  ];
  for (const [text, key, mentions] of cases) {
    const error = assertPolicyError(() => Policy.fromToml(text, "my.toml"), key, "my.toml", ...mentions);
    assert.equal(error.source, "my.toml");
  }
});

Deno.test("a bad rule names the rule", () => {
  const error = assertPolicyError(
    () => Policy.fromToml(`[network]\nallow = ["*", "10.0.0.1/8"]`, "p.toml"),
    "network.allow[1]",
    "p.toml",
  );
  assert.equal(error.rule, "10.0.0.1/8");
});

Deno.test("fromConfig runs the same checks", () => {
  const bad = { network: { max_connections: 1.5 } };
  assertPolicyError(() => Policy.fromConfig(bad), "network.max_connections", "config object", "1.5");
  assertPolicyError(() => Policy.fromConfig({ network: { allow: ["10.0.0.0/33"] } }), "network.allow[0]");
  const unknownKey = { network: { alow: ["*"] } } as unknown as Parameters<typeof Policy.fromConfig>[0];
  assertPolicyError(() => Policy.fromConfig(unknownKey), "network.alow");
  assertPolicyError(
    () => Policy.fromConfig(null as unknown as Parameters<typeof Policy.fromConfig>[0]),
    undefined,
  );
});

Deno.test("describe: one line for the startup log", () => {
  assert.equal(
    Policy.fromToml(
      `[network]\nbind_ports = "3000-9999"\ndeny = ["10.0.0.0/8", "127.0.0.0/8"]`,
      "policy.toml",
    ).describe(),
    "policy.toml: deny 2 rules, allow 1 rule (*), bind ports 3000-9999, max 50 sockets/session",
  );
  assert.equal(
    Policy.fromConfig({
      network: { deny: ["*"], allow: ["a.com", "b.com", "c.com", "d.com"], bind_ports: [] },
    })
      .describe(),
    "config object: deny 1 rule (deny-by-default), allow 4 rules (a.com, b.com, c.com, …), bind ports none, " +
      "max 50 sockets/session",
  );
  assert.match(Policy.allowAll().describe(), /^--no-policy: everything allowed/);
  assert.match(
    Policy.defaults().describe(),
    new RegExp(`^built-in default: deny ${DEFAULT_DENY.length} rules`),
  );
});

Deno.test("DEFAULT_DENY: every rule parses", () => {
  for (const rule of DEFAULT_DENY) Policy.fromConfig({ network: { deny: [rule] } });
});

const canRead = Deno.permissions.querySync({ name: "read" }).state === "granted";
const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted";

Deno.test({
  name: "loadPolicyFile: reads a file, names it in errors",
  ignore: !canRead || !canWrite,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const good = `${dir}/good.toml`;
      await Deno.writeTextFile(good, `[network]\nmax_connections = 7\n`);
      const policy = await loadPolicyFile(good);
      assert.equal(policy.source, good);
      assert.equal(policy.config.network.max_connections, 7);

      const bad = `${dir}/bad.toml`;
      await Deno.writeTextFile(bad, `[network]\nmax_connections = 7.5\n`);
      await assert.rejects(
        loadPolicyFile(bad),
        (err) => err instanceof PolicyError && err.message.startsWith(bad),
      );
      await assert.rejects(
        loadPolicyFile(`${dir}/missing.toml`),
        (err) =>
          err instanceof PolicyError && err.source === `${dir}/missing.toml` && /not found/.test(err.message),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("server.trusted_proxies: addresses and ranges only, parsed into rules", () => {
  const policy = Policy.fromToml(`[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]`, "p.toml");
  assert.deepEqual(policy.config.server.trusted_proxies, ["127.0.0.1", "10.0.0.0/8", "::1"]);
  assert.equal(policy.rules.trustedProxies.length, 3);
  assert.deepEqual(Policy.defaults().config.server.trusted_proxies, []);
  for (const bad of ["*", "proxy.example.com", "10.0.0.0/8:80"]) {
    assertPolicyError(
      () => Policy.fromToml(`[server]\ntrusted_proxies = ["127.0.0.1", ${JSON.stringify(bad)}]`, "p.toml"),
      "server.trusted_proxies[1]",
      "IP addresses or CIDR ranges",
    );
  }
  assertPolicyError(
    () => Policy.fromToml(`[server]\ntrusted_proxies = ["10.0.0.1/8"]`, "p.toml"),
    "server.trusted_proxies[0]",
    "host bits",
  );
});

Deno.test("[cluster]: a redis URL without secrets, failure modes, workers as a count or auto", () => {
  const ok = Policy.fromToml(
    `[server]\nworkers = "auto"\n[cluster]\nredis = "rediss://cache.internal:6380/2"\npassword_env = "REDIS_PW"\n` +
      `lease_secs = 10\non_store_failure = "closed"\nreplicas = 6\nname = "edge-1"`,
    "c.toml",
  ).config;
  assert.equal(ok.server.workers, 0);
  assert.equal(ok.cluster.redis, "rediss://cache.internal:6380/2");
  assert.equal(ok.cluster.on_store_failure, "closed");
  assert.equal(Policy.fromConfig({ server: { workers: 4 } }).config.server.workers, 4);
  const bad = (toml: string, key: string, ...mentions: string[]) =>
    assertPolicyError(() => Policy.fromToml(toml, "c.toml"), key, ...mentions);
  bad(`[cluster]\nredis = "redis://:hunter2@127.0.0.1:6379"`, "cluster.redis", "password_env");
  bad(`[cluster]\nredis = "redis://u:p@127.0.0.1"`, "cluster.redis", "password");
  bad(`[cluster]\nredis = "http://127.0.0.1:6379"`, "cluster.redis", "redis://");
  bad(`[cluster]\nredis = "redis://127.0.0.1:6379?enableOfflineQueue=true"`, "cluster.redis", "query");
  bad(`[cluster]\nredis = "redis://127.0.0.1:6379/x"`, "cluster.redis", "database");
  bad(`[cluster]\non_store_failure = "open"`, "cluster.on_store_failure", '"local", "closed"');
  bad(`[cluster]\nlease_secs = 0`, "cluster.lease_secs", "1 to 3600");
  bad(`[cluster]\npassword_env = "not a name"`, "cluster.password_env");
  bad(`[server]\nworkers = "many"`, "server.workers", "auto");
  bad(`[server]\nworkers = 300`, "server.workers", "0 to 256");
  bad(`[cluster]\nredis_url = "redis://x"`, "cluster.redis_url", "unknown key");
});

Deno.test("[webtransport]: off by default; cert and key go together; keys are checked", () => {
  assert.deepEqual(Policy.defaults().config.webtransport, {
    port: 0,
    cert: "",
    key: "",
    pin_certificate: true,
    public_host: "",
  });
  const on = Policy.fromToml(
    `[webtransport]\nport = 9443\ncert = "c.pem"\nkey = "k.pem"\npin_certificate = false\npublic_host = "wt.example"`,
    "p.toml",
  );
  assert.deepEqual(on.config.webtransport, {
    port: 9443,
    cert: "c.pem",
    key: "k.pem",
    pin_certificate: false,
    public_host: "wt.example",
  });
  const bad: [string, RegExp][] = [
    [`[webtransport]\nport = 9443\ncert = "c.pem"`, /webtransport\.key.*go together/],
    [`[webtransport]\nport = 9443\npin_certificate = false`, /webtransport\.pin_certificate/],
    [`[webtransport]\nport = 70000\ncert = "c"\nkey = "k"`, /webtransport\.port/],
    [`[webtransport]\nport = "9443"`, /webtransport\.port/],
    [`[webtransport]\npublic_host = "a b"`, /webtransport\.public_host/],
    [`[webtransport]\ncertificate = "c.pem"`, /webtransport\.certificate/],
  ];
  for (const [toml, message] of bad) {
    assert.throws(
      () => Policy.fromToml(toml, "p.toml"),
      (e: Error) => e instanceof PolicyError && message.test(e.message),
      toml,
    );
  }
});
