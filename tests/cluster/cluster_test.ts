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
import {
  ADMIN_LINE,
  adminPortOf,
  startFirehose,
  startRedis,
  type TestRedis,
  waitForLeases,
} from "./redis_server.ts";
import { startHaproxy, type TestHaproxy } from "./haproxy.ts";
import { openMany, openSession, openWhenAdmitted, type RawSession, statuses } from "./sessions.ts";
import { importHs256Key, signHs256 } from "../../src/auth/mod.ts";

const LEASE_SECS = 2;
const SECRET = "cluster-test-secret-0123456789abcdef";

interface Deployment {
  redis: TestRedis;
  replicas: CliProcess[];
  /** Each replica's admin listener port (`/readyz`, `/metrics`). */
  adminPorts: number[];
  haproxy: TestHaproxy;
  stop(): Promise<void>;
}

async function deploy(onStoreFailure: "local" | "closed", count = 3, extra = ""): Promise<Deployment> {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-cluster-" });
  Deno.env.set("WASMNET_CLUSTER_TEST_SECRET", SECRET);
  const replicas: CliProcess[] = [];
  const adminPorts: number[] = [];
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
${extra}`,
    );
    // The admin listener on a port of its own choosing (a port picked in advance could be taken meanwhile).
    const replica = await spawnCli(["--policy", file, "--quiet", "--admin", "127.0.0.1:0"], {
      waitFor: ADMIN_LINE,
    });
    replicas.push(replica);
    adminPorts.push(adminPortOf(replica.banner));
  }
  const haproxy = await startHaproxy(
    replicas.map((r, i) => ({ port: r.port, admin: adminPorts[i] })),
    "roundrobin",
  );
  return {
    redis,
    replicas,
    adminPorts,
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

/** A test on a fresh deployment; every session it pushes to `held` is closed, then everything is stopped. */
function clusterTest(
  name: string,
  mode: "local" | "closed",
  count: number,
  body: (d: Deployment, held: RawSession[]) => Promise<void>,
  extra = "",
) {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const d = await deploy(mode, count, extra);
      const held: RawSession[] = [];
      try {
        await body(d, held);
      } finally {
        closeAll(held);
        await d.stop();
      }
    },
  });
}

clusterTest(
  "cluster: per-IP cap 3 and global cap 7 hold exactly across three replicas; a token's cap holds",
  "local",
  3,
  async (d, held) => {
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
    // Ended sessions give back every lease they took (address, global and token), not only the last one:
    // gone well before a lease could have expired.
    closeAll(held);
    await waitForLeases(d.redis, 0, LEASE_SECS * 1000 - 500);
  },
);

clusterTest(
  "cluster: a SIGKILLed replica's slots come back within the lease; the others go on serving",
  "local",
  3,
  async (d, held) => {
    for (const ip of ["127.0.0.2", "127.0.0.3"]) held.push(...await openMany(d.haproxy.port, ip, 3));
    held.push(await openSession(d.haproxy.port, "127.0.0.4"));
    assert.deepEqual(statuses(held), [101, 101, 101, 101, 101, 101, 101]);
    assert.equal((await openSession(d.haproxy.port, "127.0.0.5")).status, 503);
    // Round robin put a third of them on r1. Killed, it never gives them back: only its leases expiring do.
    d.replicas[0].child.kill("SIGKILL");
    await d.replicas[0].child.status;
    const killedAt = Date.now();
    await waitForLeases(d.redis, 7 - 3, (LEASE_SECS + 2) * 1000);
    const back = Date.now() - killedAt;
    const again = await openWhenAdmitted(d.haproxy.port, "127.0.0.5", 5000);
    held.push(again.session);
    assert.equal(again.session.status, 101, "the others serve the freed slots");
    console.log(`slots of the killed replica came back after ${back} ms (lease ${LEASE_SECS} s)`);
    const alive = held.slice(0, 7).filter((s) => s.open).length;
    assert.equal(alive, 4, "the sessions on the other replicas were not cut");
  },
);

clusterTest(
  "cluster: Redis stops — 'local' admits each replica's share and cuts nothing; after a restart (empty) the caps hold again",
  "local",
  3,
  async (d, held) => {
    held.push(...await openMany(d.haproxy.port, "127.0.0.2", 2));
    await d.redis.stop();
    // Each replica now enforces ceil(3 / 3) = 1 per IP and ceil(7 / 3) = 3 overall, on its own counts.
    const during = await openMany(d.haproxy.port, "127.0.0.3", 4);
    held.push(...during);
    assert.deepEqual(statuses(during), [101, 101, 101, 429], "one per replica for a new address");
    assert.ok(held.slice(0, 2).every((s) => s.open), "admitted sessions are not cut");
    await d.redis.start(); // empty, as after a crash
    // Within a renewal the live sessions are counted again: 2 + 3 = 5.
    await waitForLeases(d.redis, 5, LEASE_SECS * 1000 + 3000);
    const after = await openMany(d.haproxy.port, "127.0.0.4", 3);
    held.push(...after);
    assert.deepEqual(statuses(after), [101, 101, 503], "the global cap 7 holds again");
    assert.deepEqual(statuses(await openMany(d.haproxy.port, "127.0.0.3", 1)), [503]);
  },
);

clusterTest(
  "cluster: Redis stops — 'closed' refuses new sessions with 503 and cuts nothing; it admits again after a restart",
  "closed",
  2,
  async (d, held) => {
    held.push(...await openMany(d.haproxy.port, "127.0.0.2", 2));
    const readyz = async () => (await fetch(`http://127.0.0.1:${d.adminPorts[0]}/readyz`)).status;
    assert.equal(await readyz(), 200);
    await d.redis.stop();
    assert.deepEqual(statuses(await openMany(d.haproxy.port, "127.0.0.3", 2)), [503, 503]);
    assert.equal(await readyz(), 503, "a required dependency is down");
    assert.ok(held.every((s) => s.open), "admitted sessions are not cut");
    await d.redis.start();
    await waitForLeases(d.redis, 2, LEASE_SECS * 1000 + 3000);
    const after = await openWhenAdmitted(d.haproxy.port, "127.0.0.3", 5000);
    assert.equal(await readyz(), 200, "ready again once the store answers");
    held.push(after.session);
    assert.equal(after.session.status, 101);
    const more = await openMany(d.haproxy.port, "127.0.0.2", 2);
    held.push(...more);
    assert.deepEqual(statuses(more), [101, 429], "the per-IP cap 3 holds again (2 held before the outage)");
  },
);

const PER_IP_MBPS = 8; // 1,000,000 bytes per second for all sessions of one address

clusterTest(
  "cluster: a per-IP bandwidth limit holds across two replicas within 10%",
  "local",
  2,
  async (d, held) => {
    const sink = startFirehose();
    try {
      const path = `/tcp/127.0.0.1:${sink.port}`;
      // Round robin: the first session lands on r1, the second on r2; both download from the firehose.
      const sessions = [
        await openSession(d.haproxy.port, "127.0.0.2", path),
        await openSession(d.haproxy.port, "127.0.0.2", path),
      ];
      held.push(...sessions);
      assert.deepEqual(statuses(sessions), [101, 101]);
      // Skip the start (the shared bucket's burst), then measure a window.
      await new Promise((r) => setTimeout(r, 500));
      const start = sessions.map((s) => s.received);
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 3000));
      const seconds = (performance.now() - t0) / 1000;
      const bytes = sessions.map((s, i) => s.received - start[i]);
      const rate = (bytes[0] + bytes[1]) / seconds;
      const limit = PER_IP_MBPS * 125_000;
      console.log(
        `per-IP ${PER_IP_MBPS} Mbit/s over two replicas: ${Math.round(rate)} B/s ` +
          `(${(rate / limit).toFixed(3)} of the limit; sessions ${bytes.join(" + ")} bytes in ${
            seconds.toFixed(2)
          } s)`,
      );
      assert.ok(bytes.every((b) => b > 0), "both replicas serve the address");
      assert.ok(Math.abs(rate / limit - 1) <= 0.1, `${rate} B/s is not within 10% of ${limit}`);
    } finally {
      sink.close();
    }
  },
  `[network]\ndeny = []\nmax_bandwidth_mbps_per_ip = ${PER_IP_MBPS}\n`,
);
