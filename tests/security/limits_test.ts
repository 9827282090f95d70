/**
 * Limits that hold under abuse, end to end: bind policy, listeners, connects in flight, bandwidth (both
 * directions), socket and session idle timeouts, and the maximum message size (close 1009).
 */

import assert from "node:assert/strict";
import { Policy, type PolicyConfigInput } from "../../src/policy/mod.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { b64, startServer, startTcpEchoServer, startTcpServer, TestClient } from "../helpers.ts";

async function withClient(
  config: PolicyConfigInput,
  body: (c: TestClient, srv: Awaited<ReturnType<typeof startServer>>) => Promise<void>,
  options: { resolver?: Resolver; hostname?: string } = {},
) {
  const srv = await startServer(Policy.fromConfig(config), options);
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    await body(c, srv);
  } finally {
    await c.close();
    await srv.close();
  }
}

const OPEN = { deny: [] as string[], allow: ["*"] };

Deno.test("bind policy: default bind_addrs is the server's own host; bind_addrs and bind_ports rules", async () => {
  await withClient({ network: OPEN }, async (c, srv) => {
    c.json({ op: "bind", id: 1, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 1);
    for (const [id, addr] of [[2, "0.0.0.0"], [3, "127.0.0.2"], [4, "::"], [5, "10.0.0.1"]] as const) {
      c.json({ op: "bind", id, addr, port: 0 });
      assert.equal((await c.event("denied", id)).code, "POLICY_DENIED", addr);
    }
    c.json({ op: "bind", id: 6, addr: "127.0.0.1", port: 80 });
    assert.equal(
      (await c.event("denied", 6)).code,
      "POLICY_DENIED",
      "privileged ports are not in the default bind_ports",
    );
    const binds = srv.decisions.filter((d) => d.op === "bind");
    assert.equal(binds[0].decision, "allow");
    assert.match(binds[1].rule, /default bind_addrs/);
  });
  await withClient(
    { network: { ...OPEN, bind_addrs: ["127.0.0.0/8"], bind_ports: "20000-60000" } },
    async (c) => {
      c.json({ op: "bind", id: 1, addr: "127.0.0.2", port: 0 });
      const l = await c.event("listening", 1);
      assert.ok((l.port as number) >= 20000 && (l.port as number) <= 60000);
      c.json({ op: "bind", id: 2, addr: "0x7f.0.0.3", port: 0 });
      await c.event("listening", 2); // odd spellings are normalised, then checked
      c.json({ op: "bind", id: 3, addr: "0.0.0.0", port: 0 });
      assert.equal((await c.event("denied", 3)).code, "POLICY_DENIED");
      c.json({ op: "bind", id: 4, addr: "127.0.0.1", port: 60001 });
      assert.equal((await c.event("denied", 4)).code, "POLICY_DENIED");
    },
  );
  await withClient({ network: { ...OPEN, bind_ports: [] } }, async (c) => {
    c.json({ op: "bind", id: 1, addr: "127.0.0.1", port: 0 });
    assert.equal((await c.event("denied", 1)).code, "POLICY_DENIED", "bind_ports = [] forbids binding");
  });
});

Deno.test("max_listeners and max_pending_connects per session", async () => {
  await withClient({ network: { ...OPEN, max_listeners: 1 } }, async (c) => {
    c.json({ op: "bind", id: 1, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 1);
    c.json({ op: "bind", id: 2, addr: "127.0.0.1", port: 0 });
    assert.equal((await c.event("error", 2)).code, "LIMIT_EXCEEDED");
    c.json({ op: "close", id: 1 });
    await c.event("closed", 1);
    c.json({ op: "bind", id: 2, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 2);
  });
  // A slow resolver keeps connects in flight for a while.
  const slow: Resolver = () => new Promise((r) => setTimeout(() => r(["127.0.0.1"]), 300));
  const echo = startTcpEchoServer();
  try {
    await withClient({ network: { ...OPEN, max_pending_connects: 2 } }, async (c) => {
      c.json({ op: "connect", id: 1, addr: "slow.test", port: echo.port });
      c.json({ op: "connect", id: 2, addr: "slow.test", port: echo.port });
      c.json({ op: "connect", id: 3, addr: "slow.test", port: echo.port });
      const err = await c.event("error", 3);
      assert.equal(err.code, "LIMIT_EXCEEDED");
      assert.match(err.msg as string, /max_pending_connects/);
      await c.event("connected", 1);
      await c.event("connected", 2);
      c.json({ op: "connect", id: 3, addr: "slow.test", port: echo.port });
      await c.event("connected", 3); // no longer in flight: the slot is free again
    }, { resolver: slow });
  } finally {
    await echo.close();
  }
});

const MBPS = 16; // 2,000,000 bytes/s
const RATE = MBPS * 125_000;

Deno.test("max_bandwidth_mbps caps a session's download rate (roughly, not a tight timing test)", async () => {
  const total = 3_000_000;
  const source = startTcpServer(async (conn) => {
    const chunk = new Uint8Array(64 * 1024);
    let sent = 0;
    try {
      while (sent < total) sent += await conn.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
    } catch { /* client gone */ }
  });
  try {
    await withClient({ network: { ...OPEN, max_bandwidth_mbps: MBPS } }, async (c) => {
      c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: source.port });
      await c.event("connected", 1);
      const t0 = performance.now();
      let got = 0;
      while (got < total) {
        got += Uint8Array.fromBase64((await c.event("data", 1, 20_000)).data as string).length;
      }
      const secs = (performance.now() - t0) / 1000;
      const rate = total / secs;
      assert.ok(rate < RATE * 1.5, `download ran at ${Math.round(rate)} B/s, cap ${RATE}`);
      assert.ok(rate > RATE * 0.2, `download ran at ${Math.round(rate)} B/s, far below the cap ${RATE}`);
    });
  } finally {
    await source.close();
  }
});

Deno.test("max_bandwidth_mbps caps a session's upload rate too", async () => {
  const total = 3_000_000;
  let received = 0;
  let done: () => void;
  const all = new Promise<void>((r) => (done = r));
  const sink = startTcpServer(async (conn) => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      received += n;
      if (received >= total) done();
    }
  });
  try {
    await withClient({ network: { ...OPEN, max_bandwidth_mbps: MBPS } }, async (c) => {
      c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: sink.port });
      await c.event("connected", 1);
      const t0 = performance.now();
      const piece = b64(new Uint8Array(100_000));
      for (let sent = 0; sent < total; sent += 100_000) c.json({ op: "send", id: 1, data: piece });
      await all;
      const rate = total / ((performance.now() - t0) / 1000);
      assert.ok(rate < RATE * 1.5, `upload ran at ${Math.round(rate)} B/s, cap ${RATE}`);
      assert.ok(rate > RATE * 0.2, `upload ran at ${Math.round(rate)} B/s`);
    });
  } finally {
    await sink.close();
  }
});

Deno.test("socket_idle_timeout_secs: an idle socket gets error IDLE_TIMEOUT then closed; a busy one stays", async () => {
  const echo = startTcpEchoServer();
  try {
    await withClient({ network: { ...OPEN, socket_idle_timeout_secs: 1 } }, async (c) => {
      c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
      c.json({ op: "connect", id: 2, addr: "127.0.0.1", port: echo.port });
      await c.event("connected", 1);
      await c.event("connected", 2);
      const t0 = Date.now();
      const keepBusy = setInterval(() => c.json({ op: "send", id: 2, data: b64("tick") }), 200);
      try {
        const err = await c.event("error", 1, 4000);
        assert.equal(err.code, "IDLE_TIMEOUT");
        await c.event("closed", 1);
        const after = Date.now() - t0;
        assert.ok(after >= 900 && after < 3000, `closed after ${after} ms`);
        await new Promise((r) => setTimeout(r, 600));
      } finally {
        clearInterval(keepBusy);
      }
      assert.ok(
        !c.messages.some((m) => !(m instanceof Uint8Array) && m.id === 2 && m.ev === "closed"),
        "socket 2 stayed open",
      );
    });
  } finally {
    await echo.close();
  }
});

Deno.test("session_idle_timeout_secs closes a silent session with 4408", async () => {
  const srv = await startServer(Policy.fromConfig({ server: { session_idle_timeout_secs: 1 } }));
  try {
    const c = new TestClient(srv.url);
    await c.opened;
    const t0 = Date.now();
    const ev = await c.closed;
    assert.equal(ev.code, 4408);
    assert.ok(Date.now() - t0 >= 900);
  } finally {
    await srv.close();
  }
});

Deno.test("max_message_bytes: a larger message closes the WebSocket with 1009 before it is decoded", async () => {
  for (const message of ["x".repeat(2000), new Uint8Array(2000), "é".repeat(600)]) {
    const srv = await startServer(Policy.fromConfig({ server: { max_message_bytes: 1024 } }));
    try {
      const c = new TestClient(srv.url);
      await c.opened;
      c.json({ op: "close", id: 77 }); // small: answered
      assert.equal((await c.event("error", 77)).code, "UNKNOWN_ID");
      c.raw(message);
      const ev = await c.closed;
      assert.equal(ev.code, 1009);
      assert.ok(
        !c.messages.some((m) => !(m instanceof Uint8Array) && m.code === "BAD_REQUEST"),
        "never decoded",
      );
    } finally {
      await srv.close();
    }
  }
});
