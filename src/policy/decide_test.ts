import assert from "node:assert/strict";
import {
  bindPortCandidates,
  decideBind,
  decideOrigin,
  decideResolved,
  decideTarget,
  type Decision,
  DEFAULT_DENY,
  Policy,
  type PolicyConfigInput,
} from "./mod.ts";

/** The outcome of a whole connect decision, short enough for a table: "allow <rule>", "deny <rule>", "resolve". */
function outcome(policy: Policy, host: string, port: number, answer?: string[]): string {
  const verdict = decideTarget(policy, host, port);
  if (verdict.kind === "resolve" && answer) {
    return summary(decideResolved(policy, verdict.name, port, answer).decision);
  }
  return verdict.kind === "resolve" ? "resolve" : summary(verdict.decision);
}

function summary(decision: Decision): string {
  return `${decision.allowed ? "allow" : "deny"} ${decision.rule}`;
}

function network(network: PolicyConfigInput["network"]): Policy {
  return Policy.fromConfig({ network });
}

const PUBLIC = "93.184.216.34";

Deno.test("connect decisions: deny wins, then allow, then the default", () => {
  const defaults = Policy.defaults();
  const denyByDefault = network({
    deny: ["*", ...DEFAULT_DENY],
    allow: ["example.com", "93.184.216.0/24:443"],
  });
  const cases: [string, Policy, string, number, string[] | undefined, string][] = [
    ["public IPv4", defaults, PUBLIC, 80, undefined, `allow network.allow[0] "*"`],
    ["public IPv6", defaults, "2606:4700::1", 443, undefined, `allow network.allow[0] "*"`],
    [
      "NAT64 of a public address",
      defaults,
      "64:ff9b::5db8:d822",
      80,
      undefined,
      `allow network.allow[0] "*"`,
    ],
    ["6to4 of a public address", defaults, "2002:5db8:d822::1", 80, undefined, `allow network.allow[0] "*"`],
    ["loopback", defaults, "127.0.0.1", 80, undefined, `deny network.deny[3] "127.0.0.0/8"`],
    ["a name is resolved first", defaults, "example.com", 80, undefined, "resolve"],
    ["a name resolving outside", defaults, "example.com", 80, [PUBLIC], `allow network.allow[0] "*"`],
    [
      "a name resolving inside",
      defaults,
      "example.com",
      80,
      ["10.1.2.3"],
      `deny network.deny[1] "10.0.0.0/8"`,
    ],
    ["localhost by name", defaults, "Foo.LocalHost.", 80, undefined, `deny network.deny[28] "localhost"`],
    [
      "deny-by-default: named domain",
      denyByDefault,
      "api.example.com",
      80,
      [PUBLIC],
      `allow network.allow[0] "example.com"`,
    ],
    [
      "deny-by-default: named domain, private answer",
      denyByDefault,
      "api.example.com",
      80,
      ["10.0.0.5"],
      `deny network.deny[2] "10.0.0.0/8"`,
    ],
    [
      "deny-by-default: other name, not even resolved",
      denyByDefault,
      "evil.com",
      80,
      undefined,
      `deny default (deny "*")`,
    ],
    [
      "deny-by-default: other name, port of a range rule",
      denyByDefault,
      "evil.com",
      443,
      undefined,
      "resolve",
    ],
    [
      "deny-by-default: other name in the allowed range",
      denyByDefault,
      "evil.com",
      443,
      [PUBLIC],
      `allow network.allow[1] "93.184.216.0/24:443"`,
    ],
    [
      "deny-by-default: other name outside the range",
      denyByDefault,
      "evil.com",
      443,
      ["1.1.1.1"],
      `deny default (deny "*")`,
    ],
    ["deny-by-default: IP not named", denyByDefault, PUBLIC, 80, undefined, `deny default (deny "*")`],
    [
      "deny-by-default: deny beats allow range",
      network({ deny: ["*", "198.51.100.7"], allow: ["198.51.100.0/24"] }),
      "198.51.100.7",
      80,
      undefined,
      `deny network.deny[1] "198.51.100.7"`,
    ],
    [
      "empty allow allows nothing",
      network({ deny: [], allow: [] }),
      PUBLIC,
      80,
      undefined,
      "deny default (no allow rule matched)",
    ],
    [
      "empty allow: names not resolved",
      network({ deny: [], allow: [] }),
      "example.com",
      80,
      undefined,
      "deny default (no allow rule matched)",
    ],
    [
      "deny wins over allow",
      network({ deny: ["10.0.0.0/8"], allow: ["10.0.0.5"] }),
      "10.0.0.5",
      80,
      undefined,
      `deny network.deny[0] "10.0.0.0/8"`,
    ],
    [
      "deny name wins over allow name",
      network({ deny: ["bad.example.com"], allow: ["example.com"] }),
      "x.bad.example.com",
      80,
      undefined,
      `deny network.deny[0] "bad.example.com"`,
    ],
    [
      "notexample.com is not example.com",
      network({ deny: ["example.com"] }),
      "notexample.com",
      80,
      [PUBLIC],
      `allow network.allow[0] "*"`,
    ],
    [
      "port-scoped deny on its port",
      network({ deny: ["*:25"] }),
      "mail.example.com",
      25,
      undefined,
      `deny network.deny[0] "*:25"`,
    ],
    [
      "port-scoped deny on its port, IP",
      network({ deny: ["*:25"] }),
      PUBLIC,
      25,
      undefined,
      `deny network.deny[0] "*:25"`,
    ],
    [
      "port-scoped deny, other port",
      network({ deny: ["*:25"] }),
      PUBLIC,
      587,
      undefined,
      `allow network.allow[0] "*"`,
    ],
    [
      "port-scoped allow, other port",
      network({ deny: [], allow: ["example.com:443"] }),
      "example.com",
      80,
      undefined,
      "deny default (no allow rule matched)",
    ],
    ["port-scoped allow on its port", network({ deny: [], allow: ["example.com:443"] }), "example.com", 443, [
      PUBLIC,
    ], `allow network.allow[0] "example.com:443"`],
    [
      "IPv6 port-scoped allow",
      network({ deny: [], allow: ["[2001:db8::/32]:443"] }),
      "[2001:db8::5]",
      443,
      undefined,
      `allow network.allow[0] "[2001:db8::/32]:443"`,
    ],
    [
      "an IPv6 rule sees the mapped form",
      network({ deny: ["::ffff:0:0/96"] }),
      "::ffff:8.8.8.8",
      80,
      undefined,
      `deny network.deny[0] "::ffff:0:0/96"`,
    ],
    [
      "an IPv4 allow rule names the mapped form",
      network({ deny: [], allow: ["8.8.8.8"] }),
      "::ffff:8.8.8.8",
      80,
      undefined,
      `allow network.allow[0] "8.8.8.8"`,
    ],
    [
      "a user IPv4 deny catches NAT64",
      network({ deny: ["8.8.8.0/24"] }),
      "64:ff9b::808:808",
      53,
      undefined,
      `deny network.deny[0] "8.8.8.0/24"`,
    ],
    [
      "a user IPv4 deny catches 6to4",
      network({ deny: ["8.8.8.0/24"] }),
      "2002:808:808::",
      53,
      undefined,
      `deny network.deny[0] "8.8.8.0/24"`,
    ],
    [
      "odd spelling against a user rule",
      network({ deny: ["8.8.8.8"] }),
      "134744072",
      53,
      undefined,
      `deny network.deny[0] "8.8.8.8"`,
    ],
    ["--no-policy", Policy.allowAll(), "127.0.0.1", 80, undefined, "allow --no-policy"],
    ["--no-policy, name", Policy.allowAll(), "localhost", 80, ["127.0.0.1"], "allow --no-policy"],
    ["invalid port", defaults, PUBLIC, 0, undefined, "deny invalid port"],
    ["invalid host", defaults, "a b", 80, undefined, "deny invalid host"],
  ];
  for (const [what, policy, host, port, answer, expected] of cases) {
    assert.equal(outcome(policy, host, port, answer), expected, what);
  }
});

Deno.test("reasons are short sentences naming the target and the rule", () => {
  const defaults = Policy.defaults();
  const loopback = decideTarget(defaults, "0x7f.1", 80);
  assert.equal(
    loopback.kind === "deny" && loopback.decision.reason,
    "127.0.0.1:80 is in a blocked range (127.0.0.0/8)",
  );
  const mixed = decideResolved(defaults, "evil.example.com", 80, [PUBLIC, "127.0.0.1"]);
  assert.equal(
    mixed.decision.reason,
    "evil.example.com resolved to 127.0.0.1, which is in a blocked range (127.0.0.0/8)",
  );
  const port = decideTarget(defaults, PUBLIC, 65536);
  assert.match(port.kind === "deny" ? port.decision.reason : "", /^invalid port/);
  const smtp = decideTarget(network({ deny: ["*:25"] }), "mx.example.com", 25);
  assert.equal(smtp.kind === "deny" && smtp.decision.reason, "mx.example.com:25 uses blocked port 25 (*:25)");
});

Deno.test("decideTarget returns the canonical address and the normalised name", () => {
  const defaults = Policy.defaults();
  assert.deepEqual(decideTarget(defaults, "[2606:4700:0::0001]", 443), {
    kind: "allow",
    address: "2606:4700::1",
    decision: { allowed: true, rule: `network.allow[0] "*"`, reason: "[2606:4700::1]:443 is allowed" },
  });
  const odd = decideTarget(defaults, "1572395042", 80);
  assert.equal(odd.kind === "allow" && odd.address, PUBLIC);
  assert.deepEqual(decideTarget(defaults, "WWW.Example.COM.", 80), {
    kind: "resolve",
    name: "www.example.com",
  });
});

Deno.test("decideResolved: all or nothing, normalised, same order", () => {
  const defaults = Policy.defaults();
  const ok = decideResolved(defaults, "example.com", 80, [
    "::ffff:93.184.216.34",
    "2606:4700:0:0::1",
    "1.1.1.1",
  ]);
  assert.equal(ok.decision.allowed, true);
  assert.deepEqual(ok.addresses, [PUBLIC, "2606:4700::1", "1.1.1.1"]);
  const mixed = decideResolved(defaults, "example.com", 80, [PUBLIC, "fd00::1"]);
  assert.deepEqual(mixed, {
    decision: {
      allowed: false,
      rule: `network.deny[24] "fc00::/7"`,
      reason: "example.com resolved to [fd00::1], which is in a blocked range (fc00::/7)",
      clientReason: "example.com resolves to an address this server may not connect to",
    },
    addresses: [],
  });
  const empty = decideResolved(defaults, "example.com", 80, []);
  assert.equal(empty.decision.allowed, false);
  assert.equal(empty.decision.rule, "no addresses");
  assert.equal(decideResolved(defaults, "example.com", 80, ["not-an-ip"]).decision.allowed, false);
  assert.equal(
    decideResolved(defaults, "localhost", 80, [PUBLIC]).decision.rule,
    `network.deny[28] "localhost"`,
  );
  assert.equal(decideResolved(defaults, "example.com", 0, [PUBLIC]).decision.rule, "invalid port");
  assert.deepEqual(decideResolved(Policy.allowAll(), "x.test", 80, ["0x7f.1"]).addresses, ["127.0.0.1"]);
});

Deno.test("bind decisions", () => {
  const defaults = Policy.defaults();
  const scoped = network({ bind_addrs: ["127.0.0.0/8", "::1"], bind_ports: "3000-3002,8080" });
  const cases: [string, Policy, string, number, string, string][] = [
    [
      "server host, unprivileged port",
      defaults,
      "0.0.0.0",
      8080,
      "0.0.0.0",
      `allow default bind_addrs (server host "0.0.0.0"), network.bind_ports "1024-65535"`,
    ],
    [
      "server host, port 0",
      defaults,
      "0.0.0.0",
      0,
      "0.0.0.0",
      `allow default bind_addrs (server host "0.0.0.0"), network.bind_ports "1024-65535"`,
    ],
    [
      "server host, privileged port",
      defaults,
      "0.0.0.0",
      80,
      "0.0.0.0",
      `deny network.bind_ports "1024-65535"`,
    ],
    [
      "not the server host",
      defaults,
      "127.0.0.1",
      8080,
      "0.0.0.0",
      `deny default bind_addrs (server host "0.0.0.0")`,
    ],
    [
      "server host in another spelling",
      defaults,
      "127.1",
      8080,
      "127.0.0.1",
      `allow default bind_addrs (server host "127.0.0.1"), network.bind_ports "1024-65535"`,
    ],
    [
      "server host as a name",
      defaults,
      "LOCALHOST",
      8080,
      "localhost",
      `allow default bind_addrs (server host "localhost"), network.bind_ports "1024-65535"`,
    ],
    [
      "bind_addrs range",
      scoped,
      "127.0.0.5",
      3001,
      "0.0.0.0",
      `allow network.bind_addrs[0] "127.0.0.0/8", network.bind_ports "3000-3002,8080"`,
    ],
    [
      "bind_addrs IPv6",
      scoped,
      "[::1]",
      8080,
      "0.0.0.0",
      `allow network.bind_addrs[1] "::1", network.bind_ports "3000-3002,8080"`,
    ],
    ["bind_addrs miss", scoped, "0.0.0.0", 3001, "0.0.0.0", "deny network.bind_addrs"],
    ["bind_ports miss", scoped, "127.0.0.1", 3003, "0.0.0.0", `deny network.bind_ports "3000-3002,8080"`],
    [
      "bind_ports port 0",
      scoped,
      "127.0.0.1",
      0,
      "0.0.0.0",
      `allow network.bind_addrs[0] "127.0.0.0/8", network.bind_ports "3000-3002,8080"`,
    ],
    [
      "bind_addrs [] forbids binding",
      network({ bind_addrs: [] }),
      "0.0.0.0",
      8080,
      "0.0.0.0",
      "deny network.bind_addrs",
    ],
    [
      "bind_ports [] forbids port 0",
      network({ bind_ports: [] }),
      "0.0.0.0",
      0,
      "0.0.0.0",
      `deny network.bind_ports "none"`,
    ],
    [
      "bind_addrs *",
      network({ bind_addrs: ["*"] }),
      "10.1.1.1",
      8080,
      "0.0.0.0",
      `allow network.bind_addrs[0] "*", network.bind_ports "1024-65535"`,
    ],
    ["--no-policy", Policy.allowAll(), "10.1.1.1", 80, "0.0.0.0", "allow --no-policy"],
    ["invalid port", defaults, "0.0.0.0", 65536, "0.0.0.0", "deny invalid port"],
    ["negative port", Policy.allowAll(), "0.0.0.0", -1, "0.0.0.0", "deny invalid port"],
    ["invalid address", defaults, "0.0.0.0:80", 8080, "0.0.0.0", "deny invalid bind address"],
  ];
  for (const [what, policy, addr, port, serverHost, expected] of cases) {
    assert.equal(summary(decideBind(policy, addr, port, serverHost)), expected, what);
  }
});

Deno.test("bindPortCandidates", () => {
  assert.equal(bindPortCandidates(Policy.defaults()), "any");
  assert.equal(bindPortCandidates(Policy.allowAll()), "any");
  assert.equal(bindPortCandidates(network({ bind_ports: "*" })), "any");
  assert.deepEqual(bindPortCandidates(network({ bind_ports: "3002,3000-3001" })), [3000, 3001, 3002]);
  assert.deepEqual(bindPortCandidates(network({ bind_ports: [] })), []);
});

Deno.test("origin decisions", () => {
  const defaults = Policy.defaults();
  const strict = Policy.fromConfig({
    server: { allowed_origins: ["https://app.example.com", "null"], require_origin: true },
  });
  const cases: [Policy, string | null, boolean][] = [
    [defaults, "https://anything.test", true],
    [defaults, null, true],
    [strict, "https://app.example.com", true],
    [strict, "null", true],
    [strict, "https://app.example.com:8443", false],
    [strict, "http://app.example.com", false],
    [strict, "https://evil.test", false],
    [strict, null, false],
    [Policy.allowAll(), null, true],
  ];
  for (const [policy, origin, allowed] of cases) {
    assert.equal(decideOrigin(policy, origin).allowed, allowed, `${policy.source} ${origin}`);
  }
  assert.equal(decideOrigin(strict, null).rule, "server.require_origin");
  assert.equal(decideOrigin(strict, "null").rule, `server.allowed_origins[1] "null"`);
});
