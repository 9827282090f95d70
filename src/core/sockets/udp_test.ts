import assert from "node:assert/strict";
import dgram from "node:dgram";
import type { DecisionRecord } from "../log.ts";
import { Policy } from "../../policy/mod.ts";
import type { DialContext } from "./dial.ts";
import { openUdp, type UdpEvents } from "./udp.ts";

/** A UDP echo server on 127.0.0.1 (replies to each datagram with the same bytes). */
async function udpEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const s = dgram.createSocket("udp4");
  s.on("message", (m, r) => s.send(m, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return { port: s.address().port, close: () => new Promise((r) => s.close(() => r())) };
}

function context(
  policy: Policy,
  decisions: DecisionRecord[],
  resolver = (_: string) => Promise.resolve(["127.0.0.1"]),
) {
  const ac = new AbortController();
  const ctx: DialContext = {
    policy,
    resolver,
    log: (r) => decisions.push(r),
    session: "t",
    client: "127.0.0.1",
    signal: ac.signal,
  };
  return { ctx, ac };
}

function collector() {
  const got: { data: Uint8Array; addr: string; port: number }[] = [];
  const errors: Error[] = [];
  let wake: () => void = () => {};
  const events: UdpEvents = {
    onDatagram: (data, addr, port) => {
      got.push({ data: data.slice(), addr, port });
      wake();
    },
    onError: (err) => errors.push(err),
  };
  const next = async (n: number) => {
    while (got.length < n) await new Promise<void>((r) => (wake = r));
  };
  return { got, errors, events, next };
}

const LIMITS = { maxDatagramBytes: 1500, maxDatagramsPerSec: 0 };

Deno.test("udp: datagrams to the target echo back whole, with their source", async () => {
  const echo = await udpEcho();
  const decisions: DecisionRecord[] = [];
  const { ctx } = context(Policy.allowAll(), decisions);
  const c = collector();
  const sock = await openUdp(ctx, "test_udp", "127.0.0.1", echo.port, c.events, LIMITS);
  assert.ok(sock.localPort > 0);
  const sizes = [1, 1000, 1500, 0];
  for (const n of sizes) assert.equal(sock.send(new Uint8Array(n).fill(n % 251)), undefined);
  await c.next(sizes.length);
  assert.deepEqual(c.got.map((g) => g.data.length).sort((a, b) => a - b), [...sizes].sort((a, b) => a - b));
  assert.ok(c.got.every((g) => g.addr === "127.0.0.1" && g.port === echo.port));
  assert.equal(decisions.length, 1, "one decision logged for the target");
  assert.equal(decisions[0].decision, "allow");
  sock.close();
  await sock.whenClosed;
  await echo.close();
});

Deno.test("udp: a datagram over the size limit is refused, not truncated", async () => {
  const echo = await udpEcho();
  const { ctx } = context(Policy.allowAll(), []);
  const c = collector();
  const sock = await openUdp(ctx, "test_udp", "127.0.0.1", echo.port, c.events, {
    ...LIMITS,
    maxDatagramBytes: 100,
  });
  const refused = sock.send(new Uint8Array(101));
  assert.equal(refused?.code, "BAD_REQUEST");
  await assert.rejects(sock.sendTo("127.0.0.1", echo.port, new Uint8Array(101)), { code: "BAD_REQUEST" });
  assert.equal(sock.send(new Uint8Array(100)), undefined);
  await c.next(1);
  assert.equal(c.got[0].data.length, 100);
  sock.close();
  await sock.whenClosed;
  await echo.close();
});

Deno.test("udp: the token bucket refuses datagrams over the rate with LIMIT_EXCEEDED", async () => {
  const echo = await udpEcho();
  const { ctx } = context(Policy.allowAll(), []);
  const c = collector();
  const sock = await openUdp(ctx, "test_udp", "127.0.0.1", echo.port, c.events, {
    ...LIMITS,
    maxDatagramsPerSec: 5,
  });
  const results = Array.from({ length: 8 }, () => sock.send(new Uint8Array(1)));
  assert.equal(results.filter((r) => r === undefined).length, 5);
  assert.ok(results.slice(5).every((r) => r?.code === "LIMIT_EXCEEDED"));
  await new Promise((r) => setTimeout(r, 250)); // ~1 token back
  assert.equal(sock.send(new Uint8Array(1)), undefined);
  sock.close();
  await sock.whenClosed;
  await echo.close();
});

Deno.test("udp: the target is vetted by the policy (denied and logged), names resolve once", async () => {
  const decisions: DecisionRecord[] = [];
  const { ctx } = context(Policy.defaults(), decisions);
  await assert.rejects(openUdp(ctx, "test_udp", "127.0.0.1", 53, collector().events, LIMITS), {
    code: "POLICY_DENIED",
  });
  await assert.rejects(openUdp(ctx, "test_udp", "evil.test", 53, collector().events, LIMITS), {
    code: "POLICY_DENIED",
  });
  assert.equal(decisions.length, 2);
  assert.ok(decisions.every((d) => d.decision === "deny"));
});

Deno.test("udp: sendTo vets each destination, remembers approvals, and delivers strangers' datagrams", async () => {
  const echo = await udpEcho();
  const other = await udpEcho();
  const decisions: DecisionRecord[] = [];
  const policy = Policy.fromConfig({
    network: { deny: [], allow: [`127.0.0.1:${echo.port}`, `127.0.0.1:${other.port}`] },
  });
  const { ctx } = context(policy, decisions);
  const c = collector();
  const sock = await openUdp(ctx, "test_udp", "127.0.0.1", echo.port, c.events, LIMITS);
  await sock.sendTo("127.0.0.1", other.port, new TextEncoder().encode("a"));
  await sock.sendTo("127.0.0.1", other.port, new TextEncoder().encode("b"));
  await c.next(2);
  assert.ok(c.got.every((g) => g.port === other.port), "replies come with the stranger's source port");
  assert.equal(decisions.length, 2, "target + one approval for the other destination");
  await assert.rejects(sock.sendTo("127.0.0.1", 9, new Uint8Array(1)), { code: "POLICY_DENIED" });
  await assert.rejects(sock.sendTo("::1", other.port, new Uint8Array(1)), {
    code: /POLICY_DENIED|BAD_REQUEST/,
  });
  sock.close();
  assert.equal(sock.send(new Uint8Array(1))?.code, "SEND_FAILED");
  await sock.whenClosed;
  await echo.close();
  await other.close();
});

Deno.test("udp: aborting the context closes the socket", async () => {
  const echo = await udpEcho();
  const { ctx, ac } = context(Policy.allowAll(), []);
  const sock = await openUdp(ctx, "test_udp", "127.0.0.1", echo.port, collector().events, LIMITS);
  ac.abort();
  await sock.whenClosed;
  assert.ok(sock.isClosed);
  await echo.close();
});

Deno.test("udp: a datagram from a source the policy refuses is dropped, for every front end", async () => {
  const target = await udpEcho();
  const stranger = dgram.createSocket("udp4");
  await new Promise<void>((r) => stranger.bind(0, "127.0.0.1", () => r()));
  const decisions: DecisionRecord[] = [];
  // Only the target's port is allowed: 127.0.0.1 on another port is refused.
  const policy = Policy.fromConfig({ network: { deny: [], allow: [`127.0.0.1:${target.port}`] } });
  const { ctx } = context(policy, decisions);
  const c = collector();
  const sock = await openUdp(ctx, "test_udp", "127.0.0.1", target.port, c.events, LIMITS);
  stranger.send(new TextEncoder().encode("from B"), sock.localPort, "127.0.0.1");
  sock.send(new TextEncoder().encode("to A"));
  await c.next(1);
  while (sock.droppedRefused === 0) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(c.got.map((g) => [new TextDecoder().decode(g.data), g.port]), [["to A", target.port]]);
  assert.equal(sock.droppedRefused, 1);
  sock.close();
  await sock.whenClosed;
  await new Promise<void>((r) => stranger.close(() => r()));
  await target.close();
});
