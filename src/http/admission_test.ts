import assert from "node:assert/strict";
import { Admission, clientKey } from "./admission.ts";
import { Authenticator } from "../auth/mod.ts";
import { Policy } from "../policy/mod.ts";

Deno.test("clients are counted per IPv4 address and per IPv6 /64", () => {
  assert.equal(clientKey("203.0.113.9"), "203.0.113.9");
  assert.equal(clientKey("::ffff:203.0.113.9"), "203.0.113.9");
  assert.equal(clientKey("2001:db8:1:2::1"), clientKey("2001:db8:1:2:ffff::9"));
  assert.notEqual(clientKey("2001:db8:1:2::1"), clientKey("2001:db8:1:3::1"));
  assert.equal(clientKey("unknown"), "unknown");
});

const req = () => new Request("http://127.0.0.1/", { headers: { upgrade: "websocket" } });
const url = new URL("http://127.0.0.1/");
const switching = () => new Response(null, { status: 200 }); // not a 101: the slot must be given back

Deno.test("admission: a slot is released when the endpoint does not upgrade, throws, or never tracks", async () => {
  const a = new Admission(
    Policy.fromConfig({ server: { max_sessions: 1 } }),
    () => {},
    new Authenticator(null, false),
  );
  await a.admit(req(), url, "192.0.2.1", () => new Response("no", { status: 400 }));
  assert.equal(a.sessions, 0);
  assert.throws(() =>
    a.admit(req(), url, "192.0.2.1", () => {
      throw new Error("boom");
    })
  );
  assert.equal(a.sessions, 0);
  await a.admit(req(), url, "192.0.2.1", switching);
  assert.equal(a.sessions, 0, "never tracked");
});

Deno.test("admission: caps answer 503 (server) and 429 (client) before anything else runs", async () => {
  const a = new Admission(
    Policy.fromConfig({ server: { max_sessions: 2, max_sessions_per_ip: 1 } }),
    () => {},
    new Authenticator(null, false),
  );
  // Sessions held by real upgrades (a 101 Response only exists inside Deno.upgradeWebSocket; the e2e tests
  // in tests/security/admission_test.ts cover those): counted here directly.
  a.count("192.0.2.1", 1);
  let called = 0;
  const upgrade = () => (called++, new Response("x"));
  assert.equal((await a.admit(req(), url, "192.0.2.1", upgrade)).status, 429);
  assert.equal(
    (await a.admit(req(), url, "::ffff:192.0.2.1", upgrade)).status,
    429,
    "same client, other spelling",
  );
  a.count("198.51.100.1", 1);
  assert.equal((await a.admit(req(), url, "203.0.113.5", upgrade)).status, 503);
  assert.equal(called, 0);
  a.count("192.0.2.1", -1);
  await a.admit(req(), url, "192.0.2.1", upgrade);
  assert.equal(called, 1);
  assert.equal(a.sessions, 1, "the admitted-but-not-upgraded request gave its slot back");
  assert.equal(a.sessionsFrom("192.0.2.1"), 0);
});
