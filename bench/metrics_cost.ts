/**
 * What the metrics cost on the data path (issue 15's target: under 3% of throughput). The same wasmnet
 * server (binary framing, protocol v2, so uploads have backpressure and no round is dropped) run three ways
 * in the same rounds:
 *
 * - `metrics off`: no admin listener and no access log (`--log-level warn`), so no session is metered: no
 *   byte counts on the path, no socket observer, no prom-client registry.
 * - `metrics on`: the admin listener and the access log, not scraped: the cost of counting alone.
 * - `metrics on, scraped`: the same with `/metrics` fetched every second while the workloads run
 *   (Prometheus' default is every 15 s).
 *
 * {@link metricsCost} pairs their rounds (round i of one against round i of the other, so drift on shared
 * cores is charged to both) and reports the median ratio against `metrics off` for download, upload and 16
 * sockets, and the server's CPU time per MiB downloaded and uploaded (less swayed than throughput by other
 * load on shared cores: it counts only the server's own work). On two shared, busy cores both still swing by
 * tens of percent round to round, so {@link countingCost} also times what metering adds per WebSocket
 * message, in this process, and sets it against the server's CPU per MiB.
 *
 * @module
 */

import { wasmnet } from "./clients.ts";
import type { Contender } from "./contenders.ts";
import { startWasmnet } from "./contenders.ts";
import { freePort } from "./procs.ts";
import { median, type Row } from "./report.ts";
import { ServerMetrics } from "../src/ops/metrics.ts";

/** How often the scraped contender's `/metrics` is fetched. */
export const SCRAPE_EVERY_MS = 1000;

const OFF = "wasmnet v2 metrics off";
const ON = "wasmnet v2 metrics on";
const SCRAPED = "wasmnet v2 metrics on, scraped every 1 s";

/** The three contenders, on `policyPath`. */
export function metricsContenders(policyPath: string): Contender[] {
  const v2 = (port: number) => wasmnet(`ws://127.0.0.1:${port}/`, "binary", true);
  // Round trips with a TCP_NODELAY client, as every other contender's: Deno's WebSocket client leaves Nagle on,
  // so each 1 KiB echo would wait ~40 ms for a delayed ACK (the rows showed 44 ms, and took minutes).
  const v2Latency = (port: number) => wasmnet(`ws://127.0.0.1:${port}/`, "binary", true, { nodelay: true });
  const withAdmin = (name: string, scrapeMs: number): Contender => ({
    name,
    noIdle: true,
    async start() {
      const adminPort = freePort();
      const { proc, port } = await startWasmnet(policyPath, ["--admin", `127.0.0.1:${adminPort}`]);
      let scrapes = 0;
      const scrape = () =>
        fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text()).then(() => scrapes++, () => {});
      const timer = scrapeMs > 0 ? setInterval(scrape, scrapeMs) : undefined;
      const stop = async () => {
        clearInterval(timer);
        if (timer !== undefined && scrapes === 0) console.error(`${name}: /metrics was never scraped`);
        await proc.stop();
      };
      return { port, transport: v2(port), latency: v2Latency(port), proc: { ...proc, stop } };
    },
  });
  return [
    {
      name: OFF,
      noIdle: true,
      async start() {
        const { proc, port } = await startWasmnet(policyPath, ["--log-level", "warn"]);
        return { proc, port, transport: v2(port), latency: v2Latency(port) };
      },
    },
    withAdmin(ON, 0),
    withAdmin(SCRAPED, SCRAPE_EVERY_MS),
  ];
}

/**
 * Nanoseconds the data path's counting adds per WebSocket message: one message each way on a session meter
 * (what `upgradeToPort` calls), timed over many messages, best of five runs.
 */
export function countingCost(messages = 2_000_000): number {
  const metrics = new ServerMetrics({ eventLoopSampleMs: 0 });
  const meter = metrics.openSession("wasmnet", "none", "127.0.0.1");
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      meter.received(65_536);
      meter.sent(65_536);
    }
    best = Math.min(best, ((performance.now() - t0) * 1e6) / (2 * messages));
  }
  meter.closed(1000);
  metrics.close();
  return best;
}

/** Lines for the run's output: throughput with metrics on / off, paired by round, for each bulk workload. */
export function metricsCost(rows: Row[]): string[] {
  const off = rows.find((r) => r.name === OFF);
  if (!off) return [];
  const lines = [
    "metrics cost: on / off, paired rounds, median (each round); target: throughput ≥ 0.97, CPU per MiB ≤ 1.03",
  ];
  for (const name of [ON, SCRAPED]) {
    const on = rows.find((r) => r.name === name);
    if (!on) continue;
    for (const [label, key] of [["download", "down"], ["upload", "up"], ["16 sockets", "par"]] as const) {
      const a = on[key], b = off[key];
      if (!Array.isArray(a) || !Array.isArray(b)) continue;
      const ratios = a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x));
      if (ratios.length === 0) continue;
      const each = ratios.map((x) => x.toFixed(2)).join(", ");
      lines.push(`  ${name.slice("wasmnet v2 ".length)}, ${label}: ${median(ratios).toFixed(3)} (${each})`);
    }
    for (const [label, key] of [["downloaded", "cpu"], ["uploaded", "cpuUp"]] as const) {
      // Round 0 (warm-up) is in these too: left out, as the throughput figures leave it out.
      const a = on[key]?.slice(1), b = off[key]?.slice(1);
      if (!a || !b || a.length === 0) continue;
      const ratios = a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x));
      const each = ratios.map((x) => x.toFixed(2)).join(", ");
      const ms = `${median(b).toFixed(3)} → ${median(a).toFixed(3)} ms/MiB`;
      const what = `${name.slice("wasmnet v2 ".length)}, server CPU per MiB ${label}`;
      lines.push(`  ${what}: ${median(ratios).toFixed(3)} (${each}); ${ms}`);
    }
  }
  const perMessage = countingCost();
  const cpuPerMiB = off.cpu && off.cpu.length > 1 ? median(off.cpu.slice(1)) : undefined;
  // The bench client uploads in 64 KiB messages, 16 per MiB; downloads go out in reads of up to 120 KiB.
  const share = cpuPerMiB
    ? ` = ${((perMessage * 16) / (cpuPerMiB * 1e6) * 100).toFixed(3)}% of the server's ` +
      `${cpuPerMiB.toFixed(3)} ms of CPU per MiB at 16 messages per MiB`
    : "";
  lines.push(
    `  counting per WebSocket message (this process, best of 5): ${perMessage.toFixed(1)} ns${share}`,
  );
  return lines;
}
