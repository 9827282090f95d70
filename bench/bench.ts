/**
 * `deno task bench [--quick] [--only name,name] [--work download,upload,...] [--no-write]`: wasmnet against
 * its peers on one machine, over loopback, all in one run. Every server under test runs in its own process (its CPU and RSS are its
 * own); the TCP targets run in another; the clients run here. Prints a table with ratios against the
 * baselines of this run; a full run (not `--quick`, `--only` or `--work`) rewrites docs/benchmarks.md,
 * keeping its hand-written part ("Where the time goes").
 *
 * This file is the driver: it starts the targets and the contenders (`contenders.ts`, which also sets up
 * the peers: `@mercuryworkshop/wisp-js` from the npm registry into a cache directory, run under Node;
 * Debian's `/usr/bin/websockify`, installed with apt-get when missing), runs the workloads (`workloads.ts`)
 * round by round and hands the rows to the report (`report.ts`). Sizes and flags: `config.ts`. To add a
 * workload, write it in a file of its own beside `workloads.ts` and call it from `main()` below.
 *
 * @module
 */

import { type Contender, contenders, POLICY, type Running, startWasmnet } from "./contenders.ts";
import { args, MiB, QUICK, ROOT, selected, SIZE, sleep, WORK } from "./config.ts";
import { type Transport, wasmnet } from "./clients.ts";
import { cpuMs, minorFaults } from "./procs.ts";
import { median, render, type Row, summary, writeDoc } from "./report.ts";
import { connects, download, echo, parallel, upload, withTimeout } from "./workloads.ts";
import { idle, slowReader } from "./memory_workloads.ts";
import { metricsContenders, metricsCost } from "./metrics_cost.ts";
import { clusterBench } from "./cluster.ts";

type RoundMetric = "down" | "up" | "par" | "conn";

/** A contender that started, with its row of results. */
interface Live {
  contender: Contender;
  row: Row;
  running: Running;
}
type RttMetric = "rtt1" | "rtt1k";

async function measure<T>(what: string, f: () => Promise<T>, ms = 60_000): Promise<T | string | undefined> {
  if (!selected(what)) return undefined;
  try {
    return await withTimeout(f(), ms, what);
  } catch (err) {
    console.error(`  ${what}: FAILED: ${(err as Error).message}`);
    if (Deno.env.get("WASMNET_BENCH_DEBUG")) console.error(err);
    return "failed";
  }
}

/**
 * Runs one workload for every contender, round by round: round 1 for each contender, then round 2, and so
 * on. Two shared cores drift (other load, CPU frequency, the kernel's page cache), and interleaving spreads
 * that drift over every contender instead of charging it to whoever ran at the time.
 */
async function inRounds<T extends number | number[]>(
  what: string,
  live: Live[],
  pick: (r: Running) => Transport,
  run: (t: Transport, live: Live) => Promise<T>,
  store: (row: Row, value: T[] | string) => void,
): Promise<void> {
  if (!selected(what)) return;
  console.error(`${what} ...`);
  const results = new Map<Row, T[] | string>(live.map(({ row }) => [row, []]));
  // Round 0 warms up (compiled code, heap sizes, socket buffers) and is not kept: every contender's first
  // run after starting is its slowest, whatever its runtime.
  for (let round = 0; round <= SIZE.repeats; round++) {
    for (const entry of live) {
      const { row, running } = entry;
      const sofar = results.get(row)!;
      if (typeof sofar === "string") continue; // failed in an earlier round
      try {
        const value = await withTimeout(run(pick(running), entry), 60_000, what);
        if (round > 0) sofar.push(value);
      } catch (err) {
        const message = (err as Error).message;
        console.error(`  ${row.name}, ${what}, round ${round}: FAILED: ${message}`);
        if (Deno.env.get("WASMNET_BENCH_DEBUG")) console.error(err);
        // Protocol v1 has no upload backpressure: when the TCP target's process waits for a core, the
        // server's bounded write queue can overflow and the socket is dropped (BUFFER_FULL). That is the
        // protocol's documented behaviour, so the round is counted as dropped, not the whole workload.
        if (/waiting to be written/.test(message)) {
          if (round > 0) {
            (row.dropped ??= {})[what] = (row.dropped[what] ?? 0) + 1;
            sofar.push(NaN as T); // keeps rounds aligned for the paired ratios
          }
        } else results.set(row, "failed");
      }
    }
  }
  for (const [row, value] of results) store(row, value);
}

async function main(): Promise<void> {
  const cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "unknown CPU";
  const cores = navigator.hardwareConcurrency;
  const tmp = Deno.makeTempDirSync({ prefix: "wasmnet-bench-" });
  const policyPath = `${tmp}/policy.toml`;
  Deno.writeTextFileSync(policyPath, POLICY);

  const targets = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", `${ROOT}bench/targets.ts`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = targets.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = (await reader.read()).value ?? "";
  const targetPort = JSON.parse(first.split("\n")[0]).port as number;
  reader.releaseLock();
  targets.stdout.cancel().catch(() => {});

  const only = args.only?.split(",").map((s) => s.trim().toLowerCase());
  const chosen = [...contenders(policyPath), ...metricsContenders(policyPath)].filter((c) =>
    !only || only.some((o) => c.name.toLowerCase().includes(o))
  );
  const rows: Row[] = [];
  const slow: { name: string; minRss: number; maxRss: number; maxBacklog: number }[] = [];
  const live: Live[] = [];
  const started = performance.now();
  try {
    // Every contender runs at once (idle between its turns), so the workloads can go round by round.
    for (const c of chosen) {
      const row: Row = { name: c.name, baseline: c.baseline };
      rows.push(row);
      try {
        live.push({ contender: c, row, running: await c.start(targetPort) });
      } catch (err) {
        console.error(`${c.name}: cannot start: ${(err as Error).message}`);
        row.down = "n/a: did not start";
      }
    }
    const rate = (m: RoundMetric) => (row: Row, v: number[] | string) => (row[m] = v);
    const rtts = (m: RttMetric) => (row: Row, v: number[][] | string) => (row[m] = v);
    const bulk = (r: Running) => r.transport;
    const latency = (r: Running) => r.latency ?? r.transport;
    await inRounds("download", live, bulk, async (t, { contender, running, row }) => {
      // The server's minor page faults per MiB relayed (what src/core/allocator.ts is about); one process only.
      const pid = contender.noMemory ? undefined : running.proc?.pid;
      const before = pid ? minorFaults(pid) : 0;
      const cpuBefore = pid ? cpuMs(pid) : 0;
      const mbps = await download(t, targetPort, SIZE.bulk);
      if (pid) (row.faults ??= []).push((minorFaults(pid) - before) / (SIZE.bulk / MiB));
      if (pid) (row.cpu ??= []).push((cpuMs(pid) - cpuBefore) / (SIZE.bulk / MiB));
      return mbps;
    }, rate("down"));
    await inRounds("upload", live, bulk, async (t, { contender, running, row }) => {
      const pid = contender.noMemory ? undefined : running.proc?.pid;
      const cpuBefore = pid ? cpuMs(pid) : 0;
      const mbps = await upload(t, targetPort, SIZE.bulk);
      if (pid) (row.cpuUp ??= []).push((cpuMs(pid) - cpuBefore) / (SIZE.bulk / MiB));
      return mbps;
    }, rate("up"));
    await inRounds("16 sockets", live, bulk, (t) => parallel(t, targetPort, SIZE.parallel), rate("par"));
    const perRound = (n: number) => Math.ceil(n / SIZE.repeats);
    for (const [what, size, metric] of [["echo 1 B", 1, "rtt1"], ["echo 1 KiB", 1024, "rtt1k"]] as const) {
      await inRounds(
        what,
        live,
        latency,
        (t) => echo(t, targetPort, size, perRound(SIZE.echoes)),
        rtts(metric),
      );
    }
    await inRounds(
      "connects",
      live,
      latency,
      (t) => connects(t, targetPort, perRound(SIZE.connects)),
      rate("conn"),
    );
  } finally {
    for (const { running } of live) await running.proc?.stop();
  }
  try {
    // Memory: each measurement on a fresh server process, so what earlier work left in its heap (and what
    // the collector gives back while the sockets open) is not counted against the idle sockets. One bulk
    // download first, on a session of its own, grows the runtime's young generation and compiles the code
    // (one-time costs of any process that has moved data, not of sockets), then the sockets open.
    for (const { contender: c, row } of live) {
      if (c.noIdle) continue;
      const fresh = async (what: string, f: (t: Transport, pid: number) => Promise<number>) => {
        if (!selected(what)) return undefined;
        console.error(`${c.name}: ${what} ...`);
        const running = await c.start(targetPort);
        try {
          await download(running.transport, targetPort, SIZE.bulk / 16);
          await sleep(1500);
          return await measure(what, () => f(running.transport, running.proc!.pid));
        } finally {
          await running.proc?.stop();
        }
      };
      // One session's figure swings with how the runtime's heap happens to grow (±3 KiB run to run on the
      // same build), so it is the median of three fresh processes; the 100-session figure is steady.
      const ones: (number | string | undefined)[] = [];
      for (let i = 0; i < SIZE.idleRepeats; i++) {
        ones.push(await fresh("idle 1 session", (t, pid) => idle(t, targetPort, pid, 1, SIZE.idleOne)));
      }
      const numbers = ones.filter((v): v is number => typeof v === "number");
      row.idle1k = numbers.length === ones.length ? median(numbers) : ones.find((v) => typeof v === "string");
      row.idle10k = await fresh(
        "idle many sessions",
        (t, pid) => idle(t, targetPort, pid, SIZE.idleSessions, SIZE.idlePer),
      );
    }
    for (const { contender: c } of live) {
      if (!c.name.startsWith("wasmnet binary") && !c.name.startsWith("wasmnet v2")) continue;
      if (!selected("slow reader")) continue;
      console.error(`${c.name}: slow reader ...`);
      // A fresh server process, so its RSS is the slow socket's alone.
      const fresh = await startWasmnet(policyPath);
      try {
        const url = `ws://127.0.0.1:${fresh.port}/`;
        const v2 = c.name.startsWith("wasmnet v2");
        const t2 = wasmnet(url, "binary", v2, { manualCredit: true });
        const r = await measure(
          "slow reader",
          () => slowReader(t2, targetPort, fresh.proc.pid, SIZE.slow),
          600_000,
        );
        if (typeof r === "object") slow.push({ name: c.name, ...r });
      } finally {
        await fresh.proc.stop();
      }
    }
  } finally {
    targets.kill("SIGTERM");
    await targets.status;
    Deno.removeSync(tmp, { recursive: true });
  }
  for (const row of rows) console.error(`  ${JSON.stringify(summary(row))}`);
  const seconds = (performance.now() - started) / 1000;
  const report = render(rows, slow, { cpu, cores, seconds });
  console.log(report.table);
  const cost = metricsCost(rows);
  for (const line of cost) console.log(line);
  if (!args["no-write"] && !only && !WORK && !QUICK) {
    writeDoc(
      `${report.markdown}\n\n${cost.map((l) => l.startsWith("  ") ? `- ${l.trim()}` : l).join("\n")}\n`,
    );
  }
  // Past one process (bench/cluster.ts): --workers 2 against 1 worker, the Redis round trip in admission.
  if (selected("cluster") && !only) console.log(`\n${await clusterBench(QUICK)}`);
}

await main();
