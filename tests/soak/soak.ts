/**
 * Soak (`deno task soak`, not part of `deno task test`): one real `wasmnet-server` process for a bounded
 * time (600 s by default; `--secs N` or `WASMNET_SOAK_SECS`), well-behaved sessions echoing through it
 * while abusive clients, each from its own loopback address (127.0.0.10 …), do what issue 13 lists:
 * slow headers, idle connections, fragment floods, request floods, clients that never read, connect
 * storms. Every 10 s it prints the server's RSS and open fds; at the end one JSON summary: the
 * well-behaved success rate and echo latency (p50/p99), RSS and fds over time. Exits 1 if the server
 * died, fewer than 99 % of echoes succeeded, or RSS in the last third grew past the first third by more
 * than 64 MiB.
 *
 * @module
 */

import net from "node:net";
import { parseArgs } from "node:util";
import { spawnCli, startTcpServer } from "../helpers.ts";
import { alive, openFds, rss } from "../security/proc.ts";
import { clientFrame } from "../security/raw_ws.ts";

const flags = parseArgs({ args: Deno.args, options: { secs: { type: "string" } } }).values;
const SECS = Number(flags.secs ?? Deno.env.get("WASMNET_SOAK_SECS") ?? 600);
const WELL_BEHAVED = 8;
const MiB = 1024 * 1024;
const enc = new TextEncoder();

const stop = new AbortController();
const until = performance.now() + SECS * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = () => !stop.signal.aborted && performance.now() < until;

// Targets: an echo peer for the well-behaved, a firehose for the never-reading, a closed port for storms.
const echo = startTcpServer(async (conn) => {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (let n; (n = await conn.read(buf)) !== null;) {
      let rest = buf.subarray(0, n);
      while (rest.length) rest = rest.subarray(await conn.write(rest));
    }
  } catch { /* closed */ }
});
const firehose = startTcpServer(async (conn) => {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  try {
    while (running()) await conn.write(chunk);
  } catch { /* closed */ }
});
const closedPort = (() => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
})();

const policyPath = await Deno.makeTempFile({ suffix: ".toml" });
await Deno.writeTextFile(
  policyPath,
  `[network]\ndeny = []\nallow = ["127.0.0.1"]\nmax_pending_connects = 8\n` +
    `[server]\nheader_timeout_secs = 5\n`,
);
const server = await spawnCli(["--policy", policyPath, "--quiet"]);
const port = server.port;

// ---- well-behaved sessions: connect to the echo peer, 1 KiB every 100 ms, a fresh session every 30 s ----
const latencies: number[] = [];
let echoes = 0;
let failures = 0;
const failureKinds: Record<string, number> = {};
const fail = (kind: string) => (failures++, failureKinds[kind] = (failureKinds[kind] ?? 0) + 1);

async function wellBehaved(): Promise<void> {
  while (running()) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const events: Record<string, unknown>[] = [];
    let wake: (() => void) | undefined;
    ws.onmessage = (e) => (events.push(JSON.parse(e.data as string)), wake?.());
    const next = async (pred: (m: Record<string, unknown>) => boolean, ms: number) => {
      const end = performance.now() + ms;
      for (;;) {
        const i = events.findIndex(pred);
        if (i >= 0) return events.splice(i, 1)[0];
        if (performance.now() > end || ws.readyState > 1) return undefined;
        await new Promise<void>((r) => (wake = r, setTimeout(r, 50)));
      }
    };
    const opened = await new Promise<boolean>((r) => {
      ws.onopen = () => r(true);
      ws.onerror = ws.onclose = () => r(false);
      setTimeout(() => r(false), 5000);
    });
    if (!opened) {
      fail("handshake");
      ws.close();
      await sleep(500);
      continue;
    }
    ws.send(JSON.stringify({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port }));
    if (!(await next((m) => m.ev === "connected", 5000))) {
      fail("connect");
      ws.close();
      continue;
    }
    const sessionEnd = Math.min(until, performance.now() + 30_000);
    const payload = btoa("e".repeat(1024));
    while (running() && performance.now() < sessionEnd) {
      const t0 = performance.now();
      ws.send(JSON.stringify({ op: "send", id: 1, data: payload }));
      let got = 0;
      while (got < 1024) {
        const m = await next((m) => m.ev === "data", 5000);
        if (!m) break;
        got += atob(m.data as string).length;
      }
      if (got < 1024) {
        fail("echo");
        break;
      }
      echoes++;
      latencies.push(performance.now() - t0);
      await sleep(100);
    }
    ws.close();
    await new Promise((r) => (ws.onclose = r, setTimeout(r, 2000)));
  }
}

// ---- abusers: raw sockets from their own loopback addresses ----
let abuserConnections = 0;

/** A raw TCP connection from `from`; resolves once connected (or null). */
function rawConnect(from: string): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: from }, () => resolve(s));
    s.on("error", () => resolve(null));
    s.on("data", () => {}); // read (and drop) unless paused below
    s.setMaxListeners(0);
    abuserConnections++;
  });
}

function handshake(path = "/"): Uint8Array {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  return enc.encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
  );
}

function closed(s: net.Socket): Promise<void> {
  return new Promise((r) => (s.destroyed ? r() : s.once("close", () => r())));
}

/** Keeps `count` connections of one kind going until the end. */
function abuser(
  _kind: string,
  from: string,
  count: number,
  one: (from: string) => Promise<void>,
): Promise<void>[] {
  return Array.from({ length: count }, async () => {
    while (running()) {
      try {
        await one(from);
      } catch { /* the server cut it: what it should do */ }
      await sleep(50);
    }
  });
}

const slowHeaders = async (from: string) => {
  const s = await rawConnect(from);
  if (!s) return;
  const head = handshake();
  for (let i = 0; i < head.length && running() && !s.destroyed; i++) {
    s.write(head.subarray(i, i + 1));
    await sleep(1000);
  }
  s.destroy();
};

const idle = async (from: string) => {
  const s = await rawConnect(from);
  if (!s) return;
  await Promise.race([closed(s), sleep(60_000)]);
  s.destroy();
};

const fragmentFlood = async (from: string) => {
  const s = await rawConnect(from);
  if (!s) return;
  s.write(handshake());
  const fragment = clientFrame(2, new Uint8Array(MiB));
  fragment[0] = 0x02; // FIN clear
  const more = clientFrame(2, new Uint8Array(MiB));
  more[0] = 0x00; // continuation, FIN clear
  s.write(fragment);
  for (let i = 0; i < 100 && running() && !s.destroyed; i++) {
    if (!s.write(more)) await Promise.race([new Promise((r) => s.once("drain", r)), closed(s)]);
  }
  s.destroy();
};

const requestFlood = async (from: string) => {
  const s = await rawConnect(from);
  if (!s) return;
  s.write(handshake());
  const x = clientFrame(1, enc.encode("x"));
  const burst = new Uint8Array(x.length * 8192);
  for (let i = 0; i < 8192; i++) burst.set(x, i * x.length);
  const end = performance.now() + 20_000;
  while (running() && !s.destroyed && performance.now() < end) {
    if (!s.write(burst)) await Promise.race([new Promise((r) => s.once("drain", r)), closed(s), sleep(1000)]);
  }
  s.destroy();
};

const neverReads = async (from: string) => {
  const s = await rawConnect(from);
  if (!s) return;
  s.write(handshake());
  s.pause(); // reads nothing from here on
  const connect = JSON.stringify({ op: "connect", id: 1, addr: "127.0.0.1", port: firehose.port });
  s.write(clientFrame(1, enc.encode(connect)));
  await Promise.race([closed(s), sleep(90_000)]);
  s.destroy();
};

const connectStorm = async (from: string) => {
  const s = await rawConnect(from);
  if (!s) return;
  s.write(handshake());
  for (let id = 1; id <= 2000 && running() && !s.destroyed; id++) {
    const c = JSON.stringify({ op: "connect", id, addr: "127.0.0.1", port: closedPort });
    if (!s.write(clientFrame(1, enc.encode(c)))) {
      await Promise.race([new Promise((r) => s.once("drain", r)), sleep(500)]);
    }
    if (id % 50 === 0) await sleep(10);
  }
  s.destroy();
};

// ---- sampling ----
const samples: { t: number; rssMiB: number; fds: number }[] = [];
const t0 = performance.now();
let died = false;
const sampler = (async () => {
  while (running()) {
    if (!(await alive(server.pid))) {
      died = true;
      stop.abort();
      break;
    }
    const s = {
      t: Math.round((performance.now() - t0) / 1000),
      rssMiB: Math.round((await rss(server.pid)) / MiB * 10) / 10,
      fds: await openFds(server.pid),
    };
    samples.push(s);
    console.log(
      `t=${s.t}s rss=${s.rssMiB}MiB fds=${s.fds} echoes=${echoes} failures=${failures} abuser_conns=${abuserConnections}`,
    );
    await sleep(10_000);
  }
})();

const tasks = [
  ...Array.from({ length: WELL_BEHAVED }, () => wellBehaved()),
  ...abuser("slow headers", "127.0.0.10", 20, slowHeaders),
  ...abuser("idle", "127.0.0.11", 20, idle),
  ...abuser("fragment flood", "127.0.0.12", 2, fragmentFlood),
  ...abuser("request flood", "127.0.0.13", 2, requestFlood),
  ...abuser("never reads", "127.0.0.14", 4, neverReads),
  ...abuser("connect storm", "127.0.0.15", 2, connectStorm),
];
await Promise.all(tasks);
await sampler;
if (!died) died = !(await alive(server.pid));
await server.stop();
await echo.close();
await firehose.close();
await Deno.remove(policyPath);

latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies.length ? Math.round(latencies[Math.floor(p * (latencies.length - 1))] * 10) / 10 : null;
const third = Math.max(1, Math.floor(samples.length / 3));
const avg = (xs: { rssMiB: number }[]) => xs.reduce((n, s) => n + s.rssMiB, 0) / Math.max(1, xs.length);
const rssFirst = avg(samples.slice(1, third + 1)); // skip the start-up sample
const rssLast = avg(samples.slice(-third));
const successRate = echoes / Math.max(1, echoes + failures);
const summary = {
  secs: SECS,
  server_died: died,
  well_behaved: {
    sessions: WELL_BEHAVED,
    echoes,
    failures,
    failure_kinds: failureKinds,
    success_rate: successRate,
  },
  echo_latency_ms: { p50: pct(0.5), p99: pct(0.99), max: pct(1) },
  rss_mib: {
    first_third_avg: Math.round(rssFirst),
    last_third_avg: Math.round(rssLast),
    max: Math.max(...samples.map((s) => s.rssMiB)),
  },
  fds: { max: Math.max(...samples.map((s) => s.fds)), last: samples.at(-1)?.fds },
  abuser_connections: abuserConnections,
  samples,
};
console.log(JSON.stringify(summary));
const ok = !died && successRate >= 0.99 && rssLast - rssFirst < 64;
if (!ok) console.error("soak: FAILED", { died, successRate, rssGrowth: rssLast - rssFirst });
Deno.exit(ok ? 0 : 1);
