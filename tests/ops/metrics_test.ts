/**
 * End to end: the admin listener's `/metrics` after scripted sessions on every front end. Counters move by
 * exactly what the traffic did (sessions, WebSocket bytes each way as the client counted them, decisions by
 * rule), the output passes `promtool check metrics`, and each ended session has its access line.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { b64, TestClient } from "../helpers.ts";
import { makeTestPki, startTlsServer, startUdpPeer } from "../network_helpers.ts";
import { SCRIPTS, startEchoOncePeer } from "./frontends.ts";
import { promtoolCheck, scrape, seriesValue, startOpsServer, until } from "./ops_helpers.ts";

const policy = Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["127.0.0.1"] } });
const ALLOW_RULE = 'network.allow[0] "127.0.0.1"';

for (const [name, script] of SCRIPTS) {
  Deno.test(`metrics: a ${name} session moves every counter by exactly its traffic`, async () => {
    const srv = await startOpsServer(policy);
    const peer = startEchoOncePeer();
    try {
      const before = await scrape(srv.admin);
      const done = await script(srv.ws, peer.port);
      await until(() => srv.access.length === 1, 5000, "the access line");
      const after = await scrape(srv.admin);
      const delta = (series: string, labels: Record<string, string>) =>
        seriesValue(after, series, labels) - seriesValue(before, series, labels);

      const fe = { frontend: done.frontend, framing: done.framing };
      assert.equal(delta("wasmnet_sessions_total", fe), 1, "one session opened");
      assert.equal(seriesValue(after, "wasmnet_sessions_open", fe), 0, "and closed");
      assert.equal(
        delta("wasmnet_websocket_bytes_total", { frontend: done.frontend, direction: "up" }),
        done.up,
      );
      assert.equal(
        delta("wasmnet_websocket_bytes_total", { frontend: done.frontend, direction: "down" }),
        done.down,
      );
      assert.equal(delta("wasmnet_decisions_total", { op: done.op, outcome: "allow", rule: ALLOW_RULE }), 1);
      // The core counted the one TCP socket, its connect, and its close.
      assert.equal(delta("wasmnet_sockets_total", { kind: "tcp" }), 1);
      assert.equal(seriesValue(after, "wasmnet_sockets_open", { kind: "tcp" }), 0);
      assert.equal(delta("wasmnet_connect_duration_seconds_count", { kind: "tcp" }), 1);

      const [line] = srv.access;
      assert.equal(line.frontend, done.frontend);
      assert.equal(line.framing, done.framing);
      assert.equal(line.client, "127.0.0.1");
      assert.equal(line.bytes_up, done.up);
      assert.equal(line.bytes_down, done.down);
      assert.equal(line.sockets, 1);
      assert.ok(line.duration_secs >= 0 && line.duration_secs < 60);
      assert.equal(typeof line.close_code, "number");

      const checked = await promtoolCheck(after);
      assert.equal(checked.code, 0, checked.output);
    } finally {
      await peer.close();
      await srv.close();
    }
  });
}

Deno.test("metrics: a denied connect is counted by its rule, refusals by reason, and no target is a label", async () => {
  const srv = await startOpsServer(
    Policy.fromConfig({
      network: { deny: ["10.0.0.0/8"] },
      server: { allowed_origins: ["https://app.test"] },
    }),
  );
  try {
    // Refused before the upgrade: a foreign origin (403).
    const refused = await fetch(`${srv.ws.replace("ws:", "http:")}/`, {
      headers: { upgrade: "websocket", connection: "upgrade", origin: "https://evil.test" },
    });
    await refused.body?.cancel();
    assert.equal(refused.status, 403);
    const c = new WebSocket(`${srv.ws}/`, { headers: { origin: "https://app.test" } } as unknown as string);
    await new Promise((r, j) => ((c.onopen = r), (c.onerror = j)));
    c.send(JSON.stringify({ op: "connect", id: 1, addr: "10.1.2.3", port: 80 }));
    await new Promise((r) => (c.onmessage = r));
    c.close();
    await until(() => srv.access.length === 1);
    // Refused by the accept loop: a request head over 16 KiB (431), and one that is not HTTP (400).
    const raw = async (bytes: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.running.addr.port });
      await conn.write(new TextEncoder().encode(bytes)).catch(() => {});
      const buf = new Uint8Array(1024);
      const n = await conn.read(buf).catch(() => null);
      conn.close();
      return new TextDecoder().decode(buf.subarray(0, n ?? 0));
    };
    assert.match(
      await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431/,
    );
    assert.match(await raw("NONSENSE\r\n\r\n"), /^HTTP\/1\.1 400/);
    const text = await scrape(srv.admin);
    assert.equal(seriesValue(text, "wasmnet_refusals_total", { reason: "origin" }), 1);
    assert.equal(seriesValue(text, "wasmnet_refusals_total", { reason: "size" }), 1);
    assert.equal(seriesValue(text, "wasmnet_refusals_total", { reason: "malformed" }), 1);
    assert.equal(
      seriesValue(text, "wasmnet_decisions_total", {
        op: "connect",
        outcome: "deny",
        rule: 'network.deny[0] "10.0.0.0/8"',
      }),
      1,
    );
    assert.doesNotMatch(
      text,
      /10\.1\.2\.3|127\.0\.0\.1|evil\.test/,
      "no target or client address as a label",
    );
    const checked = await promtoolCheck(text);
    assert.equal(checked.code, 0, checked.output);
  } finally {
    await srv.close();
  }
});

Deno.test("metrics: sockets by kind (tcp, tls, udp, listener) open and closed, connect time, errors by code", async () => {
  const pki = await makeTestPki();
  const tls = startTlsServer(pki.good);
  const udp = await startUdpPeer();
  const srv = await startOpsServer(
    Policy.fromConfig({
      network: { deny: ["10.0.0.0/8"], allow: ["127.0.0.1"], bind_addrs: ["127.0.0.1"] },
      tls: { ca_files: [pki.caFile] },
    }),
  );
  const closedPort = (() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  })();
  const c = new TestClient(`${srv.ws}/`);
  try {
    await c.opened;
    c.json({ op: "connect_tls", id: 1, addr: "127.0.0.1", port: tls.port });
    await c.event("connected", 1);
    c.json({ op: "connect_udp", id: 2, addr: "127.0.0.1", port: udp.port });
    await c.event("udp_bound", 2);
    c.json({ op: "bind", id: 3, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 3);
    c.json({ op: "connect", id: 4, addr: "127.0.0.1", port: closedPort });
    assert.equal((await c.event("error", 4)).code, "CONNECT_FAILED");
    c.json({ op: "connect", id: 5, addr: "10.1.1.1", port: 80 });
    assert.equal((await c.event("denied", 5)).code, "POLICY_DENIED");
    c.json({ op: "send", id: 1, data: b64("over tls") });
    await c.event("data", 1);

    const open = await scrape(srv.admin);
    for (const kind of ["tls", "udp", "listener"]) {
      assert.equal(seriesValue(open, "wasmnet_sockets_open", { kind }), 1, `${kind} open`);
      assert.equal(seriesValue(open, "wasmnet_sockets_total", { kind }), 1, `${kind} total`);
    }
    assert.equal(
      seriesValue(open, "wasmnet_sockets_open", { kind: "tcp" }),
      0,
      "the failed connect opened none",
    );
    assert.equal(seriesValue(open, "wasmnet_connect_duration_seconds_count", { kind: "tls" }), 1);
    assert.ok(seriesValue(open, "wasmnet_connect_duration_seconds_sum", { kind: "tls" }) > 0);
    assert.equal(seriesValue(open, "wasmnet_errors_total", { code: "CONNECT_FAILED" }), 1);
    assert.equal(seriesValue(open, "wasmnet_errors_total", { code: "POLICY_DENIED" }), 1);

    await c.close();
    await until(() => srv.access.length === 1);
    await until(
      async () => {
        const text = await scrape(srv.admin);
        return ["tls", "udp", "listener"].every((kind) =>
          seriesValue(text, "wasmnet_sockets_open", { kind }) === 0
        );
      },
      5000,
      "every socket closed with its session",
    );
    const checked = await promtoolCheck(await scrape(srv.admin));
    assert.equal(checked.code, 0, checked.output);
  } finally {
    await srv.close();
    await tls.close();
    await udp.close();
    await pki.remove();
  }
});
