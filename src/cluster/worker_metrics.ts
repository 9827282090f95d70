/**
 * `/metrics` under `--workers`: every worker's text exposition merged into one, each sample labelled
 * `worker="<index>"`, each family's HELP and TYPE written once with all workers' samples together (the
 * format wants a family's samples in one group).
 *
 * Labelled rather than summed: the workers are isolates of one process, so process-wide gauges (memory,
 * event loop) would be counted N times by a sum (prom-client's AggregatorRegistry sums by default); with a
 * `worker` label, `sum without (worker) (…)` gives the deployment's totals where a sum means something.
 *
 * @module
 */

import type { WorkerMetrics } from "./workers.ts";

interface Family {
  meta: string[];
  samples: string[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?( .*)$/;

/** The merged exposition of `parts` (each a Prometheus text exposition of one worker). */
export function mergeWorkerMetrics(parts: readonly WorkerMetrics[]): string {
  const families = new Map<string, Family>();
  for (const { index, text } of parts) {
    let current: Family | undefined;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) {
        let family = families.get(meta[2]);
        if (!family) families.set(meta[2], family = { meta: [], samples: [] });
        if (!family.meta.some((m) => m.startsWith(`# ${meta[1]} `))) family.meta.push(line);
        current = family;
        continue;
      }
      if (line.startsWith("#")) continue;
      const sample = SAMPLE.exec(line);
      if (!sample || !current) continue;
      const labels = sample[2] === undefined || sample[2] === "{}"
        ? `{worker="${index}"}`
        : `{worker="${index}",${sample[2].slice(1)}`;
      current.samples.push(`${sample[1]}${labels}${sample[3]}`);
    }
  }
  const out: string[] = [];
  for (const family of families.values()) out.push(...family.meta, ...family.samples);
  return out.join("\n") + "\n";
}
