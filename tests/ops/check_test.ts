/**
 * `wasmnet-server check FILE [--explain HOST:PORT]`: exit codes and the start-up error as a subprocess, and
 * the decision and deciding rule for every rule form (`*`, `*:PORT`, IPv4, IPv4:PORT, CIDR, CIDR:PORT,
 * IPv6, `[IPv6]:PORT`, IPv6 CIDR, domain, `*.domain`, domain:PORT, deny-by-default `*`), names resolved as
 * the server resolves them.
 */

import assert from "node:assert/strict";
import { runCheck } from "../../src/ops/check.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", `${ROOT}cli.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function withFile<T>(toml: string, body: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/policy.toml`, toml);
    return await body(`${dir}/policy.toml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `check --explain` in-process: the printed lines as a record. */
async function explain(toml: string, target: string): Promise<Record<string, string>> {
  const [host, port] = target.startsWith("[")
    ? [target.slice(1, target.indexOf("]")), target.slice(target.indexOf("]") + 2)]
    : target.split(":");
  return await withFile(toml, async (path) => {
    const lines: string[] = [];
    const code = await runCheck(path, { host, port: Number(port) }, {
      log: (l) => lines.push(l),
      error: (l) => lines.push(l),
    });
    assert.equal(code, 0, lines.join("\n"));
    return Object.fromEntries(
      lines.slice(2).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
    );
  });
}

Deno.test("check: a valid file exits 0; an invalid one exits 1 with start-up's error; usage errors exit 2", async () => {
  await withFile('[network]\nallow = ["example.com"]\n', async (path) => {
    const ok = await cli(["check", path]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /policy\.toml: ok\npolicy: .*allow 1 rule \(example\.com\)/);
  });
  await withFile('[network]\ndeny = ["10.0.0.0/33"]\n', async (path) => {
    const bad = await cli(["check", path]);
    const startup = await cli(["--policy", path, "--port", "0"]);
    assert.equal(bad.code, 1);
    assert.equal(startup.code, 1);
    assert.match(bad.stderr, /network\.deny\[0\].*10\.0\.0\.0\/33/);
    assert.equal(bad.stderr, startup.stderr, "the same precise error as at start-up");
  });
  await withFile('[tls]\nca_files = ["/nonexistent/ca.pem"]\n', async (path) => {
    const bad = await cli(["check", path]);
    assert.equal(bad.code, 1, "the CA files are checked as at start-up");
    assert.match(bad.stderr, /nonexistent\/ca\.pem/);
  });
  await withFile('[network]\nallow = ["10.0.0.0/8"]\n', async (path) => {
    const denied = await cli(["check", path, "--explain", "192.0.2.1:80"]);
    assert.equal(denied.code, 0, "exit 0 whatever the decision");
    assert.match(denied.stdout, /^decision: deny$/m);
  });
  assert.equal((await cli(["check"])).code, 2);
  assert.equal((await cli(["check", "a.toml", "--explain", "nope"])).code, 2);
  assert.equal((await cli(["check", "a.toml", "--bogus"])).code, 2);
  assert.equal((await cli(["check", `${ROOT}no-such.toml`])).code, 1);
});

const forms: [string, string, string, "allow" | "deny" | "error", string][] = [
  // [what, policy TOML, target, decision, rule]
  [
    "* allows anything not denied",
    'deny = []\nallow = ["*"]',
    "192.0.2.1:80",
    "allow",
    'network.allow[0] "*"',
  ],
  [
    "*:PORT allows that port only",
    'deny = []\nallow = ["*:443"]',
    "192.0.2.1:443",
    "allow",
    'network.allow[0] "*:443"',
  ],
  ["*:PORT, another port", 'deny = []\nallow = ["*:443"]', "192.0.2.1:80", "deny", "default (allow list)"],
  ["IPv4", 'deny = []\nallow = ["192.0.2.7"]', "192.0.2.7:22", "allow", 'network.allow[0] "192.0.2.7"'],
  [
    "IPv4:PORT",
    'deny = ["192.0.2.7:22"]\nallow = ["*"]',
    "192.0.2.7:22",
    "deny",
    'network.deny[0] "192.0.2.7:22"',
  ],
  ["CIDR", 'deny = ["10.0.0.0/8"]', "10.1.2.3:80", "deny", 'network.deny[0] "10.0.0.0/8"'],
  ["CIDR, any spelling", 'deny = ["10.0.0.0/8"]', "0x0a000001:80", "deny", 'network.deny[0] "10.0.0.0/8"'],
  [
    "CIDR:PORT",
    'deny = ["198.51.100.0/24:25"]\nallow = ["*"]',
    "198.51.100.9:25",
    "deny",
    'network.deny[0] "198.51.100.0/24:25"',
  ],
  [
    "IPv6",
    'deny = ["2001:db8::1"]\nallow = ["*"]',
    "[2001:db8::1]:80",
    "deny",
    'network.deny[0] "2001:db8::1"',
  ],
  [
    "[IPv6]:PORT",
    'deny = []\nallow = ["[2001:db8::1]:443"]',
    "[2001:db8::1]:443",
    "allow",
    'network.allow[0] "[2001:db8::1]:443"',
  ],
  ["IPv6 CIDR", 'deny = ["fc00::/7"]\nallow = ["*"]', "[fd12::1]:80", "deny", 'network.deny[0] "fc00::/7"'],
  [
    "IPv4-mapped IPv6 against IPv4 rules",
    'deny = ["127.0.0.0/8"]\nallow = ["*"]',
    "[::ffff:127.0.0.1]:80",
    "deny",
    'network.deny[0] "127.0.0.0/8"',
  ],
  [
    "domain, denied by name before any lookup",
    'deny = ["corp.test"]\nallow = ["*"]',
    "db.corp.test:5432",
    "deny",
    'network.deny[0] "corp.test"',
  ],
  [
    "*.domain",
    'deny = ["*.corp.test"]\nallow = ["*"]',
    "a.b.corp.test:80",
    "deny",
    'network.deny[0] "*.corp.test"',
  ],
  [
    "domain:PORT, another port",
    'deny = []\nallow = ["localhost:8080"]',
    "localhost:9090",
    "deny",
    "default (allow list)",
  ],
  ["deny-by-default *", 'deny = ["*"]\nallow = ["192.0.2.1"]', "192.0.2.2:80", "deny", 'default (deny "*")'],
];

for (const [what, network, target, decision, rule] of forms) {
  Deno.test(`check --explain: ${what}`, async () => {
    const e = await explain(`[network]\n${network}\n`, target);
    assert.equal(e.decision, decision, JSON.stringify(e));
    if (rule.startsWith("default (allow")) assert.match(e.rule, /^default/);
    else assert.equal(e.rule, rule);
  });
}

Deno.test("check --explain: a name is resolved as the server would, and every address is checked", async () => {
  const allowed = await explain('[network]\ndeny = []\nallow = ["localhost"]\n', "localhost:8080");
  assert.equal(allowed.decision, "allow");
  assert.equal(allowed.rule, 'network.allow[0] "localhost"');
  assert.match(allowed.resolved, /127\.0\.0\.1|::1/);
  const denied = await explain('[network]\ndeny = ["127.0.0.0/8", "::1"]\nallow = ["*"]\n', "localhost:80");
  assert.equal(denied.decision, "deny", "the name resolves into a denied range");
  assert.match(denied.rule, /^network\.deny\[[01]\]/);
  assert.match(denied.resolved, /127\.0\.0\.1|::1/);
  const unknown = await explain('[network]\ndeny = []\nallow = ["*"]\n', "no-such-name.invalid:80");
  assert.equal(unknown.decision, "error");
  assert.equal(unknown.rule, "resolve");
});
