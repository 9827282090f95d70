import assert from "node:assert/strict";
import { clientKey } from "./admission.ts";

Deno.test("clients are counted per IPv4 address and per IPv6 /64", () => {
  assert.equal(clientKey("203.0.113.9"), "203.0.113.9");
  assert.equal(clientKey("::ffff:203.0.113.9"), "203.0.113.9");
  assert.equal(clientKey("2001:db8:1:2::1"), clientKey("2001:db8:1:2:ffff::9"));
  assert.notEqual(clientKey("2001:db8:1:2::1"), clientKey("2001:db8:1:3::1"));
  assert.equal(clientKey("unknown"), "unknown");
});
