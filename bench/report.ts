/**
 * The report: results per contender ({@link Row}), their figures and paired ratios against the baselines of
 * the same run, the console table and the generated part of docs/benchmarks.md.
 *
 * @module
 */

import { DEFAULT_SEND_BUFFER_BYTES } from "../src/core/websocket.ts";
import { MiB, QUICK, ROOT, SIZE, SLOW_RATE } from "./config.ts";
import { median, pairedRatio, quantile, type Rounds, type RttRounds } from "./stats.ts";
import { BEGIN as BROWSER_SECTION } from "./browser/report.ts";

export { median, pairedRatio, quantile, type Rounds, type RttRounds };

/** One contender's results. Rounds are kept apart so ratios pair each round with the baseline's same round. */
export interface Row {
  name: string;
  baseline?: boolean;
  down?: Rounds;
  up?: Rounds;
  par?: Rounds;
  rtt1?: RttRounds;
  rtt1k?: RttRounds;
  conn?: Rounds;
  idle1k?: number | string;
  idle10k?: number | string;
  /** The server's minor page faults per MiB downloaded, per round (warm-up included). */
  faults?: number[];
  /** The server's CPU time per MiB downloaded, in ms, per round (warm-up included; bench/metrics_cost.ts). */
  cpu?: number[];
  /** The same per MiB uploaded. */
  cpuUp?: number[];
  /** Rounds of a workload dropped with BUFFER_FULL (v1 uploads), by workload. */
  dropped?: Record<string, number>;
}

/** A round metric's figure: the median over the rounds that were not dropped. */
export function figure(v: Rounds | undefined): number | undefined {
  const kept = Array.isArray(v) ? v.filter((x) => !Number.isNaN(x)) : [];
  return kept.length > 0 ? median(kept) : undefined;
}

/** Round trips pooled over every round: [p50, p99]. */
export function pooled(v: RttRounds | undefined): [number, number] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const all = v.flat();
  return [quantile(all, 0.5), quantile(all, 0.99)];
}

/** The console summary of a row (figures, not rounds). */
export function summary(row: Row) {
  const f = (v: Rounds | undefined) => figure(v) ?? v;
  const r = (v: RttRounds | undefined) => pooled(v) ?? v;
  return {
    name: row.name,
    down: f(row.down),
    downRounds: row.down,
    up: f(row.up),
    upRounds: row.up,
    par: f(row.par),
    rtt1: r(row.rtt1),
    rtt1k: r(row.rtt1k),
    conn: f(row.conn),
    idle1k: row.idle1k,
    idle10k: row.idle10k,
  };
}

export const fmtRate = (v: Rounds | undefined) => {
  const x = figure(v);
  return x !== undefined ? `${x.toFixed(0)}` : typeof v === "string" ? v : "—";
};
export const fmtRtt = (v: RttRounds | undefined) => {
  const x = pooled(v);
  return x ? `${x[0].toFixed(0)} / ${x[1].toFixed(0)}` : typeof v === "string" ? v : "—";
};
export const fmtMem = (v: Row["idle1k"]) => typeof v === "number" ? `${(v / 1024).toFixed(1)}` : v ?? "n/a";

/** `x` to two decimals, or three when two would read as the threshold itself (so the verdict can be seen). */
export function shown(x: number, threshold: number): string {
  return Number(x.toFixed(2)) === threshold ? x.toFixed(3) : x.toFixed(2);
}

/** " (n of R rounds dropped: BUFFER_FULL)" when a v1 upload round overflowed the server's write bound. */
export function dropNote(row: Row, what: string): string {
  const n = row.dropped?.[what];
  return n ? ` (${n} of ${SIZE.repeats} rounds dropped: BUFFER_FULL)` : "";
}

export function ratio(v: Rounds | RttRounds | undefined, base: Rounds | RttRounds | undefined): string {
  const x = pairedRatio(v, base);
  return x === undefined ? "" : ` (${x.toFixed(2)}x)`;
}

export function render(
  rows: Row[],
  slow: { name: string; minRss: number; maxRss: number; maxBacklog: number }[],
  m: {
    cpu: string;
    cores: number;
    seconds: number;
  },
) {
  const bare = rows.find((r) => r.name === "bare relay");
  const wispjs = rows.find((r) => r.name === "wisp-js server");
  const wsfy = rows.find((r) => r.name === "websockify");
  const lines = [
    "| server | download MB/s | upload MB/s | 16 sockets MB/s | echo 1 B p50/p99 µs | echo 1 KiB p50/p99 µs | connects/s | KiB/idle socket (1×1000) | KiB/idle socket (100×100) |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name}${r.baseline ? " *(baseline)*" : ""} | ${fmtRate(r.down)}${ratio(r.down, bare?.down)} | ${
        fmtRate(r.up)
      }${ratio(r.up, bare?.up)}${dropNote(r, "upload")} | ${fmtRate(r.par)}${ratio(r.par, bare?.par)} | ${
        fmtRtt(r.rtt1)
      }${ratio(r.rtt1, bare?.rtt1)} | ${fmtRtt(r.rtt1k)}${ratio(r.rtt1k, bare?.rtt1k)} | ${fmtRate(r.conn)}${
        ratio(r.conn, bare?.conn)
      } | ${fmtMem(r.idle1k)} | ${fmtMem(r.idle10k)} |`,
    );
  }
  const binary = rows.find((r) => r.name === "wasmnet binary");
  const json = rows.find((r) => r.name === "wasmnet JSON");
  const v2 = rows.find((r) => r.name.startsWith("wasmnet v2"));
  const check = (label: string, v: Rounds | undefined, base: Rounds | undefined, want: number) => {
    const x = pairedRatio(v, base);
    if (x === undefined) return `| ${label} | — | ≥ ${want}x | not measured |`;
    return `| ${label} | ${shown(x, want)}x | ≥ ${want}x | ${x >= want ? "met" : "**missed**"} |`;
  };
  const rttCheck = (label: string, v: RttRounds | undefined, base: RttRounds | undefined) => {
    const inverse = pairedRatio(v, base); // base p50 / this p50
    if (inverse === undefined) return `| ${label} | — | ≤ 1.10x | not measured |`;
    const x = 1 / inverse;
    return `| ${label} | ${shown(x, 1.1)}x | ≤ 1.10x | ${x <= 1.1 ? "met" : "**missed**"} |`;
  };
  const memCheck = (label: string, v: unknown) =>
    typeof v === "number"
      ? `| ${label} | ${(v / 1024).toFixed(1)} KiB | < 16 KiB | ${v < 16 * 1024 ? "met" : "**missed**"} |`
      : `| ${label} | — | < 16 KiB | not measured |`;
  const targets = [
    "| target | measured | wanted | |",
    "|---|---|---|---|",
    check("binary download vs wisp-js server", binary?.down, wispjs?.down, 1.5),
    check("binary upload vs wisp-js server", binary?.up, wispjs?.up, 1.5),
    check("binary download vs websockify", binary?.down, wsfy?.down, 1.0),
    check("binary upload vs websockify", binary?.up, wsfy?.up, 1.0),
    check("binary download vs bare relay", binary?.down, bare?.down, 0.9),
    check("binary upload vs bare relay", binary?.up, bare?.up, 0.9),
    check("v2 download vs bare relay", v2?.down, bare?.down, 0.9),
    rttCheck("binary echo 1 B p50 vs bare relay", binary?.rtt1, bare?.rtt1),
    rttCheck("binary echo 1 KiB p50 vs bare relay", binary?.rtt1k, bare?.rtt1k),
    check("JSON download vs wisp-js server", json?.down, wispjs?.down, 0.75),
    check("JSON upload vs wisp-js server", json?.up, wispjs?.up, 0.75),
    memCheck("binary: server memory per idle socket (1×1000)", binary?.idle1k),
    memCheck("binary: server memory per idle socket (100×100)", binary?.idle10k),
  ];
  const faultLines = [
    "| server | minor page faults per MiB downloaded |",
    "|---|---|",
    ...rows.filter((r) => (r.faults?.length ?? 0) > 1).map((r) =>
      `| ${r.name} | ${median(r.faults!.slice(1)).toFixed(0)} |` // round 0 is the warm-up
    ),
  ];
  const slowLines = [
    `| server | page reads at | server RSS min → max | page backlog max |`,
    "|---|---|---|---|",
    ...slow.map((s) =>
      `| ${s.name} | ${SLOW_RATE / 1e6} MB/s | ${(s.minRss / MiB).toFixed(0)} → ${
        (s.maxRss / MiB).toFixed(0)
      } MiB | ${(s.maxBacklog / MiB).toFixed(1)} MiB |`
    ),
  ];
  const date = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const machine = `${m.cpu}, ${m.cores} logical cores, Linux, Deno ${Deno.version.deno}`;
  const sizes = `${SIZE.repeats} interleaved rounds; bulk ${SIZE.bulk / MiB} MiB, 16 sockets × ${
    SIZE.parallel / 16 / MiB
  } MiB, ${SIZE.echoes} round trips, ${SIZE.connects} connects, ${SIZE.idleOne} idle sockets on one session (median of ${SIZE.idleRepeats} fresh servers) and ${
    SIZE.idleSessions * SIZE.idlePer
  } on ${SIZE.idleSessions} sessions, ${SIZE.slow / MiB} MiB to a slow page${QUICK ? " (--quick)" : ""}`;
  const table = [
    `wasmnet benchmark ${date} on ${machine}; ${sizes}; ${m.seconds.toFixed(0)} s`,
    "",
    ...lines,
    "",
    ...targets,
    "",
    ...faultLines,
    "",
    ...slowLines,
  ].join("\n");
  const markdown = [
    "<!-- generated by `deno task bench`: everything above the hand-written section is rewritten on each run -->",
    "# Benchmarks",
    "",
    `Run: ${date}, on ${machine}. Loopback only, one run, every server in its own process (all started at once, idle between their turns), the TCP targets in another, the clients in the bench process. Each workload runs in rounds: round 1 for every contender, then round 2, and so on, after a warm-up round that is not counted. Work: ${sizes}. The whole run took ${
      m.seconds.toFixed(0)
    } s.`,
    "",
    "Figures are medians over the rounds (round trips: p50/p99 over all rounds' samples). Ratios in parentheses are against the **bare relay** of the same run (a WebSocket-to-TCP relay in a few lines of Deno: the limit for any WebSocket proxy on this runtime), paired by round: each round's figure over the bare relay's figure in the same round, then the median of those ratios, so drift between rounds cancels. For round trips the ratio is bare p50 / this p50, so higher is better everywhere. MB/s are 10^6 bytes per second of payload. A v1 upload round that overflowed the server's write bound (the original protocol has no upload backpressure, so the socket is dropped with \`BUFFER_FULL\`; docs/protocol.md) is marked in its cell and left out of the median. Memory is measured on a fresh server process: the sockets open in ten steps and the figure is the slope of its RSS over the sockets open (least squares) (n/a: one WebSocket, or one process, per socket). Wisp rows use the same client, `@mercuryworkshop/wisp-js` 0.5.0; the wisp-js server runs under Node.",
    "",
    ...lines,
    "",
    "## Against the targets",
    "",
    ...targets,
    "",
    "## Page faults on the download",
    "",
    'The server process\'s minor page faults per MiB of the bulk download (median over the rounds; a MiB is 256 pages of 4 KiB, so 256 means a fresh page for every byte relayed). Where they come from and what wasmnet does about it: see below, "Where the time goes".',
    "",
    ...faultLines,
    "",
    "## Flow control: a page that reads slowly",
    "",
    `One socket, ${SIZE.slow / MiB} MiB downloaded by a page that reads ${
      SLOW_RATE / 1e6
    } MB/s, each on a fresh server process (RSS sampled every 100 ms). The server is bounded either way (it stops reading TCP while its WebSocket buffer is over ${
      DEFAULT_SEND_BUFFER_BYTES / MiB
    } MiB), but v1 has no way to stop the bytes reaching the page: what the page has not read yet piles up in the page. v2 grants credit only for what was read (the bench page's window is 4 MiB), so the server stops reading that TCP socket and the page's backlog stays within its window.`,
    "",
    ...slowLines,
    "",
  ].join("\n");
  return { table, markdown };
}

export const HAND_WRITTEN = "## Where the time goes";

export function writeDoc(generated: string): void {
  const path = `${ROOT}docs/benchmarks.md`;
  let kept = "";
  try {
    const old = Deno.readTextFileSync(path);
    // The browser bench's section (bench/browser/report.ts) sits before the hand-written part: kept too.
    const browser = old.indexOf(BROWSER_SECTION);
    const at = browser >= 0 ? browser : old.indexOf(HAND_WRITTEN);
    if (at >= 0) kept = old.slice(at);
  } catch {
    // first run
  }
  Deno.mkdirSync(`${ROOT}docs`, { recursive: true });
  Deno.writeTextFileSync(
    path,
    generated + "\n" + (kept || `${HAND_WRITTEN}\n\n(to be written from a profile)\n`),
  );
  // The generated tables are one line per row; the repository's formatter aligns them.
  new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path], stdout: "null" }).outputSync();
  console.error(`wrote ${path}`);
}
