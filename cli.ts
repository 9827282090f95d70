/**
 * `wasmnet-server`: the command. Parses flags, loads the policy, listens, and shuts down gracefully on
 * SIGINT/SIGTERM (sessions closed with 1001, sockets closed). Usage errors exit 2 with a message.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { loadPolicyFile, Policy, PolicyError } from "./src/policy/mod.ts";
import { Server } from "./src/server.ts";
import { caCertsFor } from "./src/core/sockets/tls.ts";
import { SecretError } from "./src/auth/mod.ts";
import { type ClusterSetup, describeShares, openCluster } from "./src/cluster/mod.ts";
import {
  onSupervisor,
  superviseWorkers,
  toSupervisor,
  type WorkerPlace,
  workerPlace,
} from "./src/cluster/workers.ts";

/** The version printed by `--version`. */
export const VERSION: string = denoJson.version;

const USAGE = `wasmnet-server ${VERSION}: real TCP for browser WebAssembly, over one WebSocket, under a policy

Usage: wasmnet-server [--host 0.0.0.0] [--port 9000] [--policy FILE | --no-policy]

Options:
  --host HOST      interface to listen on (default 0.0.0.0)
  --port PORT      port to listen on, 0 for any free port (default 9000)
  --policy FILE    TOML policy file (see policy.example.toml); default: the built-in policy,
                   which blocks private, loopback, link-local and other non-public ranges
  --no-policy      allow every target (only for trusted, local use)
  --quiet          do not log decisions (one JSON line per connect/bind/refusal otherwise)
  --webtransport PORT       also serve WebTransport on this UDP port (needs Deno's --unstable-net,
                   --webtransport-cert and --webtransport-key, or [webtransport] in the policy)
  --webtransport-cert FILE  certificate chain (PEM) for WebTransport
  --webtransport-key FILE   private key (PEM) for WebTransport
  --workers N      N servers on the one port, one per core ("auto": one per CPU; default 1 or
                   [server] workers); needs Deno's --unstable-net (SO_REUSEPORT). Without
                   [cluster] redis each worker enforces ceil(cap / N) (docs/deployment.md)
  -h, --help       show this help
  -V, --version    show the version

Recommended Deno flags (an outer sandbox around the policy):
  deno run --allow-net --deny-net=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,169.254.0.0/16 \\
           --allow-read=policy.toml --allow-env cli.ts --policy policy.toml
`;

/**
 * Runs the CLI with `args`; resolves with the exit code once the server has stopped. `place` is set when
 * this runs as one of `--workers` (src/cluster/workers.ts).
 */
export async function main(args: string[], signal?: AbortSignal, place?: WorkerPlace): Promise<number> {
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
  if (wt.port !== 0 && (wt.cert === "" || wt.key === "")) {
    return usageError("WebTransport needs --webtransport-cert and --webtransport-key (PEM files)");
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
    return await superviseWorkers({
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
  const builder = Server.builder().host(hostname).port(port).policy(policy).cluster(cluster)
    .reusePort(place !== undefined).webtransport(wt);
  if (flags.quiet) builder.log(() => {});
  let server: Server;
  try {
    server = builder.build(); // reads the [auth] secret, if any
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
    console.error(`wasmnet-server: ${err.message}`);
    return 1;
  }

  const shutdown = new AbortController();
  const onSignal = () => shutdown.abort();
  // Under --workers the supervisor owns the signals and relays them (src/cluster/workers.ts).
  const signals: Deno.Signal[] = place !== undefined
    ? []
    : Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  signal?.addEventListener("abort", onSignal, { once: true });
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
            `webtransport: udp port ${webtransport.port}, certificate sha-256 ${webtransport.certificateHash}`,
          );
        }
        if (place === undefined) { for (const line of banner) console.log(line); }
        else toSupervisor({ type: "listening", url, port: addr.port, banner });
      },
    });
  } catch (err) {
    console.error(`wasmnet-server: cannot listen on ${hostname}:${port}: ${(err as Error).message}`);
    return 1;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    await cluster.shared?.close();
  }
  if (place === undefined) console.log("wasmnet-server: shut down");
  return 0;
}

/** One of `--workers`: runs {@link main} with the supervisor's arguments; "drain" from it stops the server. */
async function runAsWorker(place: WorkerPlace): Promise<void> {
  const drain = new AbortController();
  onSupervisor((message) => {
    if (message.type === "drain") drain.abort();
  });
  const code = await main(place.args, drain.signal, place);
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
