/**
 * `deno task bench [--quick] [--only name,name] [--work download,upload,...] [--no-write]`: wasmnet against
 * its peers on one machine,
 * over loopback, all in one run. Every server under test runs in its own process (its CPU and RSS are its
 * own); the TCP targets run in another; the clients run here. Prints a table with ratios against the
 * baselines of this run; a full run (not `--quick`, `--only` or `--work`) rewrites docs/benchmarks.md,
 * keeping its hand-written part ("Where the time goes").
 *
 * Peers are set up here: `@mercuryworkshop/wisp-js` is installed from the npm registry into a cache
 * directory and run under Node; websockify is Debian's `/usr/bin/websockify`, installed with apt-get when
 * missing.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_SEND_BUFFER_BYTES } from "../src/websocket.ts";
import {
  type ClientSession,
  directTcp,
  rawWebSocket,
  type Sock,
  type Transport,
  wasmnet,
  wisp,
} from "./clients.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    only: { type: "string" },
    work: { type: "string" },
    "no-write": { type: "boolean" },
  },
}).values;
const QUICK = args.quick ?? false;
const MiB = 1024 * 1024;

/** Sizes of the work: full run and `--quick`. */
const SIZE = QUICK
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
const SLOW_RATE = 200 * 1000 * 1000;

const ROOT = new URL("..", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------- processes

interface Proc {
  pid: number;
  child: Deno.ChildProcess;
  stop(): Promise<void>;
}

function spawn(cmd: string, argv: string[], env: Record<string, string> = {}): Proc {
  const child = new Deno.Command(cmd, { args: argv, stdout: "null", stderr: "piped", env }).spawn();
  const errText = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  return {
    pid: child.pid,
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone
      }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }, 3000);
      await child.status;
      clearTimeout(t);
      await errText;
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

async function waitForPort(port: number, proc: Proc, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  proc.child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error("the server exited at start");
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

/** Minor page faults of a process so far (Linux /proc: field 10 of `stat`). */
function minorFaults(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

/** Resident memory of a process in bytes (Linux /proc). */
function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}

// ---------------------------------------------------------------------------------------------- peers

const CACHE = `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/wasmnet-bench`;
const WISPJS = "@mercuryworkshop/wisp-js@0.5.0";

/** Installs wisp-js with npm into the cache (once) and returns its server CLI, or why it cannot. */
async function wispJsCli(): Promise<string> {
  const cli = `${CACHE}/node_modules/@mercuryworkshop/wisp-js/src/bin/server_cli.mjs`;
  try {
    Deno.statSync(cli);
    return cli;
  } catch {
    // not installed yet
  }
  Deno.mkdirSync(CACHE, { recursive: true });
  console.error(`installing ${WISPJS} into ${CACHE} (npm) ...`);
  const out = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--prefix", CACHE, WISPJS],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`npm install ${WISPJS} failed: ${new TextDecoder().decode(out.stderr)}`);
  return cli;
}

const WEBSOCKIFY = "/usr/bin/websockify";

/** Installs Debian's websockify (once) when it is missing, as `tools/setup.sh` does for the tests. */
async function websockifyBin(): Promise<string> {
  try {
    Deno.statSync(WEBSOCKIFY);
    return WEBSOCKIFY;
  } catch {
    // not installed yet
  }
  console.error("installing websockify (apt-get) ...");
  const root = Deno.uid() === 0;
  const run = async (args: string[]) => {
    const cmd = root ? args : ["sudo", ...args];
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  await run(["apt-get", "update", "-q"]);
  await run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "websockify"]);
  return WEBSOCKIFY;
}

const POLICY = `# The benchmark's policy: loopback targets allowed, limits high enough for 10,000 sockets.
[network]
deny = []
allow = ["*"]
max_connections = 20000
max_pending_connects = 2000
[server]
max_sessions = 2000
max_sessions_per_ip = 2000
max_message_bytes = 4194304
`;

// ---------------------------------------------------------------------------------------------- contenders

interface Running {
  transport: Transport;
  /** The same with a TCP_NODELAY WebSocket client, for round trips (see clients.ts); default `transport`. */
  latency?: Transport;
  proc?: Proc;
  /** The port a wasmnet server listens on (the slow-reader run opens its own client). */
  port?: number;
}

interface Contender {
  name: string;
  /** Baselines are what the others are compared with. */
  baseline?: boolean;
  start(targetPort: number): Promise<Running>;
  /** No idle-socket workloads (one WebSocket or process per socket). */
  noIdle?: boolean;
  /** No per-process figures (RSS, page faults): its work is not one process's (websockify forks per connection). */
  noMemory?: boolean;
}

async function startWasmnet(policyPath: string): Promise<{ proc: Proc; port: number }> {
  const port = freePort();
  // WASMNET_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the wasmnet server under test.
  const extra = (Deno.env.get("WASMNET_BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean);
  const proc = spawn(Deno.execPath(), [
    "run",
    ...extra,
    "--allow-net",
    "--allow-read",
    "--allow-env",
    `${ROOT}cli.ts`,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--policy",
    policyPath,
    "--quiet",
  ]);
  await waitForPort(port, proc);
  return { proc, port };
}

function contenders(policyPath: string): Contender[] {
  const wasmnetVariant = (name: string, framing: "json" | "binary", v2: boolean): Contender => ({
    name,
    async start() {
      const { proc, port } = await startWasmnet(policyPath);
      const url = `ws://127.0.0.1:${port}/`;
      return {
        proc,
        port,
        transport: wasmnet(url, framing, v2),
        latency: wasmnet(url, framing, v2, { nodelay: true }),
      };
    },
  });
  return [
    {
      name: "direct TCP",
      baseline: true,
      noIdle: true,
      noMemory: true,
      start: () => Promise.resolve({ transport: directTcp }),
    },
    {
      name: "bare relay",
      baseline: true,
      noIdle: true,
      async start(target) {
        const port = freePort();
        const proc = spawn(Deno.execPath(), [
          "run",
          "-A",
          `${ROOT}bench/bare_relay.ts`,
          String(port),
          String(target),
        ]);
        await waitForPort(port, proc);
        const url = `ws://127.0.0.1:${port}/`;
        return { proc, transport: rawWebSocket(url), latency: rawWebSocket(url, undefined, true) };
      },
    },
    wasmnetVariant("wasmnet JSON", "json", false),
    wasmnetVariant("wasmnet binary", "binary", false),
    wasmnetVariant("wasmnet v2 (binary+flow)", "binary", true),
    {
      name: "wasmnet over Wisp",
      async start() {
        const { proc, port } = await startWasmnet(policyPath);
        return { proc, transport: wisp(`ws://127.0.0.1:${port}/wisp/`) };
      },
    },
    {
      name: "wisp-js server",
      async start() {
        const cli = await wispJsCli();
        const port = freePort();
        const opts = JSON.stringify({ allow_loopback_ips: true, allow_private_ips: true });
        const proc = spawn("node", [cli, "-H", "127.0.0.1", "-P", String(port), "-L", "NONE", "-O", opts]);
        await waitForPort(port, proc);
        return { proc, transport: wisp(`ws://127.0.0.1:${port}/`) };
      },
    },
    {
      name: "websockify",
      noIdle: true,
      noMemory: true,
      async start(target) {
        const port = freePort();
        const proc = spawn(await websockifyBin(), [`127.0.0.1:${port}`, `127.0.0.1:${target}`]);
        await waitForPort(port, proc);
        const url = `ws://127.0.0.1:${port}/`;
        return {
          proc,
          transport: rawWebSocket(url, ["binary"]),
          latency: rawWebSocket(url, ["binary"], true),
        };
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------- workloads

function header(mode: string, n: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = mode.charCodeAt(0);
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((
      _,
      reject,
    ) => (timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms / 1000} s`)), ms))),
  ]);
}

/** Resolves when `sock` has received `n` bytes in total (counting from now); rejects if it fails first. */
function receive(sock: Sock, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    sock.onError = reject;
    sock.onData = (b) => {
      got += b.length;
      if (got >= n) resolve();
    };
  });
}

/** Bulk download of `n` bytes through one socket: MB/s. */
async function download(t: Transport, target: number, n: number): Promise<number> {
  const s = await t.session();
  const sock = await s.open(target);
  const done = receive(sock, n);
  const t0 = performance.now();
  await sock.send(header("D", n));
  await done;
  const ms = performance.now() - t0;
  sock.close();
  await s.close();
  return n / ms / 1000;
}

/** Bulk upload of `n` bytes through one socket, until the target acknowledges: MB/s. */
async function upload(t: Transport, target: number, n: number): Promise<number> {
  const s = await t.session();
  const sock = await s.open(target);
  const acked = receive(sock, 1);
  const chunk = new Uint8Array(64 * 1024).fill(0x75);
  const t0 = performance.now();
  await sock.send(header("U", n));
  let failure: Error | undefined;
  acked.catch((err) => (failure = err));
  for (let left = n; left > 0; left -= chunk.length) {
    if (failure) throw failure;
    const p = sock.send(left >= chunk.length ? chunk : chunk.subarray(0, left));
    if (p) await p;
  }
  await acked;
  const ms = performance.now() - t0;
  sock.close();
  await s.close();
  return n / ms / 1000;
}

/** 16 sockets on one session, each downloading `n / 16` bytes at once: aggregate MB/s. */
async function parallel(t: Transport, target: number, n: number): Promise<number> {
  const s = await t.session();
  const per = n / 16;
  const socks = await Promise.all(Array.from({ length: 16 }, () => s.open(target)));
  const done = socks.map((sock) => receive(sock, per));
  const t0 = performance.now();
  await Promise.all(socks.map((sock) => sock.send(header("D", per))));
  await Promise.all(done);
  const ms = performance.now() - t0;
  for (const sock of socks) sock.close();
  await s.close();
  return n / ms / 1000;
}

/** Echo round trips of `size` bytes, one at a time: every round trip's time in microseconds. */
async function echo(t: Transport, target: number, size: number, count: number): Promise<number[]> {
  const s = await t.session();
  const sock = await s.open(target);
  await sock.send(new Uint8Array([0x45]));
  const payload = new Uint8Array(size).fill(0x78);
  const times: number[] = [];
  for (let i = 0; i < count + 50; i++) {
    const back = receive(sock, size);
    const t0 = performance.now();
    await sock.send(payload);
    await back;
    if (i >= 50) times.push((performance.now() - t0) * 1000);
  }
  sock.close();
  await s.close();
  return times;
}

/** The `q` quantile (0..1) of `values`. */
function quantile(values: number[], q: number): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

/** Opens a socket, echoes one byte through it, closes it; `count` times in a row on one session: per second. */
async function connects(t: Transport, target: number, count: number): Promise<number> {
  const s = await t.session();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const sock = await s.open(target);
    const back = receive(sock, 1);
    await sock.send(new Uint8Array([0x45, 0x21]));
    await back;
    sock.close();
  }
  const ms = performance.now() - t0;
  await s.close();
  return count / ms * 1000;
}

/**
 * `sessions` sessions with `per` idle sockets each (each proven open by one echoed byte): the server's
 * marginal bytes per socket. The sockets open in ten steps, the server's RSS is sampled after each, and the
 * figure is the least-squares slope of RSS over sockets from the first step on: one-time costs of a fresh
 * process (heap reservation, compiled code) fall in the intercept, and no single heap resize decides it.
 */
async function idle(
  t: Transport,
  target: number,
  pid: number,
  sessions: number,
  per: number,
): Promise<number> {
  const opened: ClientSession[] = [];
  for (let i = 0; i < sessions; i++) opened.push(await t.session());
  const socks: Sock[] = [];
  const IDLE_BATCH = 50; // sockets opened at once, as a page that opens many connections does
  const openOn = async (s: ClientSession, count: number) => {
    for (let i = 0; i < count; i += IDLE_BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(IDLE_BATCH, count - i) }, () => s.open(target)),
      );
      await Promise.all(batch.map((sock) => {
        const back = receive(sock, 1);
        const sent = sock.send(new Uint8Array([0x45, 0x21]));
        return Promise.all([back, sent]);
      }));
      socks.push(...batch);
    }
  };
  const STEPS = 10;
  const samples: [number, number][] = [];
  for (let step = 1; step <= STEPS; step++) {
    const upTo = Math.round((per * step) / STEPS);
    const already = Math.round((per * (step - 1)) / STEPS);
    for (const s of opened) await openOn(s, upTo - already);
    await sleep(300);
    samples.push([socks.length, rss(pid)]);
  }
  for (const sock of socks) sock.close();
  await Promise.all(opened.map((s) => s.close()));
  if (Deno.env.get("WASMNET_BENCH_DEBUG")) console.error(JSON.stringify(samples));
  return slope(samples);
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  let num = 0, den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

/**
 * A page that reads slowly (`SLOW_RATE`) while `n` bytes flow to it through one socket, sampling the
 * server's RSS every 100 ms and the page's backlog (received, not yet read). v2 grants only what was read.
 */
async function slowReader(t: Transport, target: number, pid: number, n: number) {
  const s = await t.session();
  const sock = await s.open(target);
  let received = 0;
  let read = 0;
  let maxBacklog = 0;
  sock.onData = (b) => {
    received += b.length;
    maxBacklog = Math.max(maxBacklog, received - read);
  };
  const samples: number[] = [];
  const t0 = performance.now();
  await sock.send(header("D", n));
  while (read < n) {
    await sleep(10);
    const allowed = Math.min(n, Math.floor(((performance.now() - t0) / 1000) * SLOW_RATE));
    const take = Math.min(received, allowed) - read;
    if (take > 0) {
      read += take;
      sock.consumed?.(take);
    }
    if (samples.length === 0 || performance.now() - t0 > samples.length * 100) samples.push(rss(pid));
  }
  sock.close();
  await s.close();
  return { minRss: Math.min(...samples), maxRss: Math.max(...samples), maxBacklog };
}

// ---------------------------------------------------------------------------------------------- run

/** A metric measured in rounds: one value per round, or why it could not be measured. */
type Rounds = number[] | string;
/** Round trips measured in rounds: each round's round-trip times (µs), or why not. */
type RttRounds = number[][] | string;

/** One contender's results. Rounds are kept apart so ratios pair each round with the baseline's same round. */
interface Row {
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
  /** Rounds of a workload dropped with BUFFER_FULL (v1 uploads), by workload. */
  dropped?: Record<string, number>;
}

type RoundMetric = "down" | "up" | "par" | "conn";

/** A contender that started, with its row of results. */
interface Live {
  contender: Contender;
  row: Row;
  running: Running;
}
type RttMetric = "rtt1" | "rtt1k";

const WORK = args.work?.split(",").map((s) => s.trim().toLowerCase());

/** True if `what` is selected by `--work` (or no `--work` was given). */
const selected = (what: string) => !WORK || WORK.some((w) => what.toLowerCase().includes(w));

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
  const chosen = contenders(policyPath).filter((c) =>
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
      // The server's minor page faults per MiB relayed (what src/allocator.ts is about); one process only.
      const pid = contender.noMemory ? undefined : running.proc?.pid;
      const before = pid ? minorFaults(pid) : 0;
      const mbps = await download(t, targetPort, SIZE.bulk);
      if (pid) (row.faults ??= []).push((minorFaults(pid) - before) / (SIZE.bulk / MiB));
      return mbps;
    }, rate("down"));
    await inRounds("upload", live, bulk, (t) => upload(t, targetPort, SIZE.bulk), rate("up"));
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
  if (!args["no-write"] && !only && !WORK && !QUICK) writeDoc(report.markdown);
}

// ---------------------------------------------------------------------------------------------- report

const median = (values: number[]) => quantile(values, 0.5);

/** A round metric's figure: the median over the rounds that were not dropped. */
function figure(v: Rounds | undefined): number | undefined {
  const kept = Array.isArray(v) ? v.filter((x) => !Number.isNaN(x)) : [];
  return kept.length > 0 ? median(kept) : undefined;
}

/** Round trips pooled over every round: [p50, p99]. */
function pooled(v: RttRounds | undefined): [number, number] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const all = v.flat();
  return [quantile(all, 0.5), quantile(all, 0.99)];
}

/**
 * The paired ratio of `v` to `base`: each round of `v` against the baseline's same round, then the median of
 * those ratios (so drift between rounds cancels). Round trips compare each round's p50, base over this.
 */
function pairedRatio(
  v: Rounds | RttRounds | undefined,
  base: Rounds | RttRounds | undefined,
): number | undefined {
  if (!Array.isArray(v) || !Array.isArray(base)) return undefined;
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(v.length, base.length); i++) {
    const a = v[i], b = base[i];
    if (typeof a === "number" && typeof b === "number" && b > 0 && !Number.isNaN(a)) ratios.push(a / b);
    else if (Array.isArray(a) && Array.isArray(b) && a.length > 0) ratios.push(median(b) / median(a));
  }
  return ratios.length > 0 ? median(ratios) : undefined;
}

/** The console summary of a row (figures, not rounds). */
function summary(row: Row) {
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

const fmtRate = (v: Rounds | undefined) => {
  const x = figure(v);
  return x !== undefined ? `${x.toFixed(0)}` : typeof v === "string" ? v : "—";
};
const fmtRtt = (v: RttRounds | undefined) => {
  const x = pooled(v);
  return x ? `${x[0].toFixed(0)} / ${x[1].toFixed(0)}` : typeof v === "string" ? v : "—";
};
const fmtMem = (v: Row["idle1k"]) => typeof v === "number" ? `${(v / 1024).toFixed(1)}` : v ?? "n/a";

/** `x` to two decimals, or three when two would read as the threshold itself (so the verdict can be seen). */
function shown(x: number, threshold: number): string {
  return Number(x.toFixed(2)) === threshold ? x.toFixed(3) : x.toFixed(2);
}

/** " (n of R rounds dropped: BUFFER_FULL)" when a v1 upload round overflowed the server's write bound. */
function dropNote(row: Row, what: string): string {
  const n = row.dropped?.[what];
  return n ? ` (${n} of ${SIZE.repeats} rounds dropped: BUFFER_FULL)` : "";
}

function ratio(v: Rounds | RttRounds | undefined, base: Rounds | RttRounds | undefined): string {
  const x = pairedRatio(v, base);
  return x === undefined ? "" : ` (${x.toFixed(2)}x)`;
}

function render(
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

const HAND_WRITTEN = "## Where the time goes";

function writeDoc(generated: string): void {
  const path = `${ROOT}docs/benchmarks.md`;
  let kept = "";
  try {
    const old = Deno.readTextFileSync(path);
    const at = old.indexOf(HAND_WRITTEN);
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

await main();
