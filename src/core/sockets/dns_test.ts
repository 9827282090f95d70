import assert from "node:assert/strict";
import { WasmnetError } from "../errors.ts";
import { Policy } from "../../policy/mod.ts";
import { cachingResolver, defaultResolver } from "./dns.ts";
import type { Resolver } from "./resolver.ts";

/** A fake resolver that counts lookups and answers from a table (a different answer each time when asked). */
function fakeResolver(answers: Record<string, string[]>) {
  const calls: string[] = [];
  let generation = 0;
  const resolver: Resolver = (name) => {
    calls.push(name);
    const answer = answers[name];
    if (!answer) return Promise.reject(new Error(`no such name ${name}`));
    return Promise.resolve(answer.map((a) => a.replace("{n}", String(generation++))));
  };
  return { resolver, calls };
}

function fakeClock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("dns cache: a second lookup within the TTL is answered from the cache", async () => {
  const { resolver, calls } = fakeResolver({ "a.test": ["10.0.0.{n}"] });
  const clock = fakeClock();
  const cached = cachingResolver(resolver, { entries: 4, ttlSecs: 60, timeoutMs: 1000, now: clock.now });
  assert.deepEqual(await cached("a.test"), ["10.0.0.0"]);
  clock.advance(59_000);
  assert.deepEqual(await cached("a.test"), ["10.0.0.0"]);
  assert.equal(calls.length, 1);
});

Deno.test("dns cache: an answer older than the TTL is looked up again", async () => {
  const { resolver, calls } = fakeResolver({ "a.test": ["10.0.0.{n}"] });
  const clock = fakeClock();
  const cached = cachingResolver(resolver, { entries: 4, ttlSecs: 60, timeoutMs: 1000, now: clock.now });
  await cached("a.test");
  clock.advance(60_000);
  assert.deepEqual(await cached("a.test"), ["10.0.0.1"]);
  assert.equal(calls.length, 2);
});

Deno.test("dns cache: bounded size evicts the least recently used name", async () => {
  const { resolver, calls } = fakeResolver({
    "a.test": ["10.0.0.1"],
    "b.test": ["10.0.0.2"],
    "c.test": ["10.0.0.3"],
  });
  const cached = cachingResolver(resolver, { entries: 2, ttlSecs: 60, timeoutMs: 1000 });
  await cached("a.test");
  await cached("b.test");
  await cached("a.test"); // a is now more recent than b
  await cached("c.test"); // evicts b
  assert.equal(cached.size, 2);
  assert.deepEqual(calls, ["a.test", "b.test", "c.test"]);
  await cached("a.test");
  assert.equal(calls.length, 3, "a stayed cached");
  await cached("b.test");
  assert.equal(calls.length, 4, "b was evicted and looked up again");
  assert.equal(cached.size, 2);
});

Deno.test("dns cache: entries 0 or ttl 0 disable caching", async () => {
  for (const [entries, ttlSecs] of [[0, 60], [16, 0]]) {
    const { resolver, calls } = fakeResolver({ "a.test": ["10.0.0.{n}"] });
    const cached = cachingResolver(resolver, { entries, ttlSecs, timeoutMs: 1000 });
    assert.deepEqual(await cached("a.test"), ["10.0.0.0"]);
    assert.deepEqual(await cached("a.test"), ["10.0.0.1"]);
    assert.equal(calls.length, 2);
    assert.equal(cached.size, 0);
  }
});

Deno.test("dns cache: failures are RESOLVE_FAILED and not cached", async () => {
  const { resolver, calls } = fakeResolver({});
  const cached = cachingResolver(resolver, { entries: 4, ttlSecs: 60, timeoutMs: 1000 });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      cached("nope.test"),
      (e) => e instanceof WasmnetError && e.code === "RESOLVE_FAILED",
    );
  }
  assert.equal(calls.length, 2);
  assert.equal(cached.size, 0);
});

Deno.test("dns cache: a lookup that never answers fails with RESOLVE_FAILED after the timeout", async () => {
  let innerSignal: AbortSignal | undefined;
  const hang: Resolver = (_name, signal) => {
    innerSignal = signal;
    return new Promise(() => {});
  };
  const cached = cachingResolver(hang, { entries: 4, ttlSecs: 60, timeoutMs: 30 });
  const started = performance.now();
  await assert.rejects(
    cached("slow.test"),
    (e) =>
      e instanceof WasmnetError && e.code === "RESOLVE_FAILED" && /timed out after 30 ms/.test(e.message),
  );
  assert.ok(performance.now() - started < 1000);
  assert.equal(innerSignal?.aborted, true, "the wrapped lookup is told to stop");
});

Deno.test("dns cache: concurrent lookups of one name share one lookup; a caller's abort stops only its wait", async () => {
  let calls = 0;
  let answer!: (a: string[]) => void;
  const slow: Resolver = () => {
    calls++;
    return new Promise((r) => (answer = r));
  };
  const cached = cachingResolver(slow, { entries: 4, ttlSecs: 60, timeoutMs: 5000 });
  const ac = new AbortController();
  const first = cached("a.test", ac.signal);
  const second = cached("A.test");
  ac.abort(new WasmnetError("RESOLVE_FAILED", "cancelled"));
  await assert.rejects(first, /cancelled/);
  answer(["192.0.2.1"]);
  assert.deepEqual(await second, ["192.0.2.1"]);
  assert.equal(calls, 1);
});

Deno.test("dns cache: callers get copies, so changing an answer does not change the cache", async () => {
  const { resolver } = fakeResolver({ "a.test": ["10.0.0.1"] });
  const cached = cachingResolver(resolver, { entries: 4, ttlSecs: 60, timeoutMs: 1000 });
  const one = await cached("a.test");
  one.push("6.6.6.6");
  assert.deepEqual(await cached("a.test"), ["10.0.0.1"]);
});

Deno.test("dns: the default resolver answers localhost from the system (hosts file)", async () => {
  const resolver = defaultResolver(Policy.defaults());
  const addrs = await resolver("localhost");
  assert.ok(addrs.some((a) => a === "127.0.0.1" || a === "::1"), `got ${addrs}`);
  assert.equal(resolver.size, 1);
});

Deno.test("dns: at most maxInFlight lookups run at once, counted until the resolver really returns", async () => {
  const hanging: (() => void)[] = [];
  const inner = (_name: string) =>
    new Promise<string[]>((resolve) => hanging.push(() => resolve(["192.0.2.1"])));
  const r = cachingResolver(inner, { entries: 0, ttlSecs: 0, timeoutMs: 50, maxInFlight: 2 });
  const a = r("a.test").catch((e) => e.code);
  const b = r("b.test").catch((e) => e.code);
  // Both time out for their callers, but the lookups are still running: a third name is refused.
  assert.deepEqual(await Promise.all([a, b]), ["RESOLVE_FAILED", "RESOLVE_FAILED"]);
  await assert.rejects(r("c.test"), /too many lookups in flight/);
  for (const done of hanging.splice(0)) done();
  await new Promise((resolve) => setTimeout(resolve, 0));
  const c = r("c.test");
  for (const done of hanging.splice(0)) done();
  assert.deepEqual(await c, ["192.0.2.1"]);
});
