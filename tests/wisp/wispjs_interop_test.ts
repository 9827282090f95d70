/**
 * Interop: the real `@mercuryworkshop/wisp-js` 0.5.0 client (running in Deno on its Node build, `ws`
 * WebSocket) against wasmnet's Wisp endpoint, v1 and v2.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { CloseReason } from "../../src/frontends/wisp/packets.ts";
import { startTcpEchoServer, startTcpServer } from "../helpers.ts";
import {
  closedPort,
  startBlackholeListener,
  startResetServer,
  startUdpEcho,
  startWispServer,
} from "./servers.ts";
import { wispEchoThroughput, WispJsClient } from "./wisp_client.ts";

for (const version of [1, 2] as const) {
  Deno.test(`wisp-js v${version}: TCP echo through wasmnet`, async () => {
    const echo = startTcpEchoServer();
    const srv = await startWispServer();
    const client = await WispJsClient.connect(srv.wispUrl, { version });
    try {
      assert.equal(client.version, version);
      const s = client.stream("127.0.0.1", echo.port);
      s.send("hello ");
      s.send("wisp");
      await s.waitForBytes(10);
      assert.equal(s.text(), "hello wisp");
      const wisp = srv.decisions.find((d) => d.op === "wisp");
      assert.equal(wisp?.decision, "allow", "the connect was decided and logged like wasmnet's own");
      assert.equal(wisp?.target, `127.0.0.1:${echo.port}`);
    } finally {
      await client.close();
      await srv.close();
      await echo.close();
    }
  });

  Deno.test(`wisp-js v${version}: UDP echo through wasmnet`, async () => {
    const echo = await startUdpEcho();
    const srv = await startWispServer();
    const client = await WispJsClient.connect(srv.wispUrl, { version });
    try {
      assert.equal(client.udpEnabled, true);
      const s = client.stream("127.0.0.1", echo.port, "udp");
      // Sent at once, while the server is still binding the socket: kept and sent once bound.
      s.send("ping");
      await s.waitForBytes(4);
      assert.equal(s.text(), "ping");
      const sizes = [1, 512, 1400];
      for (const n of sizes) s.send(new Uint8Array(n).fill(7));
      await s.waitForBytes(4 + 1 + 512 + 1400);
      assert.deepEqual(
        s.chunks.map((c) => c.length),
        [4, ...sizes],
        "datagrams are kept whole, never merged",
      );
      assert.ok(srv.decisions.some((d) => d.op === "wisp_udp" && d.decision === "allow"));
    } finally {
      await client.close();
      await srv.close();
      await echo.close();
    }
  });
}

Deno.test("wisp-js v2: MOTD is delivered", async () => {
  const srv = await startWispServer(Policy.allowAll(), { wisp: { motd: "welcome to wasmnet" } });
  const client = await WispJsClient.connect(srv.wispUrl);
  try {
    assert.equal(client.version, 2);
    assert.equal(client.motd, "welcome to wasmnet");
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("wisp-js v2: password extension, right password opens, wrong one does not", async () => {
  const echo = startTcpEchoServer();
  const srv = await startWispServer(Policy.allowAll(), { wisp: { passwords: { alice: "s3cret" } } });
  try {
    const client = await WispJsClient.connect(srv.wispUrl, {
      credentials: { username: "alice", password: "s3cret" },
    });
    const s = client.stream("127.0.0.1", echo.port);
    s.send("authed");
    await s.waitForBytes(6);
    assert.equal(s.text(), "authed");
    await client.close();
    await assert.rejects(
      WispJsClient.connect(srv.wispUrl, { credentials: { username: "alice", password: "nope" } }),
      /closed before it opened/,
    );
    await assert.rejects(
      WispJsClient.connect(srv.wispUrl),
      /closed before it opened/,
      "no credentials at all",
    );
    const auth = srv.decisions.filter((d) => d.op === "wisp_auth").map((d) => d.decision);
    assert.deepEqual(auth, ["allow", "deny"]);
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("wisp-js: 64 MiB through a TCP echo arrives intact (flow control both ways)", async () => {
  const echo = startTcpEchoServer();
  const srv = await startWispServer();
  try {
    for (const version of [2, 1] as const) {
      const r = await wispEchoThroughput(srv.wispUrl, echo.port, 64 * 1024 * 1024, 64 * 1024, version);
      assert.equal(r.bytes, 64 * 1024 * 1024);
      assert.ok(r.intact, `v${version}: every byte came back in order`);
    }
    assert.ok(
      !srv.decisions.some((d) => d.decision === "deny"),
      "a client within its credit is never throttled",
    );
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("wisp-js: close reasons the server sends", async (t) => {
  const refused = closedPort();
  const blackhole = await startBlackholeListener();
  const reset = await startResetServer();
  const udpEcho = await startUdpEcho();
  const echo = startTcpEchoServer();
  const goodbye = startTcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("bye"));
    conn.close();
  });
  const policy = Policy.fromConfig({
    network: {
      deny: ["127.0.0.2"],
      allow: ["*"],
      connection_timeout_secs: 1,
      max_connections: 3,
      socket_idle_timeout_secs: 1,
    },
  });
  const resolver = (name: string) =>
    name === "nowhere.test" ? Promise.reject(new Error("no such name")) : Promise.resolve(["127.0.0.1"]);
  const srv = await startWispServer(policy, { resolver });
  const client = await WispJsClient.connect(srv.wispUrl);
  try {
    await t.step("0x48 blocked by policy", async () => {
      assert.equal(await client.stream("127.0.0.2", echo.port).closeReason, CloseReason.BLOCKED);
    });
    await t.step("0x44 refused", async () => {
      assert.equal(await client.stream("127.0.0.1", refused).closeReason, CloseReason.REFUSED);
    });
    await t.step("0x43 connect timeout (target's backlog full)", async () => {
      assert.equal(await client.stream("127.0.0.1", blackhole.port).closeReason, CloseReason.CONNECT_TIMEOUT);
    });
    await t.step("0x42 unreachable (name does not resolve)", async () => {
      assert.equal(await client.stream("nowhere.test", 80).closeReason, CloseReason.UNREACHABLE);
    });
    await t.step("0x41 invalid stream type", async () => {
      assert.equal(await client.stream("127.0.0.1", echo.port, 7).closeReason, CloseReason.INVALID);
    });
    await t.step("0x02 voluntary: the target closed", async () => {
      const s = client.stream("127.0.0.1", goodbye.port);
      assert.equal(await s.closeReason, CloseReason.VOLUNTARY);
      assert.equal(s.text(), "bye");
    });
    await t.step("0x03 network error: the target reset the connection", async () => {
      const s = client.stream("127.0.0.1", reset.port);
      assert.equal(await s.closeReason, CloseReason.NETWORK_ERROR);
      assert.equal(s.text(), "hi");
    });
    await t.step("0x47 idle stream (socket_idle_timeout_secs)", async () => {
      const s = client.stream("127.0.0.1", echo.port);
      const t0 = Date.now();
      assert.equal(await s.closeReason, CloseReason.TRANSFER_TIMEOUT);
      assert.ok(Date.now() - t0 >= 900);
    });
    await t.step("0x47 idle UDP stream", async () => {
      const s = client.stream("127.0.0.1", udpEcho.port, "udp");
      assert.equal(await s.closeReason, CloseReason.TRANSFER_TIMEOUT);
    });
    await t.step("0x49 throttled: more streams than max_connections", async () => {
      const open = [0, 1, 2].map(() => client.stream("127.0.0.1", echo.port));
      for (const s of open) s.send("x");
      for (const s of open) await s.waitForBytes(1);
      assert.equal(await client.stream("127.0.0.1", echo.port).closeReason, CloseReason.THROTTLED);
      for (const s of open) s.close();
    });
  } finally {
    await client.close();
    await srv.close();
    await echo.close();
    await goodbye.close();
    await blackhole.close();
    await reset.close();
    await udpEcho.close();
  }
});

Deno.test("wisp-js: network.max_bandwidth_mbps paces Wisp streams like wasmnet sockets", async () => {
  const echo = startTcpEchoServer();
  // 16 Mbit/s = 2,000,000 bytes/s for both directions together; 1 MiB out + 1 MiB back ≈ 1 s.
  const srv = await startWispServer(Policy.fromConfig({ network: { deny: [], max_bandwidth_mbps: 16 } }));
  try {
    const r = await wispEchoThroughput(srv.wispUrl, echo.port, 1024 * 1024, 16 * 1024);
    assert.ok(r.intact);
    assert.ok(r.ms >= 800, `2 MiB through a 2 MB/s bucket took only ${r.ms.toFixed(0)} ms`);
  } finally {
    await srv.close();
    await echo.close();
  }
});
