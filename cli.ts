/**
 * `wasmnet-server`: the command. Parses flags, loads the policy, listens, and shuts down gracefully on
 * SIGINT/SIGTERM (sessions closed with 1001, sockets closed). Usage errors exit 2 with a message.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { loadPolicyFile, Policy, PolicyError } from "./src/policy/mod.ts";
import { fdLimitWarning, Server } from "./src/server.ts";
import { caCertsFor } from "./src/core/sockets/tls.ts";
import { SecretError } from "./src/auth/mod.ts";

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
  -h, --help       show this help
  -V, --version    show the version

Recommended Deno flags (an outer sandbox around the policy):
  deno run --allow-net --deny-net=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,169.254.0.0/16 \\
           --allow-read=policy.toml --allow-env cli.ts --policy policy.toml
`;

/** Runs the CLI with `args`; resolves with the exit code once the server has stopped. */
export async function main(args: string[], signal?: AbortSignal): Promise<number> {
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

  const builder = Server.builder().host(hostname).port(port).policy(policy);
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
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  signal?.addEventListener("abort", onSignal, { once: true });
  try {
    await server.listen({
      signal: shutdown.signal,
      onListen: (addr) => {
        const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
        console.log(`wasmnet-server ${VERSION} listening on ws://${host}:${addr.port}/`);
        console.log(`policy: ${policy.describe()}`);
        const warning = fdLimitWarning(policy);
        if (warning) console.error(`wasmnet-server: ${warning}`);
      },
    });
  } catch (err) {
    console.error(`wasmnet-server: cannot listen on ${hostname}:${port}: ${(err as Error).message}`);
    return 1;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
  console.log("wasmnet-server: shut down");
  return 0;
}

function usageError(message: string): number {
  console.error(`wasmnet-server: ${message}\nRun with --help for usage.`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
