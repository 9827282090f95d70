import assert from "node:assert/strict";
import { parseIpLiteral } from "./address.ts";
import { parseRule, type Rule, ruleMatchesAddress, ruleMatchesName } from "./rules.ts";

function rule(text: string): Rule {
  const parsed = parseRule(text);
  if ("problem" in parsed) throw new Error(`${text}: ${parsed.problem}`);
  return parsed.rule;
}

Deno.test("parseRule: accepted rules and what they parse to", () => {
  const cases: [string, Partial<Rule> & Record<string, unknown>][] = [
    ["*", { kind: "any", port: undefined }],
    ["*:25", { kind: "any", port: 25 }],
    ["10.0.0.0/8", { kind: "range", family: 4, prefix: 8, network: 0x0a00_0000n }],
    ["10.0.0.0/8:22", { kind: "range", prefix: 8, port: 22 }],
    ["0.0.0.0/0", { kind: "range", family: 4, prefix: 0 }],
    ["192.0.2.1", { kind: "range", family: 4, prefix: 32 }],
    ["192.0.2.1:443", { kind: "range", prefix: 32, port: 443 }],
    ["::1", { kind: "range", family: 6, prefix: 128, network: 1n }],
    ["[::1]", { kind: "range", family: 6, prefix: 128 }],
    ["[::1]:80", { kind: "range", family: 6, port: 80 }],
    ["fc00::/7", { kind: "range", family: 6, prefix: 7 }],
    ["[2001:db8::/32]:443", { kind: "range", family: 6, prefix: 32, port: 443 }],
    ["::ffff:0:0/96", { kind: "range", family: 6, prefix: 96 }],
    ["example.com", { kind: "domain", domain: "example.com" }],
    ["*.Example.COM.", { kind: "domain", domain: "example.com" }],
    ["api.example.com:8443", { kind: "domain", domain: "api.example.com", port: 8443 }],
    ["localhost", { kind: "domain", domain: "localhost" }],
  ];
  for (const [text, expected] of cases) {
    const parsed = rule(text);
    for (const [key, value] of Object.entries(expected)) {
      assert.equal((parsed as unknown as Record<string, unknown>)[key], value, `${text}: ${key}`);
    }
    assert.equal(parsed.text, text);
  }
});

Deno.test("parseRule: refused rules", () => {
  const cases = [
    "",
    " ",
    "10.0.0.0/8 ",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/08",
    "10.0.0.0/",
    "10.0.0.1/8",
    "10.0.0.0/8/8",
    "::/129",
    "fc00::1/7",
    "10.0.0.0/8:0",
    "10.0.0.0/8:65536",
    "10.0.0.0/8:x",
    "*:",
    "[::1]80",
    "[::1",
    "[10.0.0.1]:80",
    "[example.com]:80",
    "[*]:80",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "010.0.0.0/8",
    "256.0.0.0/8",
    "1.2.3.4.5",
    "*.*.example.com",
    "*example.com",
    "exa_mple com",
    "fe80::1%eth0",
    "example.com:80:80",
    "http://example.com",
  ];
  for (const text of cases) {
    assert.ok("problem" in parseRule(text), `${JSON.stringify(text)} should be refused`);
  }
});

Deno.test("domain rules match the domain and its subdomains, on their port only", () => {
  const cases: [string, string, number, boolean][] = [
    ["example.com", "example.com", 80, true],
    ["example.com", "www.example.com", 80, true],
    ["*.example.com", "example.com", 80, true],
    ["*.example.com", "a.b.example.com", 80, true],
    ["example.com", "notexample.com", 80, false],
    ["example.com", "example.com.evil.net", 80, false],
    ["example.com:443", "example.com", 443, true],
    ["example.com:443", "example.com", 80, false],
    ["*", "anything.test", 1, true],
    ["*:25", "mail.example.com", 25, true],
    ["*:25", "mail.example.com", 587, false],
    ["10.0.0.0/8", "example.com", 80, false],
  ];
  for (const [text, name, port, expected] of cases) {
    assert.equal(ruleMatchesName(rule(text), name, port), expected, `${text} vs ${name}:${port}`);
  }
});

Deno.test("range rules match addresses of their family, on their port only", () => {
  const cases: [string, string, number, boolean][] = [
    ["10.0.0.0/8", "10.255.0.1", 80, true],
    ["10.0.0.0/8", "11.0.0.0", 80, false],
    ["172.16.0.0/12", "172.31.255.255", 80, true],
    ["172.16.0.0/12", "172.32.0.0", 80, false],
    ["0.0.0.0/0", "203.0.113.1", 80, true],
    ["0.0.0.0/0", "2001:db8::1", 80, false],
    ["192.0.2.1", "192.0.2.1", 80, true],
    ["192.0.2.1", "192.0.2.2", 80, false],
    ["10.0.0.0/8:22", "10.0.0.1", 22, true],
    ["10.0.0.0/8:22", "10.0.0.1", 23, false],
    ["fc00::/7", "fdff::1", 80, true],
    ["fc00::/7", "fe00::1", 80, false],
    ["[::1]:80", "::1", 80, true],
    ["[::1]:80", "::1", 81, false],
    ["::/0", "1.2.3.4", 80, false],
    ["*", "::1", 80, true],
    ["example.com", "1.2.3.4", 80, false],
  ];
  for (const [text, address, port, expected] of cases) {
    assert.equal(
      ruleMatchesAddress(rule(text), parseIpLiteral(address)!, port),
      expected,
      `${text} vs ${address}:${port}`,
    );
  }
});
