import assert from "node:assert/strict";
import { clientAddressOf } from "./proxies.ts";
import { parseRule, type Rule } from "./rules.ts";

const rules = (...texts: string[]): Rule[] =>
  texts.map((t) => {
    const parsed = parseRule(t);
    if ("problem" in parsed) throw new Error(parsed.problem);
    return parsed.rule;
  });

Deno.test("clientAddressOf: X-Forwarded-For is believed only as far as trusted proxies wrote it", () => {
  const trusted = rules("127.0.0.1", "10.0.0.0/8", "::1");
  const cases: [string, string | null, string, string | undefined, string][] = [
    // peer, header, client, via, why
    ["203.0.113.9", "198.51.100.1", "203.0.113.9", undefined, "an untrusted peer's header is ignored"],
    ["127.0.0.1", null, "127.0.0.1", undefined, "a trusted peer without the header is the client"],
    ["127.0.0.1", "198.51.100.1", "198.51.100.1", "127.0.0.1", "one trusted proxy"],
    ["127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1", "127.0.0.1", "trusted hops are skipped"],
    [
      "127.0.0.1",
      "6.6.6.6, 198.51.100.1",
      "198.51.100.1",
      "127.0.0.1",
      "what the client wrote is never used",
    ],
    ["127.0.0.1", "10.0.0.1, 10.0.0.2", "127.0.0.1", undefined, "all hops trusted: the proxy is the client"],
    ["127.0.0.1", "nonsense, 10.0.0.2", "127.0.0.1", undefined, "a malformed hop stops the walk"],
    ["127.0.0.1", "198.51.100.1:4711", "198.51.100.1", "127.0.0.1", "an IPv4 hop with a port"],
    ["::1", "[2001:db8::7]:443", "2001:db8::7", "::1", "a bracketed IPv6 hop with a port"],
    ["::1", "2001:db8::7", "2001:db8::7", "::1", "a bare IPv6 hop"],
    ["::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1", "::ffff:127.0.0.1", "an IPv4-mapped peer"],
    ["127.0.0.1", "0x7f.1", "127.0.0.1", undefined, "odd IPv4 spellings are not addresses here"],
    ["127.0.0.1", "", "127.0.0.1", undefined, "an empty header"],
  ];
  for (const [peer, header, ip, via, why] of cases) {
    assert.deepEqual(clientAddressOf(peer, header, trusted), via ? { ip, via } : { ip }, why);
  }
  assert.deepEqual(clientAddressOf("127.0.0.1", "198.51.100.1", []), { ip: "127.0.0.1" }, "nothing trusted");
});

Deno.test("clientAddressOf: RFC 7239 Forwarded, which wins over X-Forwarded-For", () => {
  const trusted = rules("127.0.0.1", "10.0.0.0/8");
  const cases: [string, string, string | undefined, string][] = [
    // Forwarded value, client, via, why
    ["for=198.51.100.1", "198.51.100.1", "127.0.0.1", "one hop"],
    ['for=198.51.100.1;proto=https;by=10.0.0.1, For="10.0.0.2:80"', "198.51.100.1", "127.0.0.1", "two hops"],
    ['for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17", "127.0.0.1", "a quoted IPv6 hop with a port"],
    ["for=6.6.6.6, for=198.51.100.1", "198.51.100.1", "127.0.0.1", "what the client wrote is never used"],
    ["for=unknown", "127.0.0.1", undefined, "an unknown client: the proxy is counted"],
    ["for=_hidden, for=10.0.0.3", "127.0.0.1", undefined, "an obfuscated hop stops the walk"],
    ["proto=https", "127.0.0.1", undefined, "no for= at all"],
  ];
  for (const [header, ip, via, why] of cases) {
    assert.deepEqual(
      clientAddressOf("127.0.0.1", "203.0.113.7", trusted, header),
      via ? { ip, via } : { ip },
      why,
    );
  }
  assert.deepEqual(clientAddressOf("203.0.113.9", null, trusted, "for=198.51.100.1"), { ip: "203.0.113.9" });
});
