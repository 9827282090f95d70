import assert from "node:assert/strict";
import { WasmnetError } from "../errors.ts";
import type { DecisionRecord } from "../log.ts";
import { Policy } from "../../policy/mod.ts";
import type { DialContext } from "./dial.ts";
import { decideLookup, filterResolved, probePorts, resolveForClient } from "./lookup.ts";
import type { Resolver } from "./resolver.ts";

const policy = (deny: string[], allow: string[] = ["*"]) => Policy.fromConfig({ network: { deny, allow } });

Deno.test("lookup: probe ports are one unmentioned port plus every port a rule is limited to", () => {
  assert.deepEqual(probePorts(policy([])), [1]);
  assert.deepEqual(probePorts(policy(["*:1", "*:25"], ["10.0.0.0/8:22", "*"])), [2, 1, 22, 25]);
});

Deno.test("lookup: filterResolved keeps only allowed addresses, canonical and deduplicated", () => {
  const p = policy(["10.0.0.0/8", "127.0.0.0/8"]);
  const { allowed, decision } = filterResolved(p, "mixed.test", [
    "10.1.2.3",
    "93.184.216.34",
    "::ffff:127.0.0.1",
    "2606:4700:0:0::1",
    "93.184.216.34",
  ]);
  assert.deepEqual(allowed, ["93.184.216.34", "2606:4700::1"]);
  assert.equal(decision.allowed, true);
});

Deno.test("lookup: a name that resolves only to blocked addresses is denied, naming the rule", () => {
  const { allowed, decision } = filterResolved(Policy.defaults(), "internal.test", [
    "10.0.0.5",
    "192.168.1.1",
  ]);
  assert.deepEqual(allowed, []);
  assert.equal(decision.allowed, false);
  assert.match(decision.rule, /10\.0\.0\.0\/8/);
  assert.match(decision.reason, /internal\.test resolves only to addresses/);
});

Deno.test("lookup: port-scoped rules — a port-only deny hides nothing, a port-only allow is enough", () => {
  const p = policy(["*"], ["10.0.0.5:22"]);
  assert.deepEqual(filterResolved(p, "ssh.test", ["10.0.0.5", "10.0.0.6"]).allowed, ["10.0.0.5"]);
  const q = policy(["*:25", "10.0.0.0/8:22"]);
  assert.deepEqual(filterResolved(q, "mail.test", ["10.0.0.5"]).allowed, ["10.0.0.5"]);
});

Deno.test("lookup: names denied by name are refused before any lookup; IP literals answer themselves", () => {
  const p = policy(["evil.test"]);
  const denied = decideLookup(p, "www.evil.test");
  assert.equal(denied.kind, "deny");
  if (denied.kind === "deny") {
    assert.equal(denied.decision.reason, "www.evil.test is a blocked name (evil.test)");
  }
  assert.deepEqual(decideLookup(p, "ok.test"), { kind: "resolve", name: "ok.test" });
  const literal = decideLookup(p, "0x7f.1");
  assert.equal(literal.kind, "literal");
  if (literal.kind === "literal") assert.equal(literal.address, "127.0.0.1");
  assert.equal(decideLookup(Policy.defaults(), "0x7f.1").kind, "deny");
});

Deno.test("lookup: a deny-by-default policy does not look up names it could never allow", () => {
  const p = policy(["*"], ["allowed.test"]);
  assert.equal(decideLookup(p, "other.test").kind, "deny");
  assert.deepEqual(decideLookup(p, "allowed.test"), { kind: "resolve", name: "allowed.test" });
  assert.deepEqual(decideLookup(p, "ALLOWED.test."), { kind: "resolve", name: "allowed.test" });
});

function ctx(p: Policy, resolver: Resolver, log: DecisionRecord[]): DialContext {
  return {
    policy: p,
    resolver,
    log: (r) => log.push(r),
    session: "s",
    client: "c",
    signal: new AbortController().signal,
  };
}

Deno.test("lookup: resolveForClient answers, denies and fails with the documented codes, logging once", async () => {
  const answers: Record<string, string[]> = {
    "ok.test": ["127.0.0.1", "93.184.216.34"],
    "inside.test": ["10.0.0.1"],
  };
  const resolver: Resolver = (name) =>
    answers[name] ? Promise.resolve(answers[name]) : Promise.reject(new Error("NXDOMAIN"));
  const log: DecisionRecord[] = [];
  const c = ctx(Policy.defaults(), resolver, log);
  assert.deepEqual(await resolveForClient(c, "ok.test"), ["93.184.216.34"]);
  await assert.rejects(
    resolveForClient(c, "inside.test"),
    (e) => e instanceof WasmnetError && e.code === "POLICY_DENIED",
  );
  await assert.rejects(
    resolveForClient(c, "missing.test"),
    (e) => e instanceof WasmnetError && e.code === "RESOLVE_FAILED",
  );
  await assert.rejects(
    resolveForClient(c, "not a name!"),
    (e) => e instanceof WasmnetError && e.code === "POLICY_DENIED",
  );
  assert.deepEqual(await resolveForClient(c, "8.8.8.8"), ["8.8.8.8"]);
  assert.deepEqual(log.map((r) => [r.op, r.target, r.decision]), [
    ["resolve", "ok.test", "allow"],
    ["resolve", "inside.test", "deny"],
    ["resolve", "missing.test", "error"],
    ["resolve", "not a name!", "deny"],
    ["resolve", "8.8.8.8", "allow"],
  ]);
  assert.deepEqual(log[0].resolved, ["127.0.0.1", "93.184.216.34"]);
});

Deno.test("raceDeadline: settles with the promise, or DeadlineExceeded after ms, or the signal's reason; leaves no timer", async () => {
  const { DeadlineExceeded, raceDeadline } = await import("./resolver.ts");
  assert.equal(await raceDeadline(Promise.resolve(7), undefined, 10_000), 7);
  await assert.rejects(raceDeadline(new Promise(() => {}), undefined, 5), DeadlineExceeded);
  const controller = new AbortController();
  const pending = raceDeadline(new Promise(() => {}), controller.signal, 10_000);
  controller.abort(new Error("cancelled"));
  await assert.rejects(pending, /cancelled/);
  // The test sanitizer fails this test if a 10 s timer is still pending here.
});
