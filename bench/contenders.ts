/**
 * The contenders: wasmnet in each framing, its Wisp front end, and the peers it is compared with (direct TCP,
 * the bare relay, the wisp-js server, websockify), each started in its own process; and how the peers are
 * installed (wisp-js from npm into a cache, websockify from Debian).
 *
 * @module
 */

import { directTcp, rawWebSocket, type Transport, wasmnet, wisp } from "./clients.ts";
import { ROOT } from "./config.ts";
import { POLICY, startWasmnet, websockifyBin, wispJsCli } from "./peers.ts";
import { freePort, type Proc, spawn, waitForPort } from "./procs.ts";

export { POLICY, startWasmnet };

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
