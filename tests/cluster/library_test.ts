/**
 * The library path: two `Server`s in one process, built with `openCluster` from mod.ts, share their caps
 * through one redis-server exactly as two CLI replicas do.
 */

import assert from "node:assert/strict";
import { openCluster, Policy, Server, silentLog } from "../../mod.ts";
import { startRedis } from "./redis_server.ts";
import { openSession, type RawSession } from "./sessions.ts";

Deno.test({
  name: "library: Server.builder().cluster(await openCluster(…)) shares the caps between servers",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis = await startRedis();
    const policy = Policy.fromConfig({
      server: { max_sessions: 3, max_sessions_per_ip: 2 },
      cluster: { redis: redis.url, lease_secs: 5 },
    });
    const stop = new AbortController();
    const setups = await Promise.all(
      ["a", "b"].map((_, i) => openCluster(policy.config.cluster, { workers: 2, workerIndex: i })),
    );
    const running = await Promise.all(
      setups.map((cluster) =>
        Server.builder().host("127.0.0.1").port(0).policy(policy).log(silentLog).cluster(cluster).build()
          .serve({ signal: stop.signal })
      ),
    );
    const held: RawSession[] = [];
    try {
      const [a, b] = running.map((r) => r.addr.port);
      for (const [port, ip] of [[a, "127.0.0.2"], [b, "127.0.0.2"], [a, "127.0.0.2"]] as const) {
        held.push(await openSession(port, ip));
      }
      held.push(await openSession(b, "127.0.0.3"), await openSession(a, "127.0.0.4"));
      assert.deepEqual(
        held.map((s) => s.status),
        [101, 101, 429, 101, 503],
        "2 per IP and 3 overall, across both",
      );
    } finally {
      held.forEach((s) => s.close());
      stop.abort();
      await Promise.all(running.map((r) => r.finished));
      await Promise.all(setups.map((s) => s.shared?.close()));
      await redis.stop();
    }
  },
});
