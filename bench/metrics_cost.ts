/**
 * What the metrics cost on the data path (issue 15's target: under 3% of throughput). Two contenders, the
 * same wasmnet binary-framing server run both ways in the same rounds:
 *
 * - `wasmnet metrics off`: no admin listener and no access log (`--log-level warn`), so no session is
 *   metered: no byte counts on the path, no socket observer, no prom-client registry.
 * - `wasmnet metrics on`: the admin listener, the access log, and `/metrics` scraped every 250 ms while the
 *   workloads run (Prometheus' default is every 15 s: this is 60 times harsher).
 *
 * {@link metricsCost} pairs their rounds (round i of one against round i of the other, so drift on shared
 * cores is charged to both) and reports the median ratio for download, upload and 16 sockets.
 *
 * @module
 */

import { wasmnet } from "./clients.ts";
import type { Contender } from "./contenders.ts";
import { startWasmnet } from "./contenders.ts";
import { freePort } from "./procs.ts";
import { median, type Row } from "./report.ts";

/** How often the "on" contender's `/metrics` is fetched. */
export const SCRAPE_EVERY_MS = 250;

const OFF = "wasmnet metrics off";
const ON = "wasmnet metrics on (admin scraped every 250 ms)";

/** The two contenders, both binary framing, both on `policyPath`. */
export function metricsContenders(policyPath: string): Contender[] {
  return [
    {
      name: OFF,
      noIdle: true,
      async start() {
        const { proc, port } = await startWasmnet(policyPath, ["--log-level", "warn"]);
        return { proc, port, transport: wasmnet(`ws://127.0.0.1:${port}/`, "binary", false) };
      },
    },
    {
      name: ON,
      noIdle: true,
      async start() {
        const adminPort = freePort();
        const { proc, port } = await startWasmnet(policyPath, ["--admin", `127.0.0.1:${adminPort}`]);
        let scrapes = 0;
        const timer = setInterval(() => {
          fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text()).then(
            () => scrapes++,
            () => {},
          );
        }, SCRAPE_EVERY_MS);
        return {
          port,
          transport: wasmnet(`ws://127.0.0.1:${port}/`, "binary", false),
          proc: {
            ...proc,
            async stop() {
              clearInterval(timer);
              if (scrapes === 0) console.error(`${ON}: /metrics was never scraped`);
              await proc.stop();
            },
          },
        };
      },
    },
  ];
}

/** Lines for the run's output: "on"/"off" throughput, paired by round, for each bulk workload. */
export function metricsCost(rows: Row[]): string[] {
  const off = rows.find((r) => r.name === OFF), on = rows.find((r) => r.name === ON);
  if (!off || !on) return [];
  const lines = ["metrics cost (throughput with metrics on / off, paired rounds, median):"];
  for (const [label, key] of [["download", "down"], ["upload", "up"], ["16 sockets", "par"]] as const) {
    const a = on[key], b = off[key];
    if (!Array.isArray(a) || !Array.isArray(b)) continue;
    const ratios = a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x));
    if (ratios.length === 0) continue;
    const r = median(ratios);
    const verdict = r >= 0.97 ? "within 3%" : "MORE THAN 3% SLOWER";
    lines.push(`  ${label}: ${r.toFixed(3)} (${ratios.map((x) => x.toFixed(3)).join(", ")}) ${verdict}`);
  }
  return lines;
}
