/**
 * `deno task bench:cluster`: what going past one process costs and gives, on this machine, over loopback.
 *
 * - `--workers 2` against 1 worker: session handshakes per second (16 at a time, each a new WebSocket
 *   session: admission, upgrade, close), socket connects per second (16 wasmnet sessions, binary v2, each
 *   connecting to an echo peer one socket after another, as the main bench's `connects`), and 16-socket
 *   download throughput (16 websockify sessions, each one TCP connection from a local firehose, for 2 s).
 * - The Redis round trip added to session admission: handshake time (p50/p99) with `[cluster] redis`
 *   against the same server counting locally, and the store's own acquire+release time.
 *
 * Servers run as `cli.ts` subprocesses, Redis is Debian's `redis-server`, the clients run here. Figures are
 * as measured on whatever the machine is doing; compare rows of one run, never runs of different days.
 * `--quick` shortens every workload. Prints Markdown tables; `deno task bench` runs it too, after its own
 * table (`--work cluster` for this alone).
 *
 * @module
 */

import { RedisStore } from "../src/cluster/redis_store.ts";
import { wasmnet } from "./clients.ts";
import { connects, withTimeout } from "./workloads.ts";
import { startFirehose, startRedis } from "../tests/cluster/redis_server.ts";
import { spawnCli } from "../tests/helpers.ts";

interface Server {
  port: number;
  stop(): Promise<void>;
}

/**
 * `cli.ts` on `--port 0`, waiting for the line that names the bound port (a port picked in advance could be
 * taken by another process on a busy machine, and then the bench would measure that one).
 */
async function startServer(policy: string, workers: number): Promise<Server> {
  const server = await spawnCli(
    ["--policy", policy, "--quiet", "--workers", String(workers), "--drain-timeout", "0"],
    {
      denoFlags: ["--unstable-net", "--allow-net", "--allow-read", "--allow-env", "--allow-sys"],
      waitFor: workers > 1 ? /workers on ws:\/\/\S+/ : undefined,
    },
  );
  return { port: server.port, stop: () => server.stop() };
}

/** Opens a session and resolves once it is open (or rejects when refused). */
function session(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`handshake to ${url} failed`));
  });
}

/** Handshakes per second, `parallel` at a time, each session closed once open. */
async function handshakesPerSec(port: number, count: number, parallel = 16): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next++ < count) {
      const ws = await session(`ws://127.0.0.1:${port}/`);
      const closed = new Promise((r) => (ws.onclose = r));
      ws.close();
      await closed;
    }
  }));
  return count / ((performance.now() - t0) / 1000);
}

/** A TCP echo peer for the connect workload (it answers the byte each connect waits for). */
function echoPeer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) conn.readable.pipeTo(conn.writable).catch(() => {});
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

/** Socket connects per second through wasmnet, `sessions` sessions (binary v2) connecting at once. */
async function connectsPerSec(port: number, target: number, sessions: number, each: number): Promise<number> {
  const t = wasmnet(`ws://127.0.0.1:${port}/`, "binary", true);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: sessions }, () => connects(t, target, each)));
  return (sessions * each) / ((performance.now() - t0) / 1000);
}

/** MB/s received over `sockets` websockify sessions downloading from `source` for `ms`. */
async function throughput(port: number, source: number, sockets: number, ms: number): Promise<number> {
  let bytes = 0;
  const open = await Promise.all(
    Array.from({ length: sockets }, () => session(`ws://127.0.0.1:${port}/tcp/127.0.0.1:${source}`)),
  );
  await new Promise((r) => setTimeout(r, 200)); // past the start
  for (const ws of open) ws.onmessage = (e) => (bytes += (e.data as ArrayBuffer).byteLength);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const seconds = (performance.now() - t0) / 1000;
  for (const ws of open) ws.close();
  return bytes / seconds / 1e6;
}

/** Milliseconds from `new WebSocket` to open, one session at a time. */
async function handshakeTimes(port: number, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const ws = await session(`ws://127.0.0.1:${port}/`);
    times.push(performance.now() - t0);
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
  }
  return times;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const median = (values: number[]) => percentile(values, 50);

/**
 * Runs every cluster workload and returns the Markdown tables (`deno task bench` prints them after its own;
 * `quick` shortens everything).
 */
export async function clusterBench(quick = false): Promise<string> {
  const HANDSHAKES = quick ? 200 : 1000;
  const LATENCY_SAMPLES = quick ? 200 : 1000;
  const DOWNLOAD_MS = quick ? 1000 : 2000;
  const ROUNDS = quick ? 1 : 3;
  const CONNECTS_EACH = quick ? 20 : 60;
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-bench-cluster-" });
  const local = `${dir}/local.toml`;
  await Deno.writeTextFile(
    local,
    `[network]\ndeny = []\n[server]\nmax_sessions = 100000\nmax_sessions_per_ip = 100000\nmax_handshakes_per_ip = 1000\n`,
  );
  const source = startFirehose();
  const echo = echoPeer();
  const rows: string[] = [];
  try {
    // Workers: 1 against 2, in interleaved rounds.
    const results = new Map<number, { hs: number[]; conn: number[]; mbps: number[] }>([
      [1, { hs: [], conn: [], mbps: [] }],
      [2, { hs: [], conn: [], mbps: [] }],
    ]);
    for (let round = 0; round <= ROUNDS; round++) {
      for (const workers of [1, 2]) {
        const server = await startServer(local, workers);
        try {
          // A stalled workload fails the run loudly instead of hanging it.
          const hs = await withTimeout(handshakesPerSec(server.port, HANDSHAKES), 120_000, "handshakes");
          const conn = await withTimeout(
            connectsPerSec(server.port, echo.port, 16, CONNECTS_EACH),
            120_000,
            "connects",
          );
          const mbps = await withTimeout(
            throughput(server.port, source.port, 16, DOWNLOAD_MS),
            60_000,
            "download",
          );
          const r = results.get(workers)!;
          if (round > 0) (r.hs.push(hs), r.conn.push(conn), r.mbps.push(mbps)); // round 0 warms up
          console.error(
            `workers ${workers}, round ${round}: ${hs.toFixed(0)} handshakes/s, ${
              conn.toFixed(0)
            } connects/s, ` +
              `${mbps.toFixed(0)} MB/s`,
          );
        } finally {
          await server.stop();
        }
      }
    }
    const one = results.get(1)!, two = results.get(2)!;
    rows.push(
      "| server | session handshakes/s (16 at a time) | socket connects/s (16 sessions) | 16-socket download MB/s |",
    );
    rows.push("| --- | ---: | ---: | ---: |");
    for (const [name, r] of [["1 worker", one], ["--workers 2", two]] as const) {
      rows.push(
        `| ${name} | ${median(r.hs).toFixed(0)} | ${median(r.conn).toFixed(0)} | ${
          median(r.mbps).toFixed(0)
        } |`,
      );
    }
    const ratio = (k: "hs" | "conn" | "mbps") => (median(two[k]) / median(one[k])).toFixed(2);
    rows.push(`| ratio 2 : 1 | ${ratio("hs")} | ${ratio("conn")} | ${ratio("mbps")} |`);

    // Redis round trip in admission.
    const redis = await startRedis();
    try {
      const shared = `${dir}/redis.toml`;
      await Deno.writeTextFile(
        shared,
        `[server]\nmax_sessions = 100000\nmax_sessions_per_ip = 100000\nmax_handshakes_per_ip = 1000\n[cluster]\nredis = "${redis.url}"\n`,
      );
      const times = new Map<string, number[]>();
      for (const [name, policy] of [["counted locally", local], ["counted in Redis", shared]] as const) {
        const server = await startServer(policy, 1);
        try {
          await handshakeTimes(server.port, 50); // warm-up
          times.set(name, await handshakeTimes(server.port, LATENCY_SAMPLES));
        } finally {
          await server.stop();
        }
      }
      const store = await RedisStore.open({ url: redis.url, prefix: "bench:" });
      const rtt: number[] = [];
      for (let i = 0; i < LATENCY_SAMPLES; i++) {
        const t0 = performance.now();
        await store.acquire(
          `m${i}`,
          [{ key: "sessions", cap: 1e6 }, { key: "ip:127.0.0.1", cap: 1e6 }],
          30_000,
        );
        await store.release(`m${i}`, ["sessions", "ip:127.0.0.1"]);
        rtt.push(performance.now() - t0);
      }
      await store.close();
      rows.push("");
      rows.push("| session admission | handshake p50 ms | handshake p99 ms |");
      rows.push("| --- | ---: | ---: |");
      for (const [name, t] of times) {
        rows.push(`| ${name} | ${percentile(t, 50).toFixed(2)} | ${percentile(t, 99).toFixed(2)} |`);
      }
      const l = times.get("counted locally")!, r = times.get("counted in Redis")!;
      rows.push(
        `| added by Redis | ${(percentile(r, 50) - percentile(l, 50)).toFixed(2)} | ${
          (percentile(r, 99) - percentile(l, 99)).toFixed(2)
        } |`,
      );
      rows.push(
        `| store acquire + release alone | ${percentile(rtt, 50).toFixed(2)} | ${
          percentile(rtt, 99).toFixed(2)
        } |`,
      );
    } finally {
      await redis.stop();
    }
  } finally {
    source.close();
    echo.close();
    await Deno.remove(dir, { recursive: true });
  }
  return rows.join("\n");
}

if (import.meta.main) console.log(await clusterBench(Deno.args.includes("--quick")));
