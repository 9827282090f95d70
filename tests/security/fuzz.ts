/**
 * A repeatable fuzzer for the wasmnet protocol: a seeded PRNG makes random and mutated frames (JSON and
 * binary) and sends them through a real server to a real session. It checks that every message the
 * decoder refuses is answered with an `error`, every socket-opening request with a unique id is answered,
 * the server keeps answering, and when it is over the session holds no socket. Used by `fuzz_test.ts` (a
 * short run in `deno task test`) and `deno task fuzz` (a long run; `WASMNET_FUZZ_ITERATIONS`,
 * `WASMNET_FUZZ_SEED`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { decodeRequest, type Request } from "@wasmnet/protocol";
import { decodeBinaryEvent, encodeBinaryRequest } from "@wasmnet/protocol";
import type { Endpoint } from "../../src/frontends/endpoint.ts";
import { Server, wasmnetEndpoint } from "../../src/server.ts";
import type { Session } from "../../src/frontends/wasmnet/session.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { startTcpEchoServer } from "../helpers.ts";
import { HOSTILE_TARGETS } from "../fixtures/hostile_targets.ts";

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random integer in [0, n) from `r`. */
export function randomInt(r: () => number, n: number): number {
  return Math.floor(r() * n);
}

/** A random element of `xs`. */
export function pickOne<T>(r: () => number, xs: readonly T[]): T {
  return xs[randomInt(r, xs.length)];
}

/** `WASMNET_FUZZ_ITERATIONS` and `WASMNET_FUZZ_SEED`, or 4000 and `seed` when unset (or without --allow-env). */
export function fuzzSettings(seed: number): { iterations: number; seed: number } {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  return {
    iterations: Number(env("WASMNET_FUZZ_ITERATIONS") ?? 4000),
    seed: Number(env("WASMNET_FUZZ_SEED") ?? seed),
  };
}

/** What a run did. */
export interface FuzzReport {
  seed: number;
  messages: number;
  refusedByDecoder: number;
  answers: number;
  opened: number;
}

const OPS = [
  "connect",
  "bind",
  "listen",
  "send",
  "close",
  "connect_tls",
  "connect_udp",
  "send_to",
  "resolve",
  "credit",
];
const OPENING = new Set(["connect", "connect_tls", "bind", "connect_udp", "resolve"]);

/** Runs `iterations` fuzz messages through a fresh server with seed `seed`. Throws on a failed check. */
export async function runFuzz(seed: number, iterations: number): Promise<FuzzReport> {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const echo = startTcpEchoServer();
  const resolver: Resolver = (name) =>
    name.endsWith(".test")
      ? Promise.resolve(["127.0.0.1"])
      : Promise.reject(new Error(`no such name ${name}`));
  const sessions: Session[] = [];
  const tracking: Endpoint = {
    ...wasmnetEndpoint,
    upgrade: (request, url, ctx) =>
      wasmnetEndpoint.upgrade(request, url, {
        ...ctx,
        track: (s) => (sessions.push(s as Session), ctx.track(s)),
      }),
  };
  const policy = Policy.fromConfig({
    network: {
      deny: ["*"],
      allow: ["127.0.0.1", "echo.test"],
      bind_addrs: ["127.0.0.1"],
      connection_timeout_secs: 2,
      max_connections: 64,
      max_pending_connects: 64,
    },
    server: { max_message_bytes: 256 * 1024 },
  });
  const server = new Server({ hostname: "127.0.0.1", port: 0, policy, log: () => {}, resolver }, [tracking]);
  const ac = new AbortController();
  const running = await server.serve({ signal: ac.signal });

  const answeredIds = new Map<number, number>();
  const acceptedIds: number[] = [];
  let answers = 0;
  /** Errors that can answer a decoder refusal: JSON ones with BAD_REQUEST/UNKNOWN_OP, binary ones (no code). */
  const decoderErrors = { json: 0, binary: 0 };
  const ws = new WebSocket(running.url);
  ws.binaryType = "arraybuffer";
  const closed = new Promise<CloseEvent>((r) => ws.addEventListener("close", (e) => r(e)));
  const sentinels = new Set<number>();
  ws.onmessage = (e) => {
    answers++;
    let ev: { ev: string; id?: number; code?: string };
    if (typeof e.data === "string") ev = JSON.parse(e.data);
    else {
      try {
        ev = decodeBinaryEvent(new Uint8Array(e.data)) as typeof ev;
      } catch (err) {
        throw new Error(`the server sent a binary event its own decoder refuses: ${err}`);
      }
    }
    if (ev.id !== undefined) answeredIds.set(ev.id, (answeredIds.get(ev.id) ?? 0) + 1);
    if (ev.ev === "accepted") acceptedIds.push((ev as unknown as { conn_id: number }).conn_id);
    if (ev.ev === "error" && typeof e.data !== "string") decoderErrors.binary++;
    if (ev.ev === "error" && (ev.code === "BAD_REQUEST" || ev.code === "UNKNOWN_OP")) decoderErrors.json++;
    if (ev.ev === "error" && ev.code === "UNKNOWN_ID" && ev.id !== undefined && ev.id >= SENTINEL_BASE) {
      sentinels.add(ev.id - SENTINEL_BASE);
    }
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("cannot open the fuzz session"));
  });

  let nextUnique = 100_000;
  const hosts = () =>
    pick([
      "127.0.0.1",
      "127.0.0.1",
      "echo.test",
      "nowhere.invalid",
      "localhost",
      pick(HOSTILE_TARGETS).host,
      "",
      "a".repeat(300),
      "\u0000",
      "💥",
      "[::1]",
      "0x7f.1",
    ]);
  const ports = () =>
    pick([echo.port, echo.port, 0, 1, 65535, 65536, -1, 1.5, int(65536), Number.NaN, 1e300]);
  const ids = () => pick([int(8), int(64), int(64), 2 ** 53, -1, 0.5, 2 ** 53 - 2 ** 32 + 1, nextUnique++]);
  const bytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const request = (): Record<string, unknown> => {
    const op = rand() < 0.95 ? pick(OPS) : pick(["", "CONNECT", "hello", "__proto__", "constructor"]);
    const r: Record<string, unknown> = { op, id: ids() };
    if (op.includes("connect") || op === "bind" || op === "send_to") {
      r.addr = hosts();
      r.port = ports();
    }
    if (op === "send" || op === "send_to") r.data = rand() < 0.9 ? bytes(int(2048)) : "!!notbase64";
    if (op === "resolve") r.name = hosts();
    if (op === "listen" && rand() < 0.5) r.backlog = int(1000);
    if (op === "credit") r.bytes = pick([int(1 << 20), -5, 2 ** 60]);
    if (rand() < 0.05) r.extra = { nested: [1, 2, { deep: true }] };
    if (rand() < 0.05) delete r[pick(Object.keys(r))];
    return r;
  };
  /** A message: a valid-looking request in either framing, or a mutation of one, or junk. */
  const message = (): string | Uint8Array => {
    const r = request();
    const kind = int(10);
    if (kind <= 3) return jsonOf(r);
    if (kind <= 5) return binaryOf(r) ?? jsonOf(r);
    if (kind === 6) return mutateText(jsonOf(r));
    if (kind === 7) {
      const b = binaryOf(r);
      return b ? mutateBytes(b) : bytes(int(64));
    }
    if (kind === 8) return bytes(int(rand() < 0.9 ? 32 : 4096));
    return pick([
      "",
      "{",
      "null",
      "[]",
      '{"op":1}',
      "\uffff".repeat(int(50)),
      '{"op":"send","id":1,"data":"' + "A".repeat(int(5000)) + '"}',
      "true",
      "1e999",
    ]);
  };
  const jsonOf = (r: Record<string, unknown>) =>
    JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? v.toBase64() : v));
  const binaryOf = (r: Record<string, unknown>): Uint8Array | null => {
    try {
      return encodeBinaryRequest(r as unknown as Request);
    } catch {
      return null;
    }
  };
  const mutateText = (s: string) => {
    const chars = [...s];
    for (let n = 1 + int(4); n > 0; n--) {
      const at = int(chars.length + 1);
      const what = int(3);
      if (what === 0) chars.splice(at, 1);
      else if (what === 1) {
        chars.splice(at, 0, pick(['"', "{", "}", ",", ":", "\\", "0", "-", "e", "\u2028", "x"]));
      } else chars[at] = String.fromCharCode(int(0x3000));
    }
    return chars.join("");
  };
  const mutateBytes = (b: Uint8Array) => {
    const out = rand() < 0.3 ? b.slice(0, int(b.length + 1)) : b.slice();
    for (let n = 1 + int(4); n > 0 && out.length > 0; n--) out[int(out.length)] ^= 1 << int(8);
    return rand() < 0.2 ? new Uint8Array([...out, ...bytes(int(16))]) : out;
  };

  const refused = { json: 0, binary: 0 };
  const openedIds: number[] = [];
  const idUses = new Map<number, number>();
  const BATCH = 200;
  try {
    for (let i = 0; i < iterations; i++) {
      const m = message();
      const decoded = decodeRequest(m);
      if (!decoded.ok) refused[decoded.framing]++;
      else {
        const id = decoded.request.id;
        idUses.set(id, (idUses.get(id) ?? 0) + 1);
        if (OPENING.has(decoded.request.op)) openedIds.push(id);
      }
      ws.send(m as string | Uint8Array<ArrayBuffer>);
      if (i % BATCH === BATCH - 1) {
        // The server must keep answering: a sentinel request gets its UNKNOWN_ID back.
        const n = Math.floor(i / BATCH);
        ws.send(JSON.stringify({ op: "close", id: SENTINEL_BASE + n }));
        await waitFor(() => sentinels.has(n), 10_000, `sentinel ${n} (seed ${seed}, message ${i})`);
      }
    }
    const last = Math.floor(iterations / BATCH);
    ws.send(JSON.stringify({ op: "close", id: SENTINEL_BASE + last }));
    await waitFor(() => sentinels.has(last), 10_000, `final sentinel (seed ${seed})`);
    // Every message the decoder refuses was answered with an error.
    for (const framing of ["json", "binary"] as const) {
      assert.ok(
        decoderErrors[framing] >= refused[framing],
        `${framing}: ${refused[framing]} refused, ${decoderErrors[framing]} errors (seed ${seed})`,
      );
    }
    // Every socket-opening request under an id used once was answered (connected/denied/error/listening/...).
    const unique = openedIds.filter((id) => idUses.get(id) === 1 && id < SENTINEL_BASE);
    await waitFor(
      () => unique.every((id) => answeredIds.has(id)),
      10_000,
      `answers to opening requests (seed ${seed}); missing: ${
        unique.filter((id) => !answeredIds.has(id)).slice(0, 5)
      }`,
    );
    // Close everything that may be open, then the session must hold no socket.
    const session = sessions[0];
    assert.ok(session && !session.closed, "the session survived the fuzz");
    const maybeOpen = new Set(
      [...idUses.keys(), ...acceptedIds].filter((id) => Number.isSafeInteger(id) && id >= 0),
    );
    for (const id of maybeOpen) ws.send(JSON.stringify({ op: "close", id }));
    await waitFor(
      () => session.socketCount === 0,
      10_000,
      `sockets still open: ${session.socketCount} (seed ${seed})`,
    );
    const refusedByDecoder = refused.json + refused.binary;
    return { seed, messages: iterations, refusedByDecoder, answers, opened: unique.length };
  } finally {
    ws.close();
    await closed;
    ac.abort();
    await running.finished;
    await echo.close();
  }
}

/** Ids used by sentinel requests (never opened by the fuzzer). */
const SENTINEL_BASE = 2 ** 40;

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
