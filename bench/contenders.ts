/**
 * The contenders: wasmnet in each framing, its Wisp front end, and the peers it is compared with (direct TCP,
 * the bare relay, the wisp-js server, websockify), each started in its own process; and how the peers are
 * installed (wisp-js from npm into a cache, websockify from Debian).
 *
 * @module
 */

import { directTcp, rawWebSocket, type Transport, wasmnet, wisp } from "./clients.ts";
import { ROOT } from "./config.ts";
import { freePort, type Proc, spawn, waitForPort } from "./procs.ts";

export const CACHE = `${
  Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`
}/wasmnet-bench`;
export const WISPJS = "@mercuryworkshop/wisp-js@0.5.0";

/** Installs wisp-js with npm into the cache (once) and returns its server CLI, or why it cannot. */
export async function wispJsCli(): Promise<string> {
  const cli = `${CACHE}/node_modules/@mercuryworkshop/wisp-js/src/bin/server_cli.mjs`;
  try {
    Deno.statSync(cli);
    return cli;
  } catch {
    // not installed yet
  }
  Deno.mkdirSync(CACHE, { recursive: true });
  console.error(`installing ${WISPJS} into ${CACHE} (npm) ...`);
  const out = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--prefix", CACHE, WISPJS],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`npm install ${WISPJS} failed: ${new TextDecoder().decode(out.stderr)}`);
  return cli;
}

export const WEBSOCKIFY = "/usr/bin/websockify";

/** Installs Debian's websockify (once) when it is missing, as `tools/setup.sh` does for the tests. */
export async function websockifyBin(): Promise<string> {
  try {
    Deno.statSync(WEBSOCKIFY);
    return WEBSOCKIFY;
  } catch {
    // not installed yet
  }
  console.error("installing websockify (apt-get) ...");
  const root = Deno.uid() === 0;
  const run = async (args: string[]) => {
    const cmd = root ? args : ["sudo", ...args];
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  await run(["apt-get", "update", "-q"]);
  await run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "websockify"]);
  return WEBSOCKIFY;
}

export const POLICY =
  `# The benchmark's policy: loopback targets allowed, limits high enough for 10,000 sockets.
[network]
deny = []
allow = ["*"]
max_connections = 20000
max_pending_connects = 2000
[server]
max_sessions = 2000
max_sessions_per_ip = 2000
max_message_bytes = 4194304
`;

// ---------------------------------------------------------------------------------------------- contenders

export interface Running {
  transport: Transport;
  /** The same with a TCP_NODELAY WebSocket client, for round trips (see clients.ts); default `transport`. */
  latency?: Transport;
  proc?: Proc;
  /** The port a wasmnet server listens on (the slow-reader run opens its own client). */
  port?: number;
}

export interface Contender {
  name: string;
  /** Baselines are what the others are compared with. */
  baseline?: boolean;
  start(targetPort: number): Promise<Running>;
  /** No idle-socket workloads (one WebSocket or process per socket). */
  noIdle?: boolean;
  /** No per-process figures (RSS, page faults): its work is not one process's (websockify forks per connection). */
  noMemory?: boolean;
}

export async function startWasmnet(policyPath: string): Promise<{ proc: Proc; port: number }> {
  const port = freePort();
  // WASMNET_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the wasmnet server under test.
  const extra = (Deno.env.get("WASMNET_BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean);
  const proc = spawn(Deno.execPath(), [
    "run",
    ...extra,
    "--allow-net",
    "--allow-read",
    "--allow-env",
    `${ROOT}cli.ts`,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--policy",
    policyPath,
    "--quiet",
  ]);
  await waitForPort(port, proc);
  return { proc, port };
}

export function contenders(policyPath: string): Contender[] {
  const wasmnetVariant = (name: string, framing: "json" | "binary", v2: boolean): Contender => ({
    name,
    async start() {
      const { proc, port } = await startWasmnet(policyPath);
      const url = `ws://127.0.0.1:${port}/`;
      return {
        proc,
        port,
        transport: wasmnet(url, framing, v2),
        latency: wasmnet(url, framing, v2, { nodelay: true }),
      };
    },
  });
  return [
    {
      name: "direct TCP",
      baseline: true,
      noIdle: true,
      noMemory: true,
      start: () => Promise.resolve({ transport: directTcp }),
    },
    {
      name: "bare relay",
      baseline: true,
      noIdle: true,
      async start(target) {
        const port = freePort();
        const proc = spawn(Deno.execPath(), [
          "run",
          "-A",
          `${ROOT}bench/bare_relay.ts`,
          String(port),
          String(target),
        ]);
        await waitForPort(port, proc);
        const url = `ws://127.0.0.1:${port}/`;
        return { proc, transport: rawWebSocket(url), latency: rawWebSocket(url, undefined, true) };
      },
    },
    wasmnetVariant("wasmnet JSON", "json", false),
    wasmnetVariant("wasmnet binary", "binary", false),
    wasmnetVariant("wasmnet v2 (binary+flow)", "binary", true),
    {
      name: "wasmnet over Wisp",
      async start() {
        const { proc, port } = await startWasmnet(policyPath);
        return { proc, transport: wisp(`ws://127.0.0.1:${port}/wisp/`) };
      },
    },
    {
      name: "wisp-js server",
      async start() {
        const cli = await wispJsCli();
        const port = freePort();
        const opts = JSON.stringify({ allow_loopback_ips: true, allow_private_ips: true });
        const proc = spawn("node", [cli, "-H", "127.0.0.1", "-P", String(port), "-L", "NONE", "-O", opts]);
        await waitForPort(port, proc);
        return { proc, transport: wisp(`ws://127.0.0.1:${port}/`) };
      },
    },
    {
      name: "websockify",
      noIdle: true,
      noMemory: true,
      async start(target) {
        const port = freePort();
        const proc = spawn(await websockifyBin(), [`127.0.0.1:${port}`, `127.0.0.1:${target}`]);
        await waitForPort(port, proc);
        const url = `ws://127.0.0.1:${port}/`;
        return {
          proc,
          transport: rawWebSocket(url, ["binary"]),
          latency: rawWebSocket(url, ["binary"], true),
        };
      },
    },
  ];
}
