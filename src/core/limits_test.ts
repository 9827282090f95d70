import assert from "node:assert/strict";
import { MessageGuard, messageSize, TokenBucket } from "./limits.ts";

Deno.test("token bucket: bursts up to capacity, then the debt is paid at the rate", () => {
  let now = 0;
  const bucket = new TokenBucket(1000, 100, () => now);
  assert.equal(bucket.delayMs(), 0);
  bucket.take(100);
  assert.equal(bucket.delayMs(), 0);
  bucket.take(500); // 500 bytes of debt at 1000 B/s
  assert.equal(bucket.delayMs(), 500);
  now = 250;
  assert.equal(bucket.delayMs(), 250);
  now = 10_000; // refills, but never above capacity
  assert.equal(bucket.tokens, 100);
});

Deno.test("token bucket: forMbps converts megabits to bytes", () => {
  const b = TokenBucket.forMbps(8, () => 0);
  assert.equal(b.bytesPerSec, 1_000_000);
  assert.equal(b.capacity, 100_000);
});

Deno.test("token bucket: ready() waits out the debt and returns at once on abort", async () => {
  const bucket = new TokenBucket(10_000, 10);
  bucket.take(510); // ~50 ms of debt
  const t0 = performance.now();
  await bucket.ready(new AbortController().signal);
  assert.ok(performance.now() - t0 >= 40);
  bucket.take(100_000); // 10 s of debt
  const ac = new AbortController();
  const waiting = bucket.ready(ac.signal);
  ac.abort();
  await waiting;
});

Deno.test("messageSize is over the limit exactly when the UTF-8 bytes are", () => {
  const enc = new TextEncoder();
  const texts = ["abc", "é".repeat(10), "€".repeat(10), "😀".repeat(5), "x".repeat(50), "a€😀é".repeat(7)];
  for (const text of texts) {
    for (let limit = 1; limit < 80; limit++) {
      assert.equal(messageSize(text, limit) > limit, enc.encode(text).length > limit, `${text} @ ${limit}`);
    }
  }
  assert.equal(messageSize(new Uint8Array(10), 5), 10);
});

Deno.test("MessageGuard: a message over the limit closes with 1009; idle closes with 4408", async () => {
  const closes: [number, string][] = [];
  const guard = new MessageGuard({ maxMessageBytes: 8, idleMs: 0 }, (c, r) => closes.push([c, r]));
  assert.equal(guard.accept("12345678"), true);
  assert.equal(guard.accept("123456789"), false);
  assert.equal(closes[0][0], 1009);
  assert.equal(guard.accept("1"), false, "nothing is accepted after the close");
  const idle = new MessageGuard({ maxMessageBytes: 8, idleMs: 30 }, (c, r) => closes.push([c, r]));
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(closes[1][0], 4408);
  idle.stop();
});
