/**
 * A link with a round-trip time and a bandwidth cap, in user space (the `netem` qdisc is not available
 * here): a TCP relay that holds every chunk for half the RTT in each direction and lets it out no faster
 * than the rate, like a router's queue in front of a slow line.
 *
 * `deno run --allow-net bench/browser/delay_relay.ts --rtt 20 --mbit 200 <upstream-port> ...` listens on one
 * free port per upstream port (all 127.0.0.1) and prints `{"ports":{"<upstream>":<listen>,...}}`.
 *
 * Model, per direction: a chunk read at time t leaves the line at `max(t, line free) + size / rate` and is
 * written to the other side `rtt / 2` later. The relay stops reading a side while more than one
 * bandwidth-delay product plus 256 KiB (the "router buffer") is in its line, so TCP's own backpressure
 * reaches the sender, as on a real link. A new connection's TCP handshake completes on loopback at once, so
 * the page's first bytes are held one extra round trip, as the handshake would hold them. Timers are the
 * runtime's (about 1-2 ms of jitter).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One direction of a link: rate in bytes per second, one-way delay in ms. */
export interface LinkShape {
  bytesPerSecond: number;
  oneWayMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Copies `from` to `to` through a line of the given shape; half-closes `to` when `from` ends. Nothing
 * leaves the line before `notBefore` (a `performance.now()` time).
 */
export async function pipeDelayed(
  from: Deno.Conn,
  to: Deno.Conn,
  shape: LinkShape,
  notBefore = 0,
): Promise<void> {
  const bound = shape.bytesPerSecond * shape.oneWayMs / 1000 + 256 * 1024;
  const queue: { bytes: Uint8Array; at: number }[] = [];
  let inLine = 0;
  let lineFree = notBefore;
  let ended = false;
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  const writer = (async () => {
    for (;;) {
      if (!queue.length) {
        if (ended) break;
        await new Promise<void>((r) => (wakeWriter = r));
        continue;
      }
      const head = queue[0];
      const wait = head.at - performance.now();
      if (wait > 0.5) await sleep(wait);
      queue.shift();
      for (let at = 0; at < head.bytes.length;) at += await to.write(head.bytes.subarray(at));
      inLine -= head.bytes.length;
      wakeReader?.();
    }
    await to.closeWrite().catch(() => {});
  })();
  try {
    for (;;) {
      while (inLine > bound) await new Promise<void>((r) => (wakeReader = r));
      const buf = new Uint8Array(64 * 1024);
      const n = await from.read(buf);
      if (n === null) break;
      const now = performance.now();
      lineFree = Math.max(now, lineFree) + n / shape.bytesPerSecond * 1000;
      queue.push({ bytes: buf.subarray(0, n), at: lineFree + shape.oneWayMs });
      inLine += n;
      wakeWriter?.();
    }
  } finally {
    ended = true;
    wakeWriter?.();
    await writer;
  }
}

/** Listens on a free port and relays every connection to `upstream` through a link of `shape`. */
export function delayRelay(upstream: number, shape: LinkShape): Deno.TcpListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const down of listener) {
      (async () => {
        const up = await Deno.connect({ hostname: "127.0.0.1", port: upstream });
        down.setNoDelay(true);
        up.setNoDelay(true);
        // The page's TCP handshake ended here, on loopback, at once; on the real link it takes one round
        // trip before the page's first byte can leave, so the page's side starts one RTT late.
        const handshake = performance.now() + 2 * shape.oneWayMs;
        await Promise.allSettled([pipeDelayed(down, up, shape, handshake), pipeDelayed(up, down, shape)]);
        for (const c of [up, down]) {
          try {
            c.close();
          } catch {
            // closed
          }
        }
      })().catch(() => {
        try {
          down.close();
        } catch {
          // closed
        }
      });
    }
  })();
  return listener;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { rtt: { type: "string" }, mbit: { type: "string" } },
    allowPositionals: true,
  });
  const shape = {
    oneWayMs: Number(values.rtt ?? 20) / 2,
    bytesPerSecond: Number(values.mbit ?? 200) * 1e6 / 8,
  };
  const ports: Record<string, number> = {};
  for (const p of positionals) ports[p] = delayRelay(Number(p), shape).addr.port;
  console.log(JSON.stringify({ ports }));
}
