import assert from "node:assert/strict";
import {
  addressForms,
  formatIp,
  isIpLiteral,
  normaliseAddress,
  parseIpv4Loose,
  parseIpv6,
} from "./address.ts";
import { isNameWithin, normaliseHostName } from "./hostname.ts";

Deno.test("normaliseAddress: every accepted spelling becomes the canonical address", () => {
  const cases: [string, string][] = [
    ["1.2.3.4", "1.2.3.4"],
    ["16909060", "1.2.3.4"],
    ["0x01020304", "1.2.3.4"],
    ["01.02.03.04", "1.2.3.4"],
    ["1.0x2.3.4", "1.2.3.4"],
    ["1.2.772", "1.2.3.4"],
    ["1.131844", "1.2.3.4"],
    ["0x.0x.0x.0x", "0.0.0.0"],
    ["4294967295", "255.255.255.255"],
    ["1.2.3.4.", "1.2.3.4"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:1:1:1:1:1:1", "2001:db8:1:1:1:1:1:1"],
    ["2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1::", "1::"],
    ["::", "::"],
    ["[2001:db8::1]", "2001:db8::1"],
    ["fe80::1%eth0", "fe80::1"],
    ["[fe80::1%eth0]", "fe80::1"],
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["::ffff:102:304", "1.2.3.4"],
    ["::1.2.3.4", "::102:304"],
    ["64:ff9b::1.2.3.4", "64:ff9b::102:304"],
  ];
  for (const [host, canonical] of cases) assert.equal(normaliseAddress(host), canonical, host);
});

Deno.test("normaliseAddress: not an IP address", () => {
  const cases = [
    "",
    "example.com",
    "256.1.1.1",
    "1.2.3.4.5",
    "4294967296",
    "1.2.3.256",
    "1.2.65536",
    "08.1.1.1",
    "0x1g",
    "1..2",
    ".1.2.3",
    "1.2.3.4..",
    "-1",
    "+1.2.3.4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "[1.2.3.4]",
    "1.2.3.4%eth0",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7::8",
    "::1::",
    ":::",
    ":1::",
    "12345::",
    "::ffff:1.2.3",
    "::ffff:01.2.3.4",
    "1.2.3.4::",
    "fe80::1%",
    "fe80::1%a b",
    "[::1",
    "::1]",
    "g::1",
  ];
  for (const host of cases) {
    assert.equal(normaliseAddress(host), null, host);
    assert.equal(isIpLiteral(host), false, host);
  }
});

Deno.test("parseIpv4Loose follows inet_aton part widths", () => {
  assert.equal(parseIpv4Loose("1.16777215")?.value, 0x01ff_ffffn);
  assert.equal(parseIpv4Loose("1.16777216"), null);
  assert.equal(parseIpv4Loose("1.2.65535")?.value, 0x0102_ffffn);
  assert.equal(parseIpv4Loose("256.1"), null);
});

Deno.test("IPv6 that embeds IPv4 is also checked as that IPv4 address", () => {
  const cases: [string, string | null][] = [
    ["::ffff:7f00:1", "127.0.0.1"],
    ["::ffff:0:7f00:1", "127.0.0.1"],
    ["::7f00:1", "127.0.0.1"],
    ["64:ff9b::7f00:1", "127.0.0.1"],
    ["2002:7f00:1::", "127.0.0.1"],
    ["2002:7f00:1:ffff::1", "127.0.0.1"],
    ["::1", null],
    ["::", null],
    ["2001:db8::7f00:1", null],
    ["64:ff9b:1::7f00:1", null],
  ];
  for (const [text, inner] of cases) {
    const forms = addressForms(parseIpv6(text)!);
    assert.equal(forms.length, inner === null ? 1 : 2, text);
    if (inner !== null) assert.equal(formatIp(forms[1]), inner, text);
  }
});

Deno.test("normaliseHostName: case-folds, strips one trailing dot, refuses invalid names", () => {
  const valid: [string, string][] = [
    ["Example.COM", "example.com"],
    ["example.com.", "example.com"],
    ["_sip._tcp.example.com", "_sip._tcp.example.com"],
    ["a-b.c", "a-b.c"],
    ["intranet", "intranet"],
    ["1.2.3.example", "1.2.3.example"],
    ["x".repeat(63) + ".com", "x".repeat(63) + ".com"],
  ];
  for (const [host, name] of valid) assert.equal(normaliseHostName(host), name, host);
  const invalid = [
    "",
    ".",
    "example.com..",
    ".example.com",
    "a..b",
    "exa mple.com",
    "example.com:80",
    "ex/ample.com",
    "x".repeat(64) + ".com",
    ("a".repeat(50) + ".").repeat(5) + "com",
    "256.1.1.1",
    "1.2.3.4.5",
    "example.123",
    "example.0x1f",
    "\u212Aelvin.com",
    "bücher.example",
  ];
  for (const host of invalid) assert.equal(normaliseHostName(host), null, host);
});

Deno.test("isNameWithin: a domain and its subdomains only", () => {
  assert.equal(isNameWithin("example.com", "example.com"), true);
  assert.equal(isNameWithin("a.b.example.com", "example.com"), true);
  assert.equal(isNameWithin("notexample.com", "example.com"), false);
  assert.equal(isNameWithin("example.com.evil", "example.com"), false);
  assert.equal(isNameWithin("com", "example.com"), false);
});
