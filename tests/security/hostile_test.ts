/**
 * The hostile-target table end to end: every target sent by a real client through the real server. Under
 * the default policy each one is refused before any socket is opened; with a rule naming it, each one is
 * allowed (reached for real on loopback where the target is loopback, otherwise the decision is allow and
 * the failure, if any, is the network's and not the policy's). Names also prove the resolver is asked once
 * and the socket goes to the vetted address.
 */

import assert from "node:assert/strict";
import { allowRuleFor, HOSTILE_TARGETS, type HostileTarget } from "../fixtures/hostile_targets.ts";
import { DEFAULT_DENY, normaliseAddress, Policy } from "../../src/policy/mod.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { b64, startServer, startTcpEchoServer, type TcpPeer, TestClient, unb64 } from "../helpers.ts";

const label = (t: HostileTarget) => `${JSON.stringify(t.host)}:${t.port} (${t.note})`;

/** Answers each fixture name with its `resolvesTo`, and counts lookups. */
function fixtureResolver(lookups: Map<string, number>): Resolver {
  const answers = new Map(
    HOSTILE_TARGETS.filter((t) => t.resolvesTo).map((t) => [t.host.toLowerCase(), t.resolvesTo!]),
  );
  return (name) => {
    lookups.set(name, (lookups.get(name) ?? 0) + 1);
    const answer = answers.get(name);
    return answer ? Promise.resolve(answer) : Promise.reject(new Error(`no test answer for ${name}`));
  };
}

/** Waits for the first `denied`/`error`/`connected` answer to socket `id`. */
function answerFor(c: TestClient, id: number, ms = 10_000) {
  return c.next((m) => m.id === id && ["denied", "error", "connected"].includes(m.ev as string), ms);
}

Deno.test(`default policy: all ${HOSTILE_TARGETS.length} hostile targets are refused end to end, no socket opened`, async () => {
  assert.ok(HOSTILE_TARGETS.length >= 60);
  const lookups = new Map<string, number>();
  const srv = await startServer(
    Policy.fromConfig({ network: { max_pending_connects: 500, max_connections: 500 } }),
    { resolver: fixtureResolver(lookups) },
  );
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    HOSTILE_TARGETS.forEach((t, i) => c.json({ op: "connect", id: i + 1, addr: t.host, port: t.port }));
    const answers = await Promise.all(HOSTILE_TARGETS.map((_, i) => answerFor(c, i + 1)));
    for (const [i, t] of HOSTILE_TARGETS.entries()) {
      const a = answers[i];
      if (t.invalid && a.ev === "error") {
        // Some invalid inputs (port 65536, 80.5) never reach the policy: the decoder refuses them.
        assert.equal(a.code, "BAD_REQUEST", label(t));
        continue;
      }
      assert.equal(a.ev, "denied", `${label(t)}: ${JSON.stringify(a)}`);
      assert.equal(a.code, "POLICY_DENIED", label(t));
    }
    const connects = srv.decisions.filter((d) => d.op === "connect");
    assert.ok(connects.every((d) => d.decision === "deny"), "every logged decision is a deny");
    for (const d of connects) {
      assert.ok(d.rule.length > 0 && d.session.length > 0 && d.client === "127.0.0.1");
    }
    assert.equal(srv.server.sessionCount, 1);
    for (const [name, n] of lookups) assert.equal(n, 1, `${name} looked up once`);
  } finally {
    await c.close();
    await srv.close();
  }
});

Deno.test("default policy refuses the hostile targets in binary framing too", async () => {
  const { encodeBinaryRequest, decodeBinaryEvent } = await import("@wasmnet/protocol");
  // Every request arrives in one burst and is in flight at once: room for all of them (max_connections too).
  const srv = await startServer(
    Policy.fromConfig({ network: { max_pending_connects: 500, max_connections: 500 } }),
    { resolver: fixtureResolver(new Map()) },
  );
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    const valid = HOSTILE_TARGETS.filter((t) => !t.invalid && t.host.length < 200);
    valid.forEach((t, i) =>
      c.raw(encodeBinaryRequest({ op: "connect", id: i + 1, addr: t.host, port: t.port }))
    );
    for (let n = 0; n < valid.length; n++) {
      const bytes = await c.nextBinary(() => true);
      const ev = decodeBinaryEvent(bytes) as { ev: string; id: number; code?: string };
      assert.equal(ev.ev, "denied", `${label(valid[ev.id - 1])}: ${JSON.stringify(ev)}`);
    }
  } finally {
    await c.close();
    await srv.close();
  }
});

/** Whether this host has IPv6 loopback (CI containers sometimes do not). */
const HAS_IPV6_LOOPBACK = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

/** Where a loopback target can really be reached: its canonical address, if it is on this host's loopback. */
function loopbackAddress(t: HostileTarget): string | null {
  const a = t.address;
  if (a === undefined) return null;
  if (a.startsWith("127.")) return a;
  if (a === "::1" && HAS_IPV6_LOOPBACK) return a;
  return null;
}

Deno.test("with a rule naming it, each loopback target and each name is reached for real (echo)", async () => {
  const echoes = new Map<string, TcpPeer>();
  const echoFor = (address: string) => {
    if (!echoes.has(address)) echoes.set(address, startTcpEchoServer(address));
    return echoes.get(address)!;
  };
  const targets = HOSTILE_TARGETS.filter((t) =>
    !t.invalid && (loopbackAddress(t) !== null || t.address === undefined)
  );
  assert.ok(targets.length >= 25, `${targets.length} reachable targets`);
  try {
    for (const t of targets) {
      const rule = allowRuleFor(t);
      const lookups: string[] = [];
      // Names answer 127.0.0.1, where an echo server listens.
      const resolver: Resolver = (name) => (lookups.push(name), Promise.resolve(["127.0.0.1"]));
      const srv = await startServer(Policy.fromConfig({ network: { deny: [], allow: [rule] } }), {
        resolver,
      });
      const echo = echoFor(loopbackAddress(t) ?? "127.0.0.1");
      const c = new TestClient(srv.url);
      try {
        await c.opened;
        c.json({ op: "connect", id: 1, addr: t.host, port: echo.port });
        const a = await answerFor(c, 1);
        assert.equal(a.ev, "connected", `${label(t)} with rule ${rule}: ${JSON.stringify(a)}`);
        c.json({ op: "send", id: 1, data: b64("ping") });
        assert.equal(unb64((await c.event("data", 1)).data), "ping");
        const d = srv.decisions.find((r) => r.op === "connect")!;
        assert.equal(d.decision, "allow");
        assert.match(d.rule, /^network\.allow\[0\] /);
        assert.ok(lookups.length <= 1, "resolved at most once");
      } finally {
        await c.close();
        await srv.close();
      }
    }
  } finally {
    for (const e of echoes.values()) await e.close();
  }
});

Deno.test("with a rule naming it, every other literal target is allowed by the policy (the network may fail)", async () => {
  const targets = HOSTILE_TARGETS.filter((t) =>
    !t.invalid && t.address !== undefined && loopbackAddress(t) === null
  );
  assert.ok(targets.length >= 30, `${targets.length} targets`);
  // One server per target, all at once; a 1 s connect timeout bounds what leaves this host.
  await Promise.all(targets.map(async (t) => {
    const rule = allowRuleFor(t);
    const srv = await startServer(
      Policy.fromConfig({ network: { deny: [], allow: [rule], connection_timeout_secs: 1 } }),
    );
    const c = new TestClient(srv.url);
    try {
      await c.opened;
      c.json({ op: "connect", id: 1, addr: t.host, port: t.port });
      const a = await answerFor(c, 1);
      assert.notEqual(a.code, "POLICY_DENIED", `${label(t)}: ${JSON.stringify(a)}`);
      const d = srv.decisions.find((r) => r.op === "connect" && r.decision !== "error") ??
        srv.decisions.find((r) => r.op === "connect")!;
      assert.equal(d.decision, "allow", `${label(t)}: ${JSON.stringify(srv.decisions)}`);
      assert.match(d.rule, /^network\.allow\[0\] /);
      assert.deepEqual(d.resolved, [normaliseAddress(t.host)], "connects to the canonical address");
    } finally {
      await c.close();
      await srv.close();
    }
  }));
});

Deno.test("DNS rebinding: each hostile name is resolved once per connect and the socket goes to the vetted answer", async () => {
  const names = HOSTILE_TARGETS.filter((t) => t.resolvesTo);
  assert.ok(names.length >= 6);
  const echo = startTcpEchoServer();
  // The default deny list with 127.0.0.1 carved out would be a different policy; instead the vetted (first)
  // answer is a public address and the hostile (second) answer points at the local echo server: if the
  // server ever looked up again, or dialled anything but the vetted address, the echo would see it.
  const calls = new Map<string, number>();
  const resolver: Resolver = (name) => {
    const n = (calls.get(name) ?? 0) + 1;
    calls.set(name, n);
    const t = names.find((x) => x.host === name)!;
    return Promise.resolve(n === 1 ? ["93.184.216.34"] : [...t.resolvesTo!, "127.0.0.1"]);
  };
  const srv = await startServer(
    Policy.fromConfig({
      network: { deny: [...DEFAULT_DENY], connection_timeout_secs: 1, max_pending_connects: 100 },
    }),
    { resolver },
  );
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    names.forEach((t, i) => c.json({ op: "connect", id: i + 1, addr: t.host, port: echo.port }));
    await Promise.all(names.map(async (t, i) => {
      const a = await answerFor(c, i + 1);
      assert.notEqual(a.code, "POLICY_DENIED", `${t.host}: first answer is public and allowed`);
    }));
    assert.equal(echo.accepted, 0, "nothing reached the address of the second answer");
    for (const t of names) assert.equal(calls.get(t.host), 1, `${t.host} resolved exactly once`);
    for (const d of srv.decisions.filter((r) => r.op === "connect" && r.decision === "allow")) {
      assert.deepEqual(d.resolved, ["93.184.216.34"]);
    }
    // A second connect looks up again, gets the hostile answer, and is refused.
    names.forEach((t, i) => c.json({ op: "connect", id: 1000 + i, addr: t.host, port: echo.port }));
    for (const [i, t] of names.entries()) {
      const a = await answerFor(c, 1000 + i);
      assert.equal(a.code, "POLICY_DENIED", `${t.host}: ${JSON.stringify(a)}`);
    }
    assert.equal(echo.accepted, 0);
  } finally {
    await c.close();
    await echo.close();
    await srv.close();
  }
});
