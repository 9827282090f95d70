import assert from "node:assert/strict";
import { type ClusterNotice, SharedLimits } from "./shared_limits.ts";
import { MemoryStore } from "./store.ts";
import { openCluster, replicaName } from "./mod.ts";
import { Policy } from "../policy/mod.ts";

const caps = (ip: string) => [{ key: "sessions", cap: 2 }, { key: `ip:${ip}`, cap: 5 }];

Deno.test("SharedLimits: the store decides; release gives the lease back", async () => {
  const store = new MemoryStore();
  const shared = new SharedLimits(store, { leaseMs: 60_000, onFailure: "local" });
  assert.equal(await shared.acquire("a", caps("192.0.2.1")), 0);
  assert.equal(await shared.acquire("b", caps("192.0.2.1")), 0);
  assert.equal(await shared.acquire("c", caps("192.0.2.1")), 1, "global cap");
  shared.release("a");
  await Promise.resolve();
  assert.equal(store.count("sessions"), 1);
  assert.equal(await shared.acquire("c", caps("192.0.2.1")), 0);
  assert.deepEqual(shared.stats(), { up: true, outages: 0, failures: 0, held: 2 });
});

Deno.test("SharedLimits: a session's later lease (its token's) adds to its first; release gives back all", async () => {
  const store = new MemoryStore();
  const shared = new SharedLimits(store, { leaseMs: 60_000, onFailure: "local" });
  assert.equal(await shared.acquire("a", caps("192.0.2.1")), 0);
  assert.equal(await shared.acquire("a", [{ key: "token:sub:u1", cap: 2 }]), 0);
  shared.holdLocally("a", ["token:sub:u1"]); // idempotent
  await shared.tick();
  assert.deepEqual([store.count("sessions"), store.count("ip:192.0.2.1"), store.count("token:sub:u1")], [
    1,
    1,
    1,
  ]);
  shared.release("a");
  await Promise.resolve();
  assert.deepEqual([store.count("sessions"), store.count("ip:192.0.2.1"), store.count("token:sub:u1")], [
    0,
    0,
    0,
  ]);
});

Deno.test("SharedLimits: an outage is noticed once and counted; the first good renewal re-creates every lease and ends it", async () => {
  let now = 0;
  const store = new MemoryStore(() => now);
  const notices: ClusterNotice[] = [];
  const shared = new SharedLimits(store, {
    leaseMs: 30_000,
    onFailure: "local",
    notice: (n) => notices.push(n),
  });
  assert.equal(await shared.acquire("a", caps("192.0.2.1")), 0);
  assert.equal(await shared.acquire("b", caps("192.0.2.1")), 0);
  store.failing = true;
  assert.equal(await shared.acquire("c", caps("192.0.2.1")), "unavailable");
  assert.equal(await shared.acquire("d", caps("192.0.2.1")), "unavailable", "no store call while down");
  shared.holdLocally("c", ["sessions", "ip:192.0.2.1"]); // admitted on local counts meanwhile
  shared.release("b"); // ended during the outage: given back once the store is back
  await shared.tick(); // still failing
  assert.equal(shared.stats().up, false);
  // Redis comes back empty (a restart): one renewal puts the live sessions back and drops the ended one.
  store.failing = false;
  store.clear();
  now += 1000;
  await shared.tick();
  assert.equal(shared.up, true);
  assert.equal(store.count("sessions"), 2, "a and c, not b");
  assert.deepEqual(notices.map((n) => n.event), ["store_down", "store_up"]);
  assert.match(notices[0].reason ?? "", /failing/);
  const stats = shared.stats();
  assert.equal(stats.outages, 1);
  assert.ok(stats.failures >= 2);
});

Deno.test("SharedLimits: while degraded, an admission probes the store (at most once a second) and ends a blip", async () => {
  let now = 0;
  const store = new MemoryStore();
  const shared = new SharedLimits(store, { leaseMs: 60_000, onFailure: "closed", now: () => now });
  await shared.tick(); // the store was asked at 0
  store.failing = true;
  assert.equal(await shared.acquire("a", caps("192.0.2.1")), "unavailable");
  store.failing = false; // back, but nobody has asked yet
  now = 500;
  assert.equal(await shared.acquire("b", caps("192.0.2.1")), "unavailable", "no probe within a second");
  now = 1000;
  assert.equal(await shared.acquire("b", caps("192.0.2.1")), 0, "probed by the admission itself");
  assert.equal(shared.up, true);
  assert.equal(shared.stats().outages, 1);
});

Deno.test("SharedLimits: a replica that stops renewing loses its slots within one lease", async () => {
  let now = 0;
  const store = new MemoryStore(() => now);
  const dead = new SharedLimits(store, { leaseMs: 3000, onFailure: "local" });
  const alive = new SharedLimits(store, { leaseMs: 3000, onFailure: "local" });
  assert.equal(await dead.acquire("d1", caps("192.0.2.1")), 0);
  assert.equal(await alive.acquire("a1", caps("192.0.2.1")), 0);
  assert.equal(await alive.acquire("a2", caps("192.0.2.1")), 1, "full");
  for (let t = 1000; t <= 3000; t += 1000) {
    now = t;
    await alive.tick(); // the live replica renews every third of a lease; the dead one does not
  }
  assert.equal(await alive.acquire("a2", caps("192.0.2.1")), 0, "the dead replica's slot came back");
  assert.equal(store.count("sessions"), 2);
});

Deno.test("replica names: [cluster] name, else the host name; -w<index> under --workers", async () => {
  const cluster = Policy.fromConfig({ cluster: { name: "edge-1" } }).config.cluster;
  assert.equal(replicaName(cluster, { workers: 1 }), "edge-1");
  assert.equal(replicaName(cluster, { workers: 2, workerIndex: 1 }), "edge-1-w1");
  const unnamed = Policy.defaults().config.cluster;
  assert.match(replicaName(unnamed, { workers: 1 }), /^[\w.-]+$/);
  const setup = await openCluster(unnamed, { workers: 3, workerIndex: 0 });
  assert.equal(setup.shared, undefined, "no [cluster] redis: nothing to open");
  assert.equal(setup.localShare, 3, "each worker enforces ceil(cap / 3)");
  const needsPassword = Policy.fromConfig({
    cluster: { redis: "redis://127.0.0.1:1", password_env: "WASMNET_TEST_UNSET_PASSWORD" },
  }).config.cluster;
  await assert.rejects(openCluster(needsPassword, { workers: 1 }, undefined, () => undefined), /not set/);
});
