/**
 * The workloads that read the server's memory (its RSS from /proc): idle sockets and a slow reader. Apart
 * from `workloads.ts` because they need Deno and the bench's configuration.
 *
 * @module
 */

import type { ClientSession, Sock, Transport } from "./clients.ts";
import { sleep, SLOW_RATE } from "./config.ts";
import { rss } from "./procs.ts";
import { header, receive } from "./workloads.ts";

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
