import assert from "node:assert/strict";
import { decideResolved, decideTarget, parseRule, Policy, type Rule } from "./mod.ts";

const rules = (...texts: string[]): Rule[] =>
  texts.map((t) => {
    const p = parseRule(t);
    if ("problem" in p) throw new Error(p.problem);
    return p.rule;
  });

const open = Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["*"], max_connections: 20 } });

Deno.test("narrowed targets must also match: IP literals, any spelling", () => {
  const p = open.narrow({ source: "token", targets: rules("93.184.216.0/24", "[2606:4700::/32]:443") });
  assert.equal(decideTarget(p, "93.184.216.34", 80).kind, "allow");
  assert.equal(decideTarget(p, "1572395042", 80).kind, "allow", "93.184.216.34 as a number");
  assert.equal(decideTarget(p, "::ffff:93.184.216.34", 80).kind, "allow");
  const other = decideTarget(p, "1.1.1.1", 80);
  assert.equal(other.kind, "deny");
  assert.equal(other.kind === "deny" && other.decision.rule, "token.targets");
  assert.equal(decideTarget(p, "2606:4700::1", 443).kind, "allow");
  assert.equal(decideTarget(p, "2606:4700::1", 80).kind, "deny", "port-scoped rule");
});

Deno.test("narrowed targets: names by name rule, or every resolved address by range rules", () => {
  const byName = open.narrow({ source: "token", targets: rules("example.com:443") });
  assert.equal(decideTarget(byName, "www.example.com", 443).kind, "resolve");
  assert.equal(decideTarget(byName, "example.org", 443).kind, "deny", "refused before any lookup");
  assert.equal(decideResolved(byName, "www.example.com", 443, ["1.2.3.4"]).decision.allowed, true);
  assert.equal(decideResolved(byName, "www.example.com", 80, ["1.2.3.4"]).decision.allowed, false);
  const byRange = open.narrow({ source: "token", targets: rules("1.2.3.0/24") });
  assert.equal(decideTarget(byRange, "any.example", 80).kind, "resolve");
  assert.equal(decideResolved(byRange, "any.example", 80, ["1.2.3.4", "1.2.3.5"]).decision.allowed, true);
  const mixed = decideResolved(byRange, "any.example", 80, ["1.2.3.4", "5.6.7.8"]);
  assert.equal(mixed.decision.allowed, false);
  assert.equal(mixed.decision.rule, "token.targets");
  assert.deepEqual(mixed.addresses, []);
});

Deno.test("narrowing never widens: the base policy's deny still wins, and --no-policy is narrowed too", () => {
  const p = open.narrow({ source: "token", targets: rules("10.0.0.0/8", "*") });
  const d = decideTarget(p, "10.1.1.1", 80);
  assert.equal(d.kind === "deny" && d.decision.rule, 'network.deny[0] "10.0.0.0/8"');
  assert.equal(decideResolved(p, "x.example", 80, ["10.0.0.1"]).decision.allowed, false);
  const unrestricted = Policy.allowAll().narrow({ source: "token", targets: rules("127.0.0.1") });
  assert.equal(decideTarget(unrestricted, "127.0.0.1", 80).kind, "allow");
  assert.equal(decideTarget(unrestricted, "127.0.0.2", 80).kind, "deny");
  assert.equal(decideResolved(unrestricted, "x.example", 80, ["127.0.0.2"]).decision.allowed, false);
});

Deno.test("narrowing twice: both target lists must match; limits take the smaller value", () => {
  const once = open.narrow({
    source: "token",
    targets: rules("1.0.0.0/8"),
    max_connections: 5,
    max_bandwidth_mbps: 4,
  });
  const twice = once.narrow({
    source: "grant",
    targets: rules("1.2.0.0/16"),
    max_connections: 50,
    max_bandwidth_mbps: 8,
  });
  assert.equal(decideTarget(twice, "1.2.3.4", 80).kind, "allow");
  const d = decideTarget(twice, "1.3.0.1", 80);
  assert.equal(d.kind === "deny" && d.decision.rule, "grant.targets");
  assert.equal(twice.config.network.max_connections, 5);
  assert.equal(twice.config.network.max_bandwidth_mbps, 4);
  assert.equal(
    open.narrow({ source: "t", max_bandwidth_mbps: 3 }).config.network.max_bandwidth_mbps,
    3,
    "0 = unlimited",
  );
  assert.equal(open.narrow({ source: "t" }).config.network.max_connections, 20);
  assert.equal(open.narrowings.length, 0, "the base policy is unchanged");
  assert.ok(Object.isFrozen(twice) && Object.isFrozen(twice.config.network));
});
