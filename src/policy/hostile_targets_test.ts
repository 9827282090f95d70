import assert from "node:assert/strict";
import { allowRuleFor, HOSTILE_TARGETS, type HostileTarget } from "../../tests/fixtures/hostile_targets.ts";
import { decideResolved, decideTarget, type Decision, normaliseAddress, Policy } from "./mod.ts";

/** Runs a target through the whole decision: decideTarget, then decideResolved with the fixture's answer. */
function decide(policy: Policy, target: HostileTarget, fallbackAnswer?: string[]): Decision {
  const verdict = decideTarget(policy, target.host, target.port);
  if (verdict.kind !== "resolve") return verdict.decision;
  const answer = target.resolvesTo ?? fallbackAnswer;
  assert.ok(answer, `${target.host} needs resolvesTo: the policy asked to resolve it`);
  return decideResolved(policy, verdict.name, target.port, answer).decision;
}

Deno.test("the hostile table is big enough and has no duplicates", () => {
  assert.ok(HOSTILE_TARGETS.length >= 70, `only ${HOSTILE_TARGETS.length} targets`);
  const keys = HOSTILE_TARGETS.map((t) => `${t.host}|${t.port}`);
  assert.equal(new Set(keys).size, keys.length);
});

for (const target of HOSTILE_TARGETS) {
  const label = `${JSON.stringify(target.host)} port ${target.port} (${target.note})`;

  Deno.test(`default policy denies ${label}`, () => {
    const decision = decide(Policy.defaults(), target);
    assert.equal(decision.allowed, false, decision.reason);
    assert.ok(decision.rule.length > 0 && decision.reason.length > 0);
    if (target.invalid) assert.match(decision.rule, /^invalid /);
  });

  if (target.address !== undefined) {
    Deno.test(`normalises ${label} to ${target.address}`, () => {
      assert.equal(normaliseAddress(target.host), target.address);
    });
  }

  if (target.invalid) {
    Deno.test(`even --no-policy denies invalid ${label}`, () => {
      const decision = decide(Policy.allowAll(), target, ["93.184.216.34"]);
      assert.equal(decision.allowed, false);
      assert.match(decision.rule, /^invalid /);
    });
    continue;
  }

  Deno.test(`a rule naming it allows ${label}`, () => {
    const rule = allowRuleFor(target);
    const policy = Policy.fromConfig({ network: { deny: [], allow: [rule] } });
    const verdict = decideTarget(policy, target.host, target.port);
    if (target.address !== undefined) {
      assert.equal(verdict.kind, "allow", JSON.stringify(verdict));
      assert.equal(verdict.kind === "allow" && verdict.address, target.address);
    } else {
      assert.equal(verdict.kind, "resolve", JSON.stringify(verdict));
    }
    const decision = decide(policy, target, ["127.0.0.1"]);
    assert.equal(decision.allowed, true, decision.reason);
    assert.match(decision.rule, /^network\.allow\[0\] /);
  });

  Deno.test(`--no-policy allows ${label}`, () => {
    const decision = decide(Policy.allowAll(), target, ["127.0.0.1"]);
    assert.equal(decision.allowed, true);
    assert.equal(decision.rule, "--no-policy");
  });
}
