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
 * sockets, and the server's CPU time per MiB downloaded (less swayed than throughput by other load on
 * shared cores: it counts only the server's own work).
 *
 * @module
 */

import { wasmnet } from "./clients.ts";
import type { Contender } from "./contenders.ts";
import { startWasmnet } from "./contenders.ts";
import { freePort } from "./procs.ts";
import { median, type Row } from "./report.ts";

/** How often the scraped contender's `/metrics` is fetched. */
export const SCRAPE_EVERY_MS = 1000;

const OFF = "wasmnet v2 metrics off";
const ON = "wasmnet v2 metrics on";
const SCRAPED = "wasmnet v2 metrics on, scraped every 1 s";

/** The three contenders, on `policyPath`. */
export function metricsContenders(policyPath: string): Contender[] {
  const v2 = (port: number) => wasmnet(`ws://127.0.0.1:${port}/`, "binary", true);
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
      return { port, transport: v2(port), proc: { ...proc, stop } };
    },
  });
  return [
    {
      name: OFF,
      noIdle: true,
      async start() {
        const { proc, port } = await startWasmnet(policyPath, ["--log-level", "warn"]);
        return { proc, port, transport: v2(port) };
      },
    },
    withAdmin(ON, 0),
    withAdmin(SCRAPED, SCRAPE_EVERY_MS),
  ];
}

/** Lines for the run's output: throughput with metrics on / off, paired by round, for each bulk workload. */
export function metricsCost(rows: Row[]): string[] {
  const off = rows.find((r) => r.name === OFF);
  if (!off) return [];
  const lines = ["metrics cost (throughput with metrics on / off, paired rounds: median (each round)):"];
  for (const name of [ON, SCRAPED]) {
    const on = rows.find((r) => r.name === name);
    if (!on) continue;
    for (const [label, key] of [["download", "down"], ["upload", "up"], ["16 sockets", "par"]] as const) {
      const a = on[key], b = off[key];
      if (!Array.isArray(a) || !Array.isArray(b)) continue;
      const ratios = a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x));
      if (ratios.length === 0) continue;
      const r = median(ratios);
      const verdict = r >= 0.97 ? "within 3%" : "more than 3% slower";
      const each = ratios.map((x) => x.toFixed(2)).join(", ");
      lines.push(`  ${name.slice("wasmnet v2 ".length)}, ${label}: ${r.toFixed(3)} (${each}), ${verdict}`);
    }
    // Round 0 (warm-up) is in `cpu` too: it is left out, as the throughput figures leave it out.
    const a = on.cpu?.slice(1), b = off.cpu?.slice(1);
    if (a && b && a.length > 0) {
      const ratios = a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x));
      const each = ratios.map((x) => x.toFixed(2)).join(", ");
      const ms = `${median(b).toFixed(2)} → ${median(a).toFixed(2)} ms/MiB`;
      lines.push(
        `  ${name.slice("wasmnet v2 ".length)}, server CPU per MiB downloaded: ${
          median(ratios).toFixed(3)
        } (${each}); ${ms}`,
      );
    }
  }
  return lines;
}
