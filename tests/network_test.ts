/**
 * End to end for UDP, DNS and TLS: the real server, a raw WebSocket client speaking the protocol as
 * docs/network.md describes it, UDP peers and TLS servers (with a CA made by `openssl`) on loopback.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { Policy, type PolicyConfigInput } from "../src/policy/mod.ts";
import { decodeBinaryEvent, encodeBinaryRequest } from "@wasmnet/protocol";
import type { Event } from "@wasmnet/protocol";
import { cachingResolver } from "../src/core/sockets/dns.ts";
import { type Resolver, systemResolver } from "../src/core/sockets/resolver.ts";
import { b64, startServer, TestClient, unb64 } from "./helpers.ts";
import { makeTestPki, startTlsServer, startUdpPeer, type TestPki } from "./network_helpers.ts";

/** Test names: `tls.test` and `echo.test` are 127.0.0.1; anything else goes to the system resolver. */
const testResolver = (extra: Record<string, string[]> = {}): Resolver => {
  const system = systemResolver(2000);
  const table: Record<string, string[]> = { "tls.test": ["127.0.0.1"], "echo.test": ["127.0.0.1"], ...extra };
  return (name, signal) => (table[name] ? Promise.resolve([...table[name]]) : system(name, signal));
};

/** Everything allowed (like `--no-policy`), plus the given sections. */
const open = (extra: PolicyConfigInput = {}) =>
  Policy.fromConfig({ ...extra, network: { deny: [], allow: ["*"], ...extra.network } });

async function withClient(
  policy: Policy,
  body: (c: TestClient) => Promise<void>,
  resolver: Resolver | null = testResolver(),
): Promise<void> {
  const srv = await startServer(policy, { resolver: resolver ?? undefined });
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    await body(c);
  } finally {
    await c.close();
    await srv.close();
  }
}

// ---------------------------------------------------------------- UDP

Deno.test("udp: connect_udp, datagrams to an echo server come back one for one, never merged or split", async () => {
  const echo = await startUdpPeer();
  try {
    await withClient(open(), async (c) => {
      c.json({ op: "connect_udp", id: 1, addr: "127.0.0.1", port: echo.port });
      const bound = await c.event("udp_bound", 1);
      assert.ok(Number.isInteger(bound.port) && (bound.port as number) > 0);
      const sizes = [1, 1200, 0, 9000, 3];
      for (const [i, n] of sizes.entries()) {
        c.json({ op: "send", id: 1, data: b64(new Uint8Array(n).fill(i + 65)) });
        // one at a time: loopback UDP may reorder nothing, but the test must not depend on it
        const data = Uint8Array.fromBase64((await c.event("data", 1)).data as string);
        assert.equal(data.length, n);
        assert.ok(data.every((b) => b === i + 65));
      }
      assert.deepEqual(echo.received.map((r) => r.data.length), sizes);
      assert.equal(echo.received[0].port, bound.port, "datagrams leave from the bound port");
      c.json({ op: "close", id: 1 });
      assert.deepEqual(await c.event("closed", 1), { ev: "closed", id: 1 });
    });
  } finally {
    await echo.close();
  }
});

Deno.test("udp: send_to another destination answers as data_from with the source", async () => {
  const echo = await startUdpPeer();
  const other = await startUdpPeer();
  try {
    await withClient(open(), async (c) => {
      c.json({ op: "connect_udp", id: 2, addr: "echo.test", port: echo.port });
      await c.event("udp_bound", 2);
      c.json({ op: "send_to", id: 2, addr: "127.0.0.1", port: other.port, data: b64("to the other") });
      const from = await c.event("data_from", 2);
      assert.equal(unb64(from.data), "to the other");
      assert.equal(from.addr, "127.0.0.1");
      assert.equal(from.port, other.port);
      // send_to the target itself is data, like send
      c.json({ op: "send_to", id: 2, addr: "127.0.0.1", port: echo.port, data: b64("to the target") });
      assert.equal(unb64((await c.event("data", 2)).data), "to the target");
    });
  } finally {
    await echo.close();
    await other.close();
  }
});

Deno.test("udp: every target and send_to destination is checked by the policy", async () => {
  const echo = await startUdpPeer();
  const other = await startUdpPeer();
  try {
    const policy = Policy.fromConfig({ network: { deny: ["*"], allow: [`127.0.0.1:${echo.port}`] } });
    await withClient(policy, async (c) => {
      c.json({ op: "connect_udp", id: 1, addr: "127.0.0.1", port: other.port });
      const denied = await c.event("denied", 1);
      assert.equal(denied.code, "POLICY_DENIED");
      c.json({ op: "connect_udp", id: 2, addr: "10.0.0.1", port: 53 });
      assert.equal((await c.event("denied", 2)).code, "POLICY_DENIED");

      c.json({ op: "connect_udp", id: 3, addr: "127.0.0.1", port: echo.port });
      await c.event("udp_bound", 3);
      c.json({ op: "send_to", id: 3, addr: "127.0.0.1", port: other.port, data: b64("sneaky") });
      assert.equal((await c.event("denied", 3)).code, "POLICY_DENIED");
      c.json({ op: "send_to", id: 3, addr: "0x7f.1", port: other.port, data: b64("sneakier") });
      assert.equal((await c.event("denied", 3)).code, "POLICY_DENIED");
      // the socket is still usable after a refused datagram
      c.json({ op: "send", id: 3, data: b64("fine") });
      assert.equal(unb64((await c.event("data", 3)).data), "fine");
      assert.equal(other.received.length, 0, "nothing reached the denied peer");
    });
  } finally {
    await echo.close();
    await other.close();
  }
});

Deno.test("udp: datagrams from sources the policy denies are dropped; allowed strangers arrive as data_from", async () => {
  const echo = await startUdpPeer();
  const friend = await startUdpPeer(false);
  const stranger = await startUdpPeer(false);
  try {
    const policy = Policy.fromConfig({
      network: { deny: ["*"], allow: [`127.0.0.1:${echo.port}`, `127.0.0.1:${friend.port}`] },
    });
    await withClient(policy, async (c) => {
      c.json({ op: "connect_udp", id: 4, addr: "127.0.0.1", port: echo.port });
      const { port } = await c.event("udp_bound", 4);
      await stranger.send(new TextEncoder().encode("from a stranger"), port as number);
      await friend.send(new TextEncoder().encode("from a friend"), port as number);
      const from = await c.event("data_from", 4);
      assert.equal(unb64(from.data), "from a friend");
      assert.equal(from.port, friend.port);
      c.json({ op: "send", id: 4, data: b64("sync") });
      await c.event("data", 4);
      assert.ok(!c.messages.some((m) => !(m instanceof Uint8Array) && m.ev === "data_from"));
    });
  } finally {
    await echo.close();
    await friend.close();
    await stranger.close();
  }
});

Deno.test("udp: datagram size limit and per-socket rate limit refuse and drop, the socket stays open", async () => {
  const echo = await startUdpPeer();
  try {
    const policy = open({ udp: { max_datagram_bytes: 100, max_datagrams_per_sec: 5 } });
    await withClient(policy, async (c) => {
      c.json({ op: "connect_udp", id: 5, addr: "127.0.0.1", port: echo.port });
      await c.event("udp_bound", 5);
      c.json({ op: "send", id: 5, data: b64(new Uint8Array(101)) });
      const tooBig = await c.event("error", 5);
      assert.equal(tooBig.code, "BAD_REQUEST");
      assert.match(tooBig.msg as string, /max_datagram_bytes/);
      for (let i = 0; i < 12; i++) c.json({ op: "send", id: 5, data: b64(new Uint8Array(100).fill(i)) });
      const limited = await c.event("error", 5);
      assert.equal(limited.code, "LIMIT_EXCEEDED");
      c.json({ op: "close", id: 5 });
      await c.event("closed", 5);
      const echoed = c.messages.filter((m) => !(m instanceof Uint8Array) && m.ev === "data").length;
      assert.ok(
        echo.received.length <= 6,
        `at most a burst of 5 (+1 refill) got through, got ${echo.received.length}`,
      );
      assert.ok(echoed <= echo.received.length);
      assert.ok(echo.received.every((r) => r.data.length === 100), "no datagram over 100 bytes was sent");
    });
  } finally {
    await echo.close();
  }
});

Deno.test("udp: sockets count in max_connections; errors on wrong ids", async () => {
  const echo = await startUdpPeer();
  try {
    await withClient(open({ network: { max_connections: 1 } }), async (c) => {
      c.json({ op: "connect_udp", id: 1, addr: "127.0.0.1", port: echo.port });
      await c.event("udp_bound", 1);
      c.json({ op: "connect_udp", id: 2, addr: "127.0.0.1", port: echo.port });
      assert.equal((await c.event("error", 2)).code, "LIMIT_EXCEEDED");
      c.json({ op: "connect", id: 3, addr: "127.0.0.1", port: echo.port });
      assert.equal((await c.event("error", 3)).code, "LIMIT_EXCEEDED");
      c.json({ op: "connect_udp", id: 1, addr: "127.0.0.1", port: echo.port });
      assert.equal((await c.event("error", 1)).code, "DUPLICATE_ID");
      c.json({ op: "send_to", id: 9, addr: "127.0.0.1", port: echo.port, data: b64("x") });
      assert.equal((await c.event("error", 9)).code, "UNKNOWN_ID");
      c.json({ op: "close", id: 1 });
      await c.event("closed", 1);
      c.json({ op: "connect_udp", id: 2, addr: "127.0.0.1", port: echo.port });
      await c.event("udp_bound", 2);
    });
  } finally {
    await echo.close();
  }
});

Deno.test("udp: close while the target is still being resolved answers closed, and nothing after", async () => {
  const echo = await startUdpPeer();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = testResolver();
  const resolver: Resolver = (name, signal) =>
    name === "slow.test" ? gate.then(() => ["127.0.0.1"]) : slow(name, signal);
  try {
    await withClient(open(), async (c) => {
      c.json({ op: "connect_udp", id: 1, addr: "slow.test", port: echo.port });
      c.json({ op: "close", id: 1 });
      assert.deepEqual(await c.event("closed", 1), { ev: "closed", id: 1 });
      release();
      c.json({ op: "resolve", id: 99, name: "tls.test" }); // a round trip after the late bind
      await c.event("resolved", 99);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(c.messages, [], "no udp_bound, error or second closed for id 1");
    }, resolver);
  } finally {
    await echo.close();
  }
});

Deno.test("udp: the server's UDP socket is closed when the session ends", async () => {
  const echo = await startUdpPeer();
  let port = 0;
  // Binding the same port only works once the server has let go of it.
  const canBind = async () => {
    const probe = dgram.createSocket("udp4");
    const ok = await new Promise<boolean>((resolve) => {
      probe.once("error", () => resolve(false));
      probe.bind(port, () => resolve(true));
    });
    await new Promise<void>((r) => probe.close(() => r()));
    return ok;
  };
  try {
    await withClient(open(), async (c) => {
      c.json({ op: "connect_udp", id: 1, addr: "127.0.0.1", port: echo.port });
      port = (await c.event("udp_bound", 1)).port as number;
      assert.equal(await canBind(), false, "the port is held while the session is open");
    });
    let rebound = false;
    for (let i = 0; i < 50 && !rebound; i++) {
      rebound = await canBind();
      if (!rebound) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(rebound, `UDP port ${port} is still held after the session ended`);
  } finally {
    await echo.close();
  }
});

Deno.test("udp: the binary framing carries udp_bound, data and data_from as specified", async () => {
  const echo = await startUdpPeer();
  const other = await startUdpPeer();
  try {
    await withClient(open(), async (c) => {
      const send = (r: Parameters<typeof encodeBinaryRequest>[0]) => c.raw(encodeBinaryRequest(r));
      const next = async <E extends Event["ev"]>(ev: E) =>
        decodeBinaryEvent(await c.nextBinary((m) => decodeBinaryEvent(m).ev === ev)) as Extract<
          Event,
          { ev: E }
        >;
      send({ op: "connect_udp", id: 6, addr: "127.0.0.1", port: echo.port });
      const bound = await next("udp_bound");
      assert.equal(bound.id, 6);
      send({ op: "send", id: 6, data: new Uint8Array([1, 2, 3]) });
      assert.deepEqual([...(await next("data")).data], [1, 2, 3]);
      send({ op: "send_to", id: 6, addr: "127.0.0.1", port: other.port, data: new Uint8Array([9, 8]) });
      const from = await next("data_from");
      assert.deepEqual([...from.data], [9, 8]);
      assert.equal(from.addr, "127.0.0.1");
      assert.equal(from.port, other.port);
      // the wire layout: port (u16 BE), address length (u16 BE), address, data
      send({ op: "send_to", id: 6, addr: "127.0.0.1", port: other.port, data: new Uint8Array([7]) });
      const raw = await c.nextBinary((m) => m[0] === 0x88);
      const payload = raw.subarray(9);
      assert.equal((payload[0] << 8) | payload[1], other.port);
      assert.equal((payload[2] << 8) | payload[3], 9);
      assert.equal(new TextDecoder().decode(payload.subarray(4, 13)), "127.0.0.1");
      assert.deepEqual([...payload.subarray(13)], [7]);
    });
  } finally {
    await echo.close();
    await other.close();
  }
});

// ---------------------------------------------------------------- DNS

Deno.test("dns: resolve answers with only the addresses the policy allows", async () => {
  const resolver = testResolver({
    "mixed.test": ["127.0.0.1", "93.184.216.34", "10.1.1.1", "2606:4700::1"],
    "inside.test": ["10.0.0.1", "192.168.0.1"],
  });
  await withClient(Policy.defaults(), async (c) => {
    c.json({ op: "resolve", id: 1, name: "mixed.test" });
    assert.deepEqual(await c.event("resolved", 1), {
      ev: "resolved",
      id: 1,
      addrs: ["93.184.216.34", "2606:4700::1"],
    });
    c.json({ op: "resolve", id: 2, name: "inside.test" });
    const denied = await c.event("denied", 2);
    assert.equal(denied.code, "POLICY_DENIED");
    assert.match(denied.msg as string, /inside\.test resolves only to addresses/);
    c.json({ op: "resolve", id: 3, name: "localhost" });
    assert.equal((await c.event("denied", 3)).code, "POLICY_DENIED");
    c.json({ op: "resolve", id: 4, name: "no-such-name.invalid" });
    assert.equal((await c.event("error", 4)).code, "RESOLVE_FAILED");
  }, resolver);
});

Deno.test("dns: the default server resolver answers from the system, through the cache", async () => {
  await withClient(open(), async (c) => {
    c.json({ op: "resolve", id: 1, name: "localhost" });
    const { addrs } = await c.event("resolved", 1);
    assert.ok((addrs as string[]).some((a) => a === "127.0.0.1" || a === "::1"), `got ${addrs}`);
  }, null);
});

Deno.test("dns: a lookup that hangs fails with RESOLVE_FAILED after dns.timeout_ms", async () => {
  const hang: Resolver = () => new Promise(() => {});
  const resolver = cachingResolver(hang, { entries: 8, ttlSecs: 60, timeoutMs: 100 });
  await withClient(open(), async (c) => {
    c.json({ op: "resolve", id: 1, name: "slow.test" });
    const err = await c.event("error", 1);
    assert.equal(err.code, "RESOLVE_FAILED");
    assert.match(err.msg as string, /timed out/);
  }, resolver);
});

Deno.test("dns: resolve ids take no socket slot; binary resolve answers a JSON array", async () => {
  const echo = await startUdpPeer();
  try {
    await withClient(open({ network: { max_connections: 1 } }), async (c) => {
      c.json({ op: "connect_udp", id: 1, addr: "127.0.0.1", port: echo.port });
      await c.event("udp_bound", 1);
      c.json({ op: "resolve", id: 1, name: "tls.test" });
      assert.deepEqual((await c.event("resolved", 1)).addrs, ["127.0.0.1"]);
      c.raw(encodeBinaryRequest({ op: "resolve", id: 2, name: "echo.test" }));
      const raw = await c.nextBinary((m) => m[0] === 0x89);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(raw.subarray(9))), ["127.0.0.1"]);
      // the UDP socket is untouched
      c.json({ op: "send", id: 1, data: b64("still here") });
      assert.equal(unb64((await c.event("data", 1)).data), "still here");
    });
  } finally {
    await echo.close();
  }
});

Deno.test("dns: lookups in flight per session are bounded by max_pending_connects", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const base = testResolver();
  const resolver: Resolver = (name, signal) =>
    name === "slow.test" ? gate.then(() => ["93.184.216.34"]) : base(name, signal);
  await withClient(open({ network: { max_pending_connects: 2 } }), async (c) => {
    c.json({ op: "resolve", id: 1, name: "slow.test" });
    c.json({ op: "resolve", id: 2, name: "slow.test" });
    c.json({ op: "resolve", id: 3, name: "slow.test" });
    assert.equal((await c.event("error", 3)).code, "LIMIT_EXCEEDED");
    release();
    assert.deepEqual((await c.event("resolved", 1)).addrs, ["93.184.216.34"]);
    assert.deepEqual((await c.event("resolved", 2)).addrs, ["93.184.216.34"]);
    c.json({ op: "resolve", id: 3, name: "slow.test" });
    await c.event("resolved", 3);
  }, resolver);
});

// ---------------------------------------------------------------- TLS

async function withPki(body: (pki: TestPki) => Promise<void>): Promise<void> {
  const pki = await makeTestPki();
  try {
    await body(pki);
  } finally {
    await pki.remove();
  }
}

Deno.test("tls: connect_tls to a name verified with the operator's CA; data is plaintext to the client", async () => {
  await withPki(async (pki) => {
    const tls = startTlsServer(pki.good);
    try {
      await withClient(open({ tls: { ca_files: [pki.caFile] } }), async (c) => {
        c.json({ op: "connect_tls", id: 1, addr: "tls.test", port: tls.port });
        assert.deepEqual(await c.event("connected", 1), { ev: "connected", id: 1 });
        c.json({ op: "send", id: 1, data: b64("over TLS") });
        assert.equal(unb64((await c.event("data", 1)).data), "over TLS");
        c.json({ op: "close", id: 1 });
        await c.event("closed", 1);
        // binary framing, and an IP address as the name (the certificate has IP:127.0.0.1)
        c.raw(encodeBinaryRequest({ op: "connect_tls", id: 2, addr: "127.0.0.1", port: tls.port }));
        assert.equal(decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x81)).id, 2);
      });
    } finally {
      await tls.close();
    }
  });
});

Deno.test("tls: the peer's close after a response ends in closed", async () => {
  await withPki(async (pki) => {
    const tls = startTlsServer(pki.good, async (conn) => {
      const buf = new Uint8Array(1024);
      const n = await conn.read(buf);
      await conn.write(new TextEncoder().encode(`HTTP/1.0 200 OK\r\n\r\nyou said ${n} bytes`));
      conn.close();
    });
    try {
      await withClient(open({ tls: { ca_files: [pki.caFile] } }), async (c) => {
        c.json({ op: "connect_tls", id: 1, addr: "tls.test", port: tls.port });
        await c.event("connected", 1);
        c.json({ op: "send", id: 1, data: b64("GET / HTTP/1.0\r\n\r\n") });
        assert.match(unb64((await c.event("data", 1)).data), /200 OK\r\n\r\nyou said 18 bytes/);
        await c.event("closed", 1);
      });
    } finally {
      await tls.close();
    }
  });
});

Deno.test("tls: bad certificates (wrong name, unknown CA, expired, CA not configured) are TLS_FAILED", async () => {
  await withPki(async (pki) => {
    const cases = [
      {
        pair: pki.wrongName,
        caFiles: [pki.caFile],
        why: /not valid for name|NotValidForName|CertNotValidForName/i,
      },
      { pair: pki.unknownCa, caFiles: [pki.caFile], why: /UnknownIssuer|unknown issuer/i },
      { pair: pki.expired, caFiles: [pki.caFile], why: /Expired/i },
      { pair: pki.good, caFiles: [], why: /UnknownIssuer|unknown issuer/i },
    ];
    for (const { pair, caFiles, why } of cases) {
      const tls = startTlsServer(pair);
      try {
        await withClient(open({ tls: { ca_files: caFiles } }), async (c) => {
          c.json({ op: "connect_tls", id: 1, addr: "tls.test", port: tls.port });
          const err = await c.event("error", 1);
          assert.equal(err.code, "TLS_FAILED");
          assert.match(err.msg as string, why);
          // the id is free again
          c.json({ op: "send", id: 1, data: b64("x") });
          assert.equal((await c.event("error", 1)).code, "UNKNOWN_ID");
        });
      } finally {
        await tls.close();
      }
    }
  });
});

Deno.test("tls: an unreadable CA file fails connect_tls without telling the client where it is", async () => {
  await withClient(open({ tls: { ca_files: ["/nonexistent/wasmnet-ca.pem"] } }), async (c) => {
    c.json({ op: "connect_tls", id: 1, addr: "tls.test", port: 443 });
    const err = await c.event("error", 1);
    assert.equal(err.code, "TLS_FAILED");
    assert.doesNotMatch(err.msg as string, /nonexistent/);
  });
});

Deno.test("tls: connect_tls is policy-checked like connect", async () => {
  await withClient(Policy.defaults(), async (c) => {
    c.json({ op: "connect_tls", id: 1, addr: "tls.test", port: 443 });
    assert.equal((await c.event("denied", 1)).code, "POLICY_DENIED");
  });
});
