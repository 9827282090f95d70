/**
 * `--workers 2`: two isolates share the one port (SO_REUSEPORT), both serve sessions (the admin listener's
 * `/metrics` shows each worker's), the caps hold across them (through Redis, exactly), one SIGHUP reloads
 * both, and one SIGTERM drains both.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnCli } from "../helpers.ts";
import { adminPortOf, startRedis } from "./redis_server.ts";
import { openMany, openSession, type RawSession, statuses } from "./sessions.ts";
import { promtoolCheck } from "../ops/ops_helpers.ts";

/** Sums the samples of `name` per `worker` label in a merged exposition (only those whose labels hold `having`). */
function perWorker(metrics: string, name: string, having = ""): Map<string, number> {
  const sums = new Map<string, number>();
  for (const m of metrics.matchAll(new RegExp(`^${name}\\{worker="(\\d+)"([^}]*)\\} (\\S+)$`, "gm"))) {
    if (m[2].includes(having)) sums.set(m[1], (sums.get(m[1]) ?? 0) + Number(m[3]));
  }
  return sums;
}

Deno.test({
  name:
    "--workers 2: both serve one port, caps hold across them, /metrics covers both, one SIGHUP reloads both, one SIGTERM drains both",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis = await startRedis();
    const dir = await Deno.makeTempDir({ prefix: "wasmnet-workers-" });
    const policy = `${dir}/policy.toml`;
    await Deno.writeTextFile(
      policy,
      `[server]\nmax_sessions = 7\nmax_sessions_per_ip = 3\n[cluster]\nredis = "${redis.url}"\nname = "box"\nreplicas = 2\n`,
    );
    const server = await spawnCli(
      ["--policy", policy, "--workers", "2", "--admin", "127.0.0.1:0", "--drain-timeout", "60"],
      {
        denoFlags: ["--unstable-net", "--allow-net", "--allow-read", "--allow-env", "--allow-sys"],
        // Both lines, in either order: the supervisor's and worker 0's admin listener.
        waitFor: /(?=[\s\S]*2 workers on ws:\/\/\S+)(?=[\s\S]*admin listening on http:\/\/\S+\/)/,
      },
    );
    const adminPort = adminPortOf(server.banner);
    const held: RawSession[] = [];
    try {
      assert.match(server.banner, /shared through Redis as replica box-w0/);
      // Many short sessions: the kernel spreads new connections over both workers.
      for (let i = 0; i < 24; i++) (await openSession(server.port, `127.0.2.${i + 1}`)).close();
      // Caps across the two workers, exactly (the store counts for both).
      const a = await openMany(server.port, "127.0.0.2", 4);
      held.push(...a);
      assert.deepEqual(statuses(a), [101, 101, 101, 429], "per-IP cap 3 across workers");
      const b = await openMany(server.port, "127.0.0.3", 3);
      held.push(...b);
      const c = await openMany(server.port, "127.0.0.4", 3);
      held.push(...c);
      assert.deepEqual(statuses([...b, ...c]), [101, 101, 101, 101, 503, 503], "global cap 7 across workers");

      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      const total = perWorker(metrics, "wasmnet_sessions_total");
      assert.ok((total.get("0") ?? 0) > 0 && (total.get("1") ?? 0) > 0, `both workers served: ${[...total]}`);
      assert.deepEqual([...perWorker(metrics, "wasmnet_cluster_store_up")], [["0", 1], ["1", 1]], "store up");
      const open = perWorker(metrics, "wasmnet_sessions_open");
      assert.equal((open.get("0") ?? 0) + (open.get("1") ?? 0), 7, "every open session is in /metrics");
      const lint = await promtoolCheck(metrics);
      assert.equal(lint.code, 0, `promtool: ${lint.output}`);

      // One SIGHUP reloads both workers: the new caps apply whichever worker takes the connection.
      await Deno.writeTextFile(
        policy,
        `[server]\nmax_sessions = 8\nmax_sessions_per_ip = 4\n[cluster]\nredis = "${redis.url}"\nname = "box"\nreplicas = 2\n`,
      );
      server.child.kill("SIGHUP");
      const deadline = Date.now() + 10_000;
      let reloads = new Map<string, number>();
      while (Date.now() < deadline) {
        const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
        reloads = perWorker(text, "wasmnet_policy_reloads_total", 'result="ok"');
        if (reloads.get("0") === 1 && reloads.get("1") === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual([reloads.get("0"), reloads.get("1")], [1, 1], "both workers reloaded once");
      const fourth = await openSession(server.port, "127.0.0.2");
      held.push(fourth);
      assert.equal(fourth.status, 101, "per-IP cap 4 after the reload");

      // One SIGTERM: both workers drain. New sessions get 503 whichever worker takes them, open ones keep
      // working, and the process exits 0 once the last one has ended.
      const live = held.filter((s) => s.status === 101);
      server.child.kill("SIGTERM");
      const deadline2 = Date.now() + 10_000;
      let refusedByBoth = false;
      while (!refusedByBoth && Date.now() < deadline2) {
        const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
        const refused = perWorker(text, "wasmnet_refusals_total", 'reason="draining"');
        refusedByBoth = (refused.get("0") ?? 0) > 0 && (refused.get("1") ?? 0) > 0;
        if (!refusedByBoth) {
          const late = await openSession(server.port, "127.0.0.9");
          assert.equal(late.status, 503, "a new session while draining");
        }
      }
      assert.ok(refusedByBoth, "both workers refused new sessions while draining");
      assert.ok(live.every((s) => s.open), "open sessions are not cut by the drain");
      live.forEach((s) => s.close());
      assert.equal((await server.child.status).code, 0, "exits once the last session has ended");
      assert.match((await server.output()).stdout, /shut down/);
    } finally {
      held.forEach((s) => s.close());
      await server.stop();
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("--workers without Deno's --unstable-net is a usage error (exit 2), not a crash", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      new URL("../../cli.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--workers",
      "2",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /--unstable-net/);
});

Deno.test({
  name: "--workers 2: SIGINT stops every worker at once (open sessions closed, drain timeout or not)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await spawnCli(["--workers", "2", "--drain-timeout", "600", "--quiet"], {
      denoFlags: ["--unstable-net", "--allow-net", "--allow-read", "--allow-env"],
      waitFor: /2 workers on ws:\/\/\S+/,
    });
    const held: RawSession[] = [];
    try {
      assert.match(server.banner, /each of 2 workers enforces max_sessions 500, max_sessions_per_ip 16/);
      for (let i = 0; i < 8; i++) held.push(await openSession(server.port, `127.0.3.${i + 1}`));
      assert.ok(held.every((s) => s.status === 101));
      server.child.kill("SIGINT");
      await Promise.all(held.map((s) => s.closed)); // closed by the server: a drain would wait 600 s
      assert.equal((await server.child.status).code, 0);
    } finally {
      held.forEach((s) => s.close());
      await server.stop();
    }
  },
});
