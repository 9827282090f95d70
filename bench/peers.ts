/**
 * The peers wasmnet is compared with, and how they are installed (wisp-js from npm into a cache, websockify
 * from Debian), plus the bench's policy: shared by the loopback bench and the browser bench, with no
 * command-line state (so either may import it).
 *
 * @module
 */

import { freePort, type Proc, spawn, waitForPort } from "./procs.ts";

/** Where the bench installs its npm peers. */
export const CACHE = `${
  Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`
}/wasmnet-bench`;
/** The wisp-js version compared with. */
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

/** Debian's websockify. */
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

/** The benchmark's policy: loopback allowed, limits well above the work. */
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

/** Starts `cli.ts` on a free port with `--quiet` and `extra` flags; resolves once it listens. */
export async function startWasmnet(
  policyPath: string,
  extra: string[] = [],
): Promise<{ proc: Proc; port: number }> {
  const port = freePort();
  // WASMNET_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the wasmnet server under test.
  const denoFlags = (Deno.env.get("WASMNET_BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean);
  const proc = spawn(Deno.execPath(), [
    "run",
    ...denoFlags,
    "--allow-net",
    "--allow-read",
    "--allow-env",
    new URL("../cli.ts", import.meta.url).pathname,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--policy",
    policyPath,
    "--quiet",
    ...extra,
  ]);
  await waitForPort(port, proc);
  return { proc, port };
}
