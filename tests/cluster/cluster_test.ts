/**
 * End to end on loopback: Debian's haproxy (the published config, `option forwardfor`) in front of three
 * wasmnet replicas sharing one redis-server, all started here on free ports and stopped here. Clients come
 * from several source addresses (127.0.0.2, .3, .4) so the per-IP cap counts the browser's address that
 * haproxy forwarded (`trusted_proxies`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliProcess, spawnCli } from "../helpers.ts";
import { startRedis, type TestRedis, waitForLeases } from "./redis_server.ts";
import { startHaproxy, type TestHaproxy } from "./haproxy.ts";
import { openMany, openSession, openWhenAdmitted, type RawSession, statuses } from "./sessions.ts";
import { importHs256Key, signHs256 } from "../../src/auth/mod.ts";

const LEASE_SECS = 2;
const SECRET = "cluster-test-secret-0123456789abcdef";

interface Deployment {
  redis: TestRedis;
  replicas: CliProcess[];
  haproxy: TestHaproxy;
  stop(): Promise<void>;
}

async function deploy(onStoreFailure: "local" | "closed", count = 3): Promise<Deployment> {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-cluster-" });
  Deno.env.set("WASMNET_CLUSTER_TEST_SECRET", SECRET);
  const replicas: CliProcess[] = [];
  for (let i = 1; i <= count; i++) {
    const file = `${dir}/r${i}.toml`;
    await Deno.writeTextFile(
      file,
      `[server]
max_sessions = 7
max_sessions_per_ip = 3
trusted_proxies = ["127.0.0.1"]

[auth]
secret_env = "WASMNET_CLUSTER_TEST_SECRET"
max_sessions_per_token = 2

[cluster]
redis = "${redis.url}"
name = "r${i}"
lease_secs = ${LEASE_SECS}
on_store_failure = "${onStoreFailure}"
replicas = ${count}
`,
    );
    replicas.push(await spawnCli(["--policy", file, "--quiet"]));
  }
  const haproxy = await startHaproxy(replicas.map((r) => r.port), "roundrobin");
  return {
    redis,
    replicas,
    haproxy,
    async stop() {
      await haproxy.stop();
      for (const r of replicas) await r.stop();
      await redis.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const closeAll = (sessions: RawSession[]) => sessions.forEach((s) => s.close());

Deno.test({
  name: "cluster: per-IP cap 3 and global cap 7 hold exactly across three replicas; a token's cap holds",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const d = await deploy("local");
    const held: RawSession[] = [];
    try {
      const a = await openMany(d.haproxy.port, "127.0.0.2", 4);
      held.push(...a);
      assert.deepEqual(statuses(a), [101, 101, 101, 429], "per-IP cap 3 across replicas");
      const b = await openMany(d.haproxy.port, "127.0.0.3", 4);
      held.push(...b);
      assert.deepEqual(statuses(b), [101, 101, 101, 429]);
      const c = await openMany(d.haproxy.port, "127.0.0.4", 2);
      held.push(...c);
      assert.deepEqual(statuses(c), [101, 503], "global cap 7 across replicas");
      // One ends: its slot is given back to the whole deployment.
      a[0].close();
      const again = await openWhenAdmitted(d.haproxy.port, "127.0.0.4", 5000);
      held.push(again.session);
      assert.equal(again.session.status, 101);
      closeAll(held);
      held.length = 0;

      // A token's cap (2) holds whichever replica its sessions land on, and whatever address they come from.
      const exp = Math.floor(Date.now() / 1000) + 600;
      const key = await importHs256Key(new TextEncoder().encode(SECRET));
      const token = await signHs256({ sub: "user-42", exp }, key);
      const path = `/?token=${token}`;
      await waitForLeases(d.redis, 0);
      const t = [
        await openSession(d.haproxy.port, "127.0.0.5", path),
        await openSession(d.haproxy.port, "127.0.0.6", path),
        await openSession(d.haproxy.port, "127.0.0.7", path),
      ];
      held.push(...t);
      assert.deepEqual(statuses(t), [101, 101, 429], "max_sessions_per_token = 2 across replicas");
    } finally {
      closeAll(held);
      await d.stop();
    }
  },
});
