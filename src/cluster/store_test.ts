import assert from "node:assert/strict";
import { type LimitStore, MemoryStore, StoreError } from "./store.ts";
import { checkedInteger, RedisStore } from "./redis_store.ts";
import { startRedis } from "../../tests/cluster/redis_server.ts";
import { makeTestPki } from "../../tests/network_helpers.ts";
import { Policy } from "../policy/mod.ts";
import { openCluster } from "./mod.ts";

/** The contract every store keeps, run against the in-memory fake and a real redis-server. */
async function contract(store: LimitStore, expire: () => Promise<void>) {
  const caps = [{ key: "sessions", cap: 3 }, { key: "ip:192.0.2.1", cap: 2 }];
  assert.equal(await store.acquire("a", caps, 60_000), 0);
  assert.equal(await store.acquire("a", caps, 60_000), 0, "a retry never counts twice");
  assert.equal(await store.acquire("b", caps, 60_000), 0);
  assert.equal(await store.acquire("c", caps, 60_000), 2, "the per-IP counter is full");
  assert.equal(
    await store.acquire("c", [{ key: "sessions", cap: 3 }, { key: "ip:192.0.2.2", cap: 2 }], 60_000),
    0,
  );
  assert.equal(
    await store.acquire("d", [{ key: "sessions", cap: 3 }, { key: "ip:192.0.2.3", cap: 2 }], 60_000),
    1,
    "the global counter is full; nothing was taken on the IP counter",
  );
  assert.equal(await store.acquire("d", [{ key: "ip:192.0.2.3", cap: 1 }], 60_000), 0);
  await store.release("a", ["sessions", "ip:192.0.2.1"]);
  assert.equal(await store.acquire("e", caps, 60_000), 0, "a released slot is free again");

  // Leases run out unless renewed; renewing re-creates what the store lost.
  assert.equal(await store.acquire("short", [{ key: "x", cap: 1 }], 150), 0);
  assert.equal(await store.acquire("other", [{ key: "x", cap: 1 }], 150), 1);
  await expire();
  assert.equal(await store.acquire("other", [{ key: "x", cap: 1 }], 60_000), 0, "the lease expired");
  await store.renew(new Map([["gone", ["y"]]]), 60_000);
  assert.equal(await store.acquire("new", [{ key: "y", cap: 1 }], 60_000), 1, "renew re-created the lease");

  // Bandwidth: a full bucket grants up to its burst, then only what refills.
  assert.equal(await store.takeBandwidth("bw:1", 1000, 500, 400), 400);
  assert.equal(await store.takeBandwidth("bw:1", 1000, 500, 400), 100, "only the rest of the burst");
  const later = await store.takeBandwidth("bw:1", 1000, 500, 400);
  assert.ok(later < 100, `almost nothing refilled yet (${later})`);
}

Deno.test("MemoryStore keeps the store contract", async () => {
  let now = 1_000_000;
  const store = new MemoryStore(() => now);
  await contract(store, () => (now += 200, Promise.resolve()));
  store.failing = true;
  await assert.rejects(store.acquire("z", [], 1), StoreError);
});

Deno.test("RedisStore keeps the store contract against a real redis-server", async () => {
  const redis = await startRedis();
  const store = await RedisStore.open({ url: redis.url, prefix: `t${Date.now()}:` });
  try {
    await contract(store, () => new Promise((r) => setTimeout(r, 250)));
  } finally {
    await store.close();
    await redis.stop();
  }
});

Deno.test("RedisStore: an outage is a StoreError at once, and it works again after a restart (scripts reloaded)", async () => {
  const redis = await startRedis();
  const errors: string[] = [];
  let ready = 0;
  const store = await RedisStore.open({
    url: redis.url,
    onError: (e) => errors.push(e.message),
    onReady: () => ready++,
  });
  try {
    assert.equal(await store.acquire("a", [{ key: "k", cap: 1 }], 60_000), 0);
    await redis.stop();
    await assert.rejects(store.acquire("b", [{ key: "k", cap: 1 }], 60_000), StoreError);
    await redis.start();
    const deadline = Date.now() + 10_000;
    while (!store.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(store.connected, "reconnected by itself");
    assert.equal(await store.acquire("b", [{ key: "k", cap: 1 }], 60_000), 0, "empty after the restart");
    assert.ok(ready >= 2, `ready told on start and after the reconnect (${ready}; errors: ${errors.length})`);
  } finally {
    await store.close();
    await redis.stop();
  }
});

Deno.test("a Redis reply of the wrong shape is a StoreError, never a number taken on faith", () => {
  assert.equal(checkedInteger(2, 0, 3, "acquire"), 2);
  for (const bad of [-1, 4, 1.5, "1", null, [1], { ok: 1 }]) {
    assert.throws(() => checkedInteger(bad, 0, 3, "acquire"), StoreError);
  }
});

Deno.test("openCluster: rediss:// with [cluster] tls_ca_file and the password from password_env", async () => {
  const pki = await makeTestPki();
  const files = { certFile: `${pki.dir}/redis.pem`, keyFile: `${pki.dir}/redis.key`, caFile: pki.caFile };
  await Deno.writeTextFile(files.certFile, pki.good.cert);
  await Deno.writeTextFile(files.keyFile, pki.good.key);
  const redis = await startRedis({ tls: files, password: "s3cret-for-test" });
  const env = (name: string) => (name === "WASMNET_TEST_REDIS_PW" ? "s3cret-for-test" : undefined);
  const config = (extra: Record<string, string>) =>
    Policy.fromConfig({ cluster: { redis: redis.url, lease_secs: 5, ...extra } }).config.cluster;
  try {
    assert.match(redis.url, /^rediss:/);
    const ok = await openCluster(
      config({ tls_ca_file: pki.caFile, password_env: "WASMNET_TEST_REDIS_PW" }),
      { workers: 1 },
      undefined,
      env,
    );
    assert.equal(await ok.shared!.acquire("a", [{ key: "k", cap: 1 }]), 0, "TLS and AUTH both passed");
    await ok.shared!.close();
    // Without the CA the certificate is not trusted; without the password Redis refuses: both outages.
    const attempts: Record<string, string>[] = [{ password_env: "WASMNET_TEST_REDIS_PW" }, {
      tls_ca_file: pki.caFile,
    }];
    for (const extra of attempts) {
      const bad = await openCluster(config(extra), { workers: 1 }, undefined, env);
      assert.equal(
        await bad.shared!.acquire("b", [{ key: "k", cap: 5 }]),
        "unavailable",
        JSON.stringify(extra),
      );
      await bad.shared!.close();
    }
  } finally {
    await redis.stop();
    await pki.remove();
  }
});
