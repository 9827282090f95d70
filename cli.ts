/**
 * `wasmnet-server`: the command. Parses flags, loads the policy, listens. Signals: SIGTERM drains (new
 * sessions refused, open ones finish within `[server] drain_timeout_secs`, then 1001), a second SIGTERM or
 * SIGINT ends at once, SIGHUP reloads the policy file. `wasmnet-server check FILE` validates a policy.
 * Usage errors exit 2 with a message.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadPolicyFile, parseListenAddress, Policy, PolicyError } from "./src/policy/mod.ts";
import { parseHostPort, Server } from "./src/server.ts";
import { fdLimitWarning } from "./src/http/bounds.ts";
import { caCertsFor } from "./src/core/sockets/tls.ts";
import { rateLimitedLog } from "./src/core/log.ts";
import { SecretError } from "./src/auth/mod.ts";
import { loadAdminToken } from "./src/ops/admin.ts";
import { runCheck } from "./src/ops/check.ts";
import { createLogger, type LogFormat, parseLogLevel } from "./src/ops/logger.ts";
import { SERVER_VERSION } from "./src/ops/version.ts";
import { type ClusterSetup, describeShares, openCluster } from "./src/cluster/mod.ts";
import {
  superviseWorkers,
  toSupervisor,
  WorkerChannel,
  type WorkerPlace,
  workerPlace,
} from "./src/cluster/workers.ts";
import { mergeWorkerMetrics } from "./src/cluster/worker_metrics.ts";

/** The version printed by `--version`. */
export const VERSION: string = SERVER_VERSION;

const USAGE = `wasmnet-server ${VERSION}: real TCP for browser WebAssembly, over one WebSocket, under a policy

Usage: wasmnet-server [--host 0.0.0.0] [--port 9000] [--policy FILE | --no-policy] [--admin HOST:PORT]
       wasmnet-server check FILE [--explain HOST:PORT]

Options:
  --host HOST      interface to listen on (default 0.0.0.0)
  --port PORT      port to listen on, 0 for any free port (default 9000)
  --policy FILE    TOML policy file (see policy.example.toml); default: the built-in policy,
                   which blocks private, loopback, link-local and other non-public ranges
  --no-policy      allow every target (only for trusted, local use)
  --admin ADDR     admin listener (/metrics, /healthz, /readyz, /status) on HOST:PORT, or PORT on
                   127.0.0.1; overrides [admin] listen. Off unless asked. Never the public port.
  --drain-timeout SECS  how long SIGTERM lets sessions finish (overrides [server] drain_timeout_secs)
  --log-level L    debug, info (default: decisions, access lines, events), warn, error
  --log-format F   json (default) or text (TIME LEVEL EVENT key=value ...)
  --quiet          do not log decisions
  --webtransport PORT       also serve WebTransport on this UDP port (needs Deno's --unstable-net;
                   without a certificate, a self-signed one valid 13 days is made at start-up)
  --webtransport-cert FILE  certificate chain (PEM) for WebTransport
  --webtransport-key FILE   private key (PEM) for WebTransport
  --workers N      N servers on the one port, one per core ("auto": one per CPU; default 1 or
                   [server] workers); needs Deno's --unstable-net (SO_REUSEPORT). Without
                   [cluster] redis each worker enforces ceil(cap / N) (docs/deployment.md)
  -h, --help       show this help
  -V, --version    show the version

Signals: SIGTERM drains (readyz 503, new sessions 503, open ones finish, then 1001; exit 0),
a second SIGTERM or SIGINT stops at once, SIGHUP re-reads the policy file.

check FILE: validate a policy file as start-up does (exit 0 valid, 1 with the error);
  --explain HOST:PORT also prints the decision for that target and the rule that made it.

Recommended Deno flags (an outer sandbox around the policy):
  deno run --allow-net --deny-net=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,169.254.0.0/16 \\
           --allow-read=policy.toml --allow-env cli.ts --policy policy.toml
`;

/**
 * Runs the CLI with `args`; resolves with the exit code once the server has stopped. `place` is set when
 * this runs as one of `--workers` (src/cluster/workers.ts); then `control` carries the supervisor's relayed
 * signals as `drain` and `reload` events.
 */
export async function main(
  args: string[],
  signal?: AbortSignal,
  place?: WorkerPlace,
  control?: EventTarget,
): Promise<number> {
  if (args[0] === "check") return await checkCommand(args.slice(1));
  let flags;
  try {
    flags = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        policy: { type: "string" },
        "no-policy": { type: "boolean" },
        admin: { type: "string" },
        "drain-timeout": { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        quiet: { type: "boolean" },
        workers: { type: "string" },
        webtransport: { type: "string" },
        "webtransport-cert": { type: "string" },
        "webtransport-key": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    }).values;
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.version) {
    console.log(`wasmnet-server ${VERSION}`);
    return 0;
  }
  if (flags.policy !== undefined && flags["no-policy"]) {
    return usageError("--policy and --no-policy cannot be used together");
  }
  const port = flags.port === undefined ? 9000 : Number(flags.port);
  if (!/^\d{1,5}$/.test(flags.port ?? "0") || port > 65535) {
    return usageError(`--port must be 0-65535, got "${flags.port}"`);
  }
  const hostname = flags.host ?? "0.0.0.0";
  if (hostname.length === 0) return usageError("--host must not be empty");
  const level = parseLogLevel(flags["log-level"] ?? "info");
  if (level === null) {
    return usageError(`--log-level must be debug, info, warn or error, got "${flags["log-level"]}"`);
  }
  const format = flags["log-format"] ?? "json";
  if (format !== "json" && format !== "text") {
    return usageError(`--log-format must be json or text, got "${format}"`);
  }
  const adminFlag = flags.admin === undefined ? undefined : parseListenAddress(flags.admin);
  if (adminFlag === null) {
    return usageError(`--admin must be HOST:PORT, [IPv6]:PORT or PORT, got "${flags.admin}"`);
  }
  const drainFlag = flags["drain-timeout"];
  if (drainFlag !== undefined && !/^\d{1,5}$/.test(drainFlag)) {
    return usageError(`--drain-timeout must be a whole number of seconds, got "${drainFlag}"`);
  }

  let policy: Policy;
  try {
    policy = flags["no-policy"]
      ? Policy.allowAll()
      : flags.policy !== undefined
      ? await loadPolicyFile(flags.policy)
      : Policy.defaults();
  } catch (err) {
    if (err instanceof PolicyError) {
      console.error(`wasmnet-server: ${(err as Error).message}`);
      return 1;
    }
    throw err;
  }

  try {
    await caCertsFor(policy); // a bad [tls] ca_files entry stops startup, not the first connect_tls
  } catch (err) {
    console.error(`wasmnet-server: ${(err as Error).message}`);
    return 1;
  }

  const wt = { ...policy.config.webtransport };
  if (flags.webtransport !== undefined) {
    wt.port = Number(flags.webtransport);
    if (!/^\d{1,5}$/.test(flags.webtransport) || wt.port < 1 || wt.port > 65535) {
      return usageError(`--webtransport must be a UDP port 1-65535, got "${flags.webtransport}"`);
    }
  }
  wt.cert = flags["webtransport-cert"] ?? wt.cert;
  wt.key = flags["webtransport-key"] ?? wt.key;
  if ((wt.cert === "") !== (wt.key === "")) {
    return usageError(
      "--webtransport-cert and --webtransport-key go together (neither: a generated certificate)",
    );
  }

  const workersFlag = flags.workers ?? policy.config.server.workers;
  const workers = workersFlag === "auto" || workersFlag === 0
    ? navigator.hardwareConcurrency
    : Number(workersFlag);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    return usageError(`--workers must be 1-256 or "auto", got "${flags.workers}"`);
  }
  if (workers > 1 && wt.port !== 0) {
    return usageError("--webtransport does not work with --workers yet (one QUIC listener per port)");
  }
  if (workers > 1 && place === undefined) {
    // Deno ends the whole process when reusePort is asked without the flag, so ask first: the flag's other
    // APIs are only there with it.
    if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
      const from = flags.workers === undefined ? "[server] workers" : "--workers";
      return usageError(`${from} ${workers} needs Deno's --unstable-net (SO_REUSEPORT in Deno 2.9.6)`);
    }
    const code = await superviseWorkers({
      entry: new URL(import.meta.url),
      args: args.filter((a, i) =>
        a !== "--workers" && args[i - 1] !== "--workers" && !a.startsWith("--workers=")
      ),
      workers,
      signal,
      onListening: (url, banner) => {
        for (const line of banner) console.log(line);
        console.log(`wasmnet-server: ${workers} workers on ${url}`);
      },
    });
    console.log("wasmnet-server: shut down");
    return code;
  }

  let cluster: ClusterSetup;
  try {
    cluster = await openCluster(
      policy.config.cluster,
      place === undefined ? { workers: 1 } : { workers: place.workers, workerIndex: place.index },
      (notice) => console.error(JSON.stringify({ time: new Date().toISOString(), ...notice })),
    );
  } catch (err) {
    console.error(`wasmnet-server: ${(err as Error).message}`);
    return 1;
  }
  const logger = createLogger({ level, format: format as LogFormat });
  const builder = Server.builder().host(hostname).port(port).policy(policy).cluster(cluster)
    .reusePort(place !== undefined)
    .webtransport(wt)
    .log(flags.quiet ? () => {} : rateLimitedLog(logger.decision)) // lines per session bounded
    .events(logger.log);
  // Sessions are metered only for an access log or the admin listener (no counting otherwise).
  if (logger.enabled("info")) builder.accessLog(logger.access);
  if (flags.policy !== undefined) builder.reloadPath(flags.policy);
  let server: Server;
  try {
    const admin = adminFlag ?? parseListenAddress(policy.config.admin.listen);
    // Under --workers only worker 0 serves the admin listener (its port is not shared); its /metrics
    // covers every worker, labelled by `worker` (src/cluster/worker_metrics.ts).
    if (admin && (place === undefined || place.index === 0)) {
      builder.admin(admin.hostname, admin.port, loadAdminToken(policy.config.admin));
    }
    server = builder.build(); // reads the [auth] secret, if any
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
    console.error(`wasmnet-server: ${err.message}`);
    return 1;
  }
  if (control instanceof WorkerChannel) {
    // Every worker answers for its own metrics; worker 0's admin listener serves them all, by `worker`.
    const own = server;
    control.setRenderer(() => own.metrics?.render() ?? Promise.resolve(""));
    if (place?.index === 0) own.setMetricsSource(async () => mergeWorkerMetrics(await control.gather()));
  }

  const shutdown = new AbortController();
  const drainMs = drainFlag === undefined ? undefined : Number(drainFlag) * 1000;
  const stopNow = () => shutdown.abort();
  const onTerm = () => server.draining ? stopNow() : server.drain(drainMs).then(stopNow);
  const onHup = () => void server.reload();
  // Under --workers the supervisor owns the signals and relays them as `control` events.
  const listeners: [Deno.Signal, () => void][] = place !== undefined
    ? []
    : Deno.build.os === "windows"
    ? [["SIGINT", stopNow]]
    : [["SIGINT", stopNow], ["SIGTERM", onTerm], ["SIGHUP", onHup]];
  for (const [s, f] of listeners) Deno.addSignalListener(s, f);
  control?.addEventListener("drain", onTerm);
  control?.addEventListener("stop", stopNow);
  control?.addEventListener("reload", onHup);
  signal?.addEventListener("abort", stopNow, { once: true });
  try {
    await server.listen({
      signal: shutdown.signal,
      onListen: (addr, webtransport) => {
        const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
        const url = `ws://${host}:${addr.port}/`;
        const banner = [
          `wasmnet-server ${VERSION} listening on ${url}`,
          `policy: ${policy.describe()}`,
          `limits: ${describeShares(policy.config, cluster)}`,
        ];
        if (webtransport) {
          banner.push(
            `webtransport: udp port ${webtransport.port}, certificate sha-256 ${webtransport.certificateHash}` +
              (webtransport.generatedUntil
                ? ` (generated, self-signed, valid until ${webtransport.generatedUntil}: restart before then)`
                : ""),
          );
        }
        if (place === undefined) { for (const line of banner) console.log(line); }
        else toSupervisor({ type: "listening", url, port: addr.port, banner });
        // One line on stderr when `ulimit -n` is below what the caps can use (src/http/bounds.ts).
        const warning = fdLimitWarning(policy, flags.policy);
        if (warning) console.error(`wasmnet-server: ${warning}`);
      },
      onAdminListen: (addr) => {
        const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
        console.log(`admin listening on http://${host}:${addr.port}/ (metrics, healthz, readyz, status)`);
      },
    });
  } catch (err) {
    console.error(`wasmnet-server: cannot listen on ${hostname}:${port}: ${(err as Error).message}`);
    return 1;
  } finally {
    for (const [s, f] of listeners) Deno.removeSignalListener(s, f);
    control?.removeEventListener("drain", onTerm);
    control?.removeEventListener("stop", stopNow);
    control?.removeEventListener("reload", onHup);
    await cluster.shared?.close();
  }
  if (place === undefined) console.log("wasmnet-server: shut down");
  return 0;
}

/** `check FILE [--explain HOST:PORT]`. */
async function checkCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { explain: { type: "string" } },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (parsed.positionals.length !== 1) {
    return usageError("check takes one policy file: check FILE [--explain HOST:PORT]");
  }
  let explain;
  if (parsed.values.explain !== undefined) {
    try {
      explain = parseHostPort(parsed.values.explain);
    } catch {
      return usageError(`--explain must be HOST:PORT or [IPv6]:PORT, got "${parsed.values.explain}"`);
    }
  }
  return await runCheck(parsed.positionals[0], explain && { host: explain.hostname, port: explain.port });
}

/**
 * One of `--workers`: runs {@link main} with the supervisor's arguments. Its relayed signals arrive as
 * messages: `drain` drains (a second one stops at once), `stop` stops at once, `reload` re-reads the policy
 * file.
 */
async function runAsWorker(place: WorkerPlace): Promise<void> {
  const channel = new WorkerChannel();
  const code = await main(place.args, undefined, place, channel);
  toSupervisor({ type: "stopped", code });
}

function usageError(message: string): number {
  console.error(`wasmnet-server: ${message}\nRun with --help for usage.`);
  return 2;
}

if (import.meta.main) {
  const place = workerPlace();
  if (place !== null) await runAsWorker(place);
  else Deno.exit(await main(Deno.args));
}
