/**
 * The workloads: each one function that drives a {@link Transport} against the TCP targets (`targets.ts`)
 * and returns its figure. A new workload goes in a file of its own beside this one and is run from
 * `main()` in `bench.ts` (with `inRounds` for figures measured in rounds). These import nothing but types,
 * so the browser bench's page (bench/browser/page.ts) runs the same functions; the ones that read the
 * server's memory are in `memory_workloads.ts`.
 *
 * @module
 */

import type { Sock, Transport } from "./clients.ts";

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

/** Like {@link connects}, but each connection's time from `open` to its first echoed byte, in ms. */
export async function firstByte(t: Transport, target: number, count: number): Promise<number[]> {
  const s = await t.session();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const sock = await s.open(target);
    const back = receive(sock, 1);
    await sock.send(new Uint8Array([0x45, 0x21]));
    await back;
    times.push(performance.now() - t0);
    sock.close();
  }
  await s.close();
  return times;
}
