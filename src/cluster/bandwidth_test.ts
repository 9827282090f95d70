import assert from "node:assert/strict";
import { ClientBandwidth } from "./bandwidth.ts";
import { MemoryStore } from "./store.ts";
import type { TokenBucket } from "../core/limits.ts";

Deno.test("ClientBandwidth: one budget per address while any of its sessions lives; none when unlimited", () => {
  assert.equal(new ClientBandwidth({ mbps: 0, localShare: 1 }).acquire("192.0.2.1"), null);
  const bw = new ClientBandwidth({ mbps: 8, localShare: 2 });
  const a = bw.acquire("192.0.2.1")!;
  const b = bw.acquire("192.0.2.1")!;
  const other = bw.acquire("192.0.2.2")!;
  assert.equal(a.budget, b.budget, "sessions of one address share one budget");
  assert.notEqual(a.budget, other.budget);
  assert.equal(
    (a.budget as TokenBucket).bytesPerSec,
    500_000,
    "each of 2 workers gets half of 1,000,000 B/s",
  );
  a.release();
  a.release(); // twice is once
  assert.equal(bw.acquire("192.0.2.1")!.budget, b.budget, "still held by b");
  b.release();
});

Deno.test("ClientBandwidth over a store: draws from the shared bucket; falls back to the local share when it fails", async () => {
  const store = new MemoryStore();
  const errors: unknown[] = [];
  const bw = new ClientBandwidth({ mbps: 8, store, localShare: 4, onStoreError: (e) => errors.push(e) });
  const { budget } = bw.acquire("192.0.2.1")!;
  const signal = new AbortController().signal;
  budget.take(50_000);
  await budget.ready(signal); // topped up from the store's full bucket (burst 100,000)
  assert.equal(await store.takeBandwidth("ip:192.0.2.1", 1_000_000, 100_000, 100_000) < 100_000, true);
  store.failing = true;
  budget.take(10_000_000); // deep debt, then the store fails: the fallback bucket meters from here
  await budget.ready(signal);
  assert.equal(errors.length, 1, "the failure was reported once");
});
