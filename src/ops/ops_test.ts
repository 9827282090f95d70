/**
 * Units of src/ops: the live policy view, the logger's two formats and its levels, the metrics' bounded
 * labels.
 */

import assert from "node:assert/strict";
import { decideTarget, Policy } from "../policy/mod.ts";
import { notLiveChanges, PolicyHolder } from "./live_policy.ts";
import { createLogger } from "./logger.ts";
import { framingLabel, MAX_RULE_LABELS, ServerMetrics } from "./metrics.ts";

const only = (target: string) => Policy.fromConfig({ network: { deny: [], allow: [target] } });

Deno.test("live policy: the view decides under the policy in force, narrowed views too", () => {
  const holder = new PolicyHolder(only("192.0.2.1"));
  const view = holder.view;
  assert.ok(view instanceof Policy);
  const narrowed = view.narrow({ source: "token", targets: [...only("*").rules.allow] });
  assert.equal(decideTarget(view, "192.0.2.1", 80).kind, "allow");
  assert.equal(decideTarget(view, "192.0.2.2", 80).kind, "deny");
  assert.equal(decideTarget(narrowed, "192.0.2.1", 80).kind, "allow");
  holder.replace(only("192.0.2.2"));
  assert.equal(decideTarget(view, "192.0.2.1", 80).kind, "deny", "the old rule is gone");
  assert.equal(decideTarget(view, "192.0.2.2", 80).kind, "allow");
  assert.equal(decideTarget(narrowed, "192.0.2.2", 80).kind, "allow", "a narrowed view follows the reload");
  assert.equal(view.config.network.allow[0], "192.0.2.2");
  assert.throws(() => ((view as unknown as Record<string, unknown>).source = "x"), TypeError);
});

Deno.test("live policy: notLiveChanges names the start-up-only keys that changed, and only those", () => {
  const a = Policy.fromConfig({ dns: { timeout_ms: 100 } }).config;
  const b = Policy.fromConfig({
    dns: { timeout_ms: 200 },
    admin: { listen: "9090" },
    cluster: { lease_secs: 10 },
    server: { workers: 2, max_sessions: 5 },
    network: { allow: ["192.0.2.1"] },
  }).config;
  assert.deepEqual(notLiveChanges(a, b), [
    "dns.timeout_ms",
    "admin.listen",
    "cluster.lease_secs",
    "server.workers",
  ]);
  assert.deepEqual(notLiveChanges(a, a), []);
});

Deno.test("logger: json and text lines, levels filter, nothing but the given fields", () => {
  const lines: [string, string][] = [];
  const now = () => new Date("2026-01-02T03:04:05.000Z");
  const json = createLogger({ format: "json", level: "info", write: (l, lv) => lines.push([l, lv]), now });
  json.decision({
    session: "s1",
    client: "192.0.2.9",
    op: "connect",
    target: "a.test:80",
    decision: "allow",
    rule: "r",
  });
  json.log("debug", "noise");
  json.log("warn", "reload_not_live", { settings: ["dns.timeout_ms"] });
  assert.deepEqual(lines.map((l) => l[1]), ["info", "warn"]);
  assert.deepEqual(JSON.parse(lines[0][0]), {
    time: "2026-01-02T03:04:05.000Z",
    level: "info",
    event: "decision",
    session: "s1",
    client: "192.0.2.9",
    op: "connect",
    target: "a.test:80",
    decision: "allow",
    rule: "r",
  });
  lines.length = 0;
  const text = createLogger({ format: "text", level: "warn", write: (l, lv) => lines.push([l, lv]), now });
  text.access({
    session: "s1",
    frontend: "wasmnet",
    framing: "none",
    client: "192.0.2.9",
    duration_secs: 1.5,
    bytes_up: 10,
    bytes_down: 20,
    sockets: 1,
    close_code: 1000,
  });
  assert.equal(lines.length, 0, "access lines are info");
  text.log("error", "policy_reload_failed", { error: 'p.toml: network.allow[0] "x y" is bad' });
  assert.equal(
    lines[0][0],
    `2026-01-02T03:04:05.000Z error policy_reload_failed error="p.toml: network.allow[0] \\"x y\\" is bad"`,
  );
});

Deno.test("metrics: framing labels are a fixed set; rule labels are capped", async () => {
  assert.equal(framingLabel(undefined), "none");
  assert.equal(framingLabel("wisp-v2"), "wisp-v2");
  assert.equal(framingLabel("anything-a-client-offers"), "other");
  const metrics = new ServerMetrics({ eventLoopSampleMs: 0 });
  for (let i = 0; i < MAX_RULE_LABELS + 10; i++) {
    metrics.decided({
      session: "s",
      client: "c",
      op: "connect",
      target: "t",
      decision: "deny",
      rule: `rule ${i}`,
    });
  }
  const text = await metrics.render();
  const series = text.split("\n").filter((l) => l.startsWith("wasmnet_decisions_total{"));
  assert.equal(series.length, MAX_RULE_LABELS + 1);
  assert.match(text, /wasmnet_decisions_total\{op="connect",outcome="deny",rule="other"\} 10/);
  metrics.close();
});

Deno.test("metrics: a wasmnet v1 session is counted under the framing of its first message", async () => {
  const metrics = new ServerMetrics({ eventLoopSampleMs: 0 });
  const meter = metrics.openSession("wasmnet", "none", "192.0.2.1");
  meter.received(10);
  meter.framed("binary");
  meter.framed("json"); // only the first framing counts
  assert.equal(meter.framing, "binary");
  const open = await metrics.render();
  assert.match(open, /wasmnet_sessions_total\{frontend="wasmnet",framing="binary"\} 1/);
  assert.match(open, /wasmnet_sessions_total\{frontend="wasmnet",framing="none"\} 0/);
  assert.match(open, /wasmnet_sessions_open\{frontend="wasmnet",framing="binary"\} 1/);
  assert.match(open, /wasmnet_websocket_bytes_total\{frontend="wasmnet",direction="up"\} 10/);
  meter.closed(1000);
  assert.match(await metrics.render(), /wasmnet_sessions_open\{frontend="wasmnet",framing="binary"\} 0/);
  const v2 = metrics.openSession("wasmnet", "wasmnet.v2", "192.0.2.1");
  v2.framed("json");
  assert.equal(v2.framing, "wasmnet.v2", "a subprotocol's framing stays");
  metrics.close();
});
