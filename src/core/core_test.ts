import assert from "node:assert/strict";
import { WasmnetError } from "./errors.ts";
import type { DecisionRecord } from "./log.ts";
import { Policy } from "../policy/mod.ts";
import { SocketCore, type SocketKind, type SocketObserver } from "./core.ts";

/** An observer recording every call, one string each. */
function recorder() {
  const seen: string[] = [];
  const observer: SocketObserver = {
    opened: (kind) => void seen.push(`opened ${kind}`),
    closed: (kind) => void seen.push(`closed ${kind}`),
    connected: (kind, seconds) => void seen.push(`connected ${kind}${seconds >= 0 ? "" : " ?"}`),
    failed: (code) => void seen.push(`failed ${code}`),
  };
  return { seen, observer };
}

function echoServer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) conn.readable.pipeTo(conn.writable).catch(() => {});
  })().catch(() => {});
  return { port: listener.addr.port, close: () => listener.close() };
}

const policy = Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["*"] } });

Deno.test("core: a connect is decided, logged, observed (connected, opened, closed once) and released", async () => {
  const echo = echoServer();
  const rec = recorder();
  const logged: DecisionRecord[] = [];
  const quota: string[] = [];
  const core = new SocketCore({
    log: (r) => logged.push(r),
    observer: rec.observer,
    quota: {
      acquire: (s, kind) => void quota.push(`+${kind} ${s.frontend}`),
      release: (s, kind) => void quota.push(`-${kind} ${s.frontend}`),
    },
  });
  const session = core.session({ frontend: "test", policy, clientIp: "192.0.2.1", id: "s1" });
  try {
    const conn = await session.connect("connect", "127.0.0.1", echo.port);
    conn.close();
    conn.close(); // a second close is the runtime's business (it throws); the observer counts one
  } catch (err) {
    assert.ok(err instanceof Deno.errors.BadResource, String(err));
  } finally {
    echo.close();
  }
  assert.deepEqual(rec.seen, ["connected tcp", "opened tcp", "closed tcp"]);
  assert.deepEqual(quota, ["+tcp test", "-tcp test"]);
  assert.equal(logged.length, 1);
  assert.equal(logged[0].session, "s1");
  assert.equal(logged[0].client, "192.0.2.1");
  assert.equal(logged[0].decision, "allow");
  session.close();
  session.close();
  assert.ok(session.closed);
});

Deno.test("core: a refused connect is failed(POLICY_DENIED), logged with its rule, and gives the quota back", async () => {
  const rec = recorder();
  const quota: string[] = [];
  const logged: DecisionRecord[] = [];
  const core = new SocketCore({
    log: (r) => logged.push(r),
    observer: rec.observer,
    quota: { acquire: (_s, k) => void quota.push(`+${k}`), release: (_s, k) => void quota.push(`-${k}`) },
  });
  const session = core.session({ frontend: "test", policy, clientIp: "192.0.2.1" });
  await assert.rejects(
    session.connect("connect", "10.1.2.3", 80),
    (e) => e instanceof WasmnetError && e.code === "POLICY_DENIED",
  );
  assert.deepEqual(rec.seen, ["failed POLICY_DENIED"]);
  assert.deepEqual(quota, ["+tcp", "-tcp"]);
  assert.equal(logged[0].decision, "deny");
  assert.match(logged[0].rule, /10\.0\.0\.0\/8/);
  session.close();
});

Deno.test("core: a quota that refuses stops the connect before any decision", async () => {
  const rec = recorder();
  const logged: DecisionRecord[] = [];
  const core = new SocketCore({
    log: (r) => logged.push(r),
    observer: rec.observer,
    quota: {
      acquire: () => {
        throw new WasmnetError("LIMIT_EXCEEDED", "shared cap reached");
      },
      release: () => assert.fail("nothing was acquired"),
    },
  });
  const session = core.session({ frontend: "test", policy, clientIp: "192.0.2.1" });
  await assert.rejects(
    session.connect("connect", "127.0.0.1", 9),
    (e) => e instanceof WasmnetError && e.code === "LIMIT_EXCEEDED",
  );
  assert.deepEqual(logged, []);
  assert.deepEqual(rec.seen, []);
  session.close();
});

Deno.test("core: listeners, accepted connections and UDP sockets are observed by kind", async () => {
  const rec = recorder();
  const core = new SocketCore({ observer: rec.observer, serverHost: "127.0.0.1" });
  const session = core.session({ frontend: "test", policy: Policy.allowAll(), clientIp: "127.0.0.1" });
  const listener = session.bindListener("127.0.0.1", 0);
  const accepting = session.acceptLoop(listener, (conn) => conn.close());
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  await client.read(new Uint8Array(1)); // end of stream: the accepted side closed
  client.close();
  listener.close();
  await accepting;
  const udp = await session.openUdp("connect_udp", "127.0.0.1", 9, {
    onDatagram: () => {},
    onError: () => {},
  }, { maxDatagramBytes: 1500, maxDatagramsPerSec: 0 });
  udp.close();
  await udp.whenClosed;
  await Promise.resolve();
  const kinds = (what: string) =>
    rec.seen.filter((s) => s.startsWith(what)).map((s) => s.split(" ")[1] as SocketKind);
  assert.deepEqual(kinds("opened").sort(), ["listener", "tcp", "udp"]);
  assert.deepEqual(kinds("closed").sort(), ["listener", "tcp", "udp"]);
  session.close();
});

Deno.test("core: without observer or quota a connection is handed back untouched", async () => {
  const echo = echoServer();
  const session = new SocketCore().session({ frontend: "test", policy, clientIp: "192.0.2.1" });
  try {
    const conn = await session.connect("connect", "127.0.0.1", echo.port);
    assert.ok(!Object.hasOwn(conn, "close"), "close is not wrapped");
    conn.close();
  } finally {
    echo.close();
    session.close();
  }
});

Deno.test("core: refusesEarly logs a denial before any lookup and lets the rest through", () => {
  const logged: DecisionRecord[] = [];
  const core = new SocketCore({ log: (r) => logged.push(r) });
  assert.match(core.refusesEarly(policy, "192.0.2.1", "websockify", "10.0.0.1", 80) ?? "", /10\.0\.0\.0\/8/);
  assert.equal(core.refusesEarly(policy, "192.0.2.1", "websockify", "example.com", 80), undefined);
  assert.deepEqual(logged.map((r) => [r.session, r.op, r.decision]), [["websockify", "websockify", "deny"]]);
});

Deno.test("core: forUpgrade changes the log and the client budget, keeps observer and quota", async () => {
  const rec = recorder();
  const base: DecisionRecord[] = [];
  const upgrade: DecisionRecord[] = [];
  const charged: number[] = [];
  const core = new SocketCore({ log: (r) => base.push(r), observer: rec.observer });
  const view = core.forUpgrade({
    log: (r) => upgrade.push(r),
    clientBudget: { take: (n) => void charged.push(n), ready: () => Promise.resolve() },
  });
  assert.equal(view.observer, core.observer);
  const session = view.session({ frontend: "test", policy, clientIp: "192.0.2.1" });
  await assert.rejects(session.connect("connect", "10.0.0.1", 80));
  assert.equal(base.length, 0);
  assert.equal(upgrade.length, 1);
  assert.deepEqual(rec.seen, ["failed POLICY_DENIED"]);
  const echo = echoServer();
  try {
    const conn = session.limit(await session.connect("connect", "127.0.0.1", echo.port), () => {});
    await conn.write(new Uint8Array(3));
    assert.deepEqual(charged, [3], "the client address's budget is charged");
    conn.close();
  } finally {
    echo.close();
    session.close();
  }
});
