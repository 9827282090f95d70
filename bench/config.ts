/**
 * The bench run's command line (`--quick`, `--only`, `--work`, `--no-write`) and the sizes of its work, shared
 * by the driver (`bench.ts`), the workloads and the report.
 *
 * @module
 */

import { parseArgs } from "node:util";

export const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    only: { type: "string" },
    work: { type: "string" },
    "no-write": { type: "boolean" },
  },
}).values;
export const QUICK = args.quick ?? false;
export const MiB = 1024 * 1024;

/** Sizes of the work: full run and `--quick`. */
export const SIZE = QUICK
  ? {
    bulk: 32 * MiB,
    parallel: 32 * MiB,
    echoes: 300,
    connects: 100,
    idleOne: 200,
    idleSessions: 10,
    idlePer: 50,
    slow: 64 * MiB,
    repeats: 1,
    idleRepeats: 1,
  }
  : {
    bulk: 256 * MiB,
    parallel: 256 * MiB,
    echoes: 2000,
    connects: 500,
    idleOne: 1000,
    idleSessions: 100,
    idlePer: 100,
    slow: 1024 * MiB,
    repeats: 5,
    idleRepeats: 3,
  };
/** The slow page's reading rate in the flow-control run (bytes per second). */
export const SLOW_RATE = 200 * 1000 * 1000;

export const ROOT = new URL("..", import.meta.url).pathname;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const WORK = args.work?.split(",").map((s) => s.trim().toLowerCase());

/** True if `what` is selected by `--work` (or no `--work` was given). */
export const selected = (what: string) => !WORK || WORK.some((w) => what.toLowerCase().includes(w));
