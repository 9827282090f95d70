/**
 * Debian's `haproxy` in front of replicas, run from the configuration docs/deployment.md publishes
 * (docs/deploy/haproxy.cfg, placeholders filled in), on a free port; stopped by the test. It starts once
 * every replica passes its `/readyz` check, so the tests see all of them in rotation.
 *
 * @module
 */

import { spawnOnFreePort } from "./redis_server.ts";

/** A running haproxy. */
export interface TestHaproxy {
  port: number;
  stop(): Promise<void>;
}

const CONFIG = new URL("../../docs/deploy/haproxy.cfg", import.meta.url);

/** A replica behind the balancer: its WebSocket port and its admin port (health checks on `/readyz`). */
export interface Backend {
  port: number;
  admin: number;
}

/** The published config with `${FRONTEND}` and `${SERVERS}` filled in. */
export async function haproxyConfig(frontend: string, backends: Backend[]): Promise<string> {
  const template = await Deno.readTextFile(CONFIG);
  const servers = backends.map((b, i) => `    server r${i + 1} 127.0.0.1:${b.port} check port ${b.admin}`)
    .join("\n");
  return template.replace("${FRONTEND}", frontend).replace("${SERVERS}", servers);
}

/** Starts haproxy (foreground, `-db`) balancing over `backends` (ports on 127.0.0.1). */
export async function startHaproxy(backends: Backend[], balance?: string): Promise<TestHaproxy> {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-haproxy-" });
  const { port, child } = await spawnOnFreePort(async (port) => {
    let config = await haproxyConfig(`127.0.0.1:${port}`, backends);
    if (balance) config = config.replace(/balance \w+/, `balance ${balance}`);
    await Deno.writeTextFile(`${dir}/haproxy.cfg`, config);
    const check = await new Deno.Command("haproxy", { args: ["-c", "-q", "-f", `${dir}/haproxy.cfg`] })
      .output();
    if (!check.success) {
      throw new Error(`haproxy -c refused the config: ${new TextDecoder().decode(check.stderr)}`);
    }
    return new Deno.Command("haproxy", {
      args: ["-db", "-f", `${dir}/haproxy.cfg`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  });
  return {
    port,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone
      }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
