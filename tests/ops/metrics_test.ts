/**
 * End to end: the admin listener's `/metrics` after scripted sessions on every front end. Counters move by
 * exactly what the traffic did (sessions, WebSocket bytes each way as the client counted them, decisions by
 * rule), the output passes `promtool check metrics`, and each ended session has its access line.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
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
    const text = await scrape(srv.admin);
    assert.equal(seriesValue(text, "wasmnet_refusals_total", { reason: "origin" }), 1);
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
