/**
 * The workloads: each one function that drives a {@link Transport} against the TCP targets (`targets.ts`)
 * and returns its figure. A new workload goes in a file of its own beside this one and is run from
 * `main()` in `bench.ts` (with `inRounds` for figures measured in rounds).
 *
 * @module
 */

import type { ClientSession, Sock, Transport } from "./clients.ts";
import { sleep, SLOW_RATE } from "./config.ts";
import { rss } from "./procs.ts";

export function header(mode: string, n: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = mode.charCodeAt(0);
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
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
export function receive(sock: Sock, n: number): Promise<void> {
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
export async function download(t: Transport, target: number, n: number): Promise<number> {
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
export async function upload(t: Transport, target: number, n: number): Promise<number> {
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
export async function parallel(t: Transport, target: number, n: number): Promise<number> {
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
export async function echo(t: Transport, target: number, size: number, count: number): Promise<number[]> {
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

/** Opens a socket, echoes one byte through it, closes it; `count` times in a row on one session: per second. */
export async function connects(t: Transport, target: number, count: number): Promise<number> {
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
export async function idle(
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
export function slope(points: [number, number][]): number {
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
export async function slowReader(t: Transport, target: number, pid: number, n: number) {
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
