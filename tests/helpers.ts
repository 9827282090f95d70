/**
 * Shared test helpers: a real wasmnet server and real TCP peers on loopback, each stopped by the test.
 *
 * @module
 */

import type { Closable } from "../src/frontends/endpoint.ts";
import { Policy } from "../src/policy/mod.ts";
import { type RunningServer, Server, wasmnetEndpoint } from "../src/server.ts";
import type { Session } from "../src/frontends/wasmnet/session.ts";
import { silentLog } from "../src/core/log.ts";
import { SocketCore } from "../src/core/core.ts";
import type { DecisionLog, DecisionRecord } from "../src/core/log.ts";
import type { Resolver } from "../src/core/sockets/resolver.ts";

/** A running wasmnet server for one test. */
export interface TestServer extends RunningServer {
  port: number;
  server: Server;
  /** Every decision logged, in order. */
  decisions: DecisionRecord[];
  close(): Promise<void>;
}

/** Starts a wasmnet server on 127.0.0.1 with a free port (default policy: everything allowed). */
export async function startServer(
  policy: Policy = Policy.allowAll(),
  options: { resolver?: Resolver; log?: DecisionLog; hostname?: string } = {},
): Promise<TestServer> {
  const decisions: DecisionRecord[] = [];
  const builder = Server.builder().host(options.hostname ?? "127.0.0.1").port(0).policy(policy)
    .log(options.log ?? ((r) => decisions.push(r)));
  if (options.resolver) builder.resolver(options.resolver);
  const server = builder.build();
  const ac = new AbortController();
  const running = await server.serve({ signal: ac.signal });
  return {
    ...running,
    port: running.addr.port,
    server,
    decisions,
    close: async () => {
      ac.abort();
      await running.finished;
    },
  };
}

/**
 * The wasmnet endpoint alone on loopback (everything allowed), keeping every session it creates so a test
 * can read what each socket holds server-side (bytes, not time).
 */
export function startSessionServer(): { url: string; sessions: Session[]; close(): Promise<void> } {
  const sessions: Session[] = [];
  const open = new Set<Closable>();
  const ac = new AbortController();
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    (request, info) =>
      wasmnetEndpoint.upgrade(request, new URL(request.url), {
        policy: Policy.allowAll(),
        serverHost: "127.0.0.1",
        clientIp: info.remoteAddr.hostname,
        log: silentLog,
        core: new SocketCore({ serverHost: "127.0.0.1" }),
        track: (session) => {
          sessions.push(session as Session);
          open.add(session);
          return () => open.delete(session);
        },
      }),
  );
  return {
    url: `ws://127.0.0.1:${http.addr.port}/`,
    sessions,
    async close() {
      for (const s of open) s.shutdown();
      ac.abort();
      await http.finished;
    },
  };
}

/** A TCP server on loopback for tests. */
export interface TcpPeer {
  port: number;
  hostname: string;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/** Starts a TCP server that echoes every byte back, on `hostname` (default 127.0.0.1). */
export function startTcpEchoServer(hostname = "127.0.0.1"): TcpPeer {
  return startTcpServer(async (conn) => {
    await conn.readable.pipeTo(conn.writable).catch(() => {});
  }, hostname);
}

/**
 * A TCP peer that reads until end-of-stream, then answers `got N` (the bytes it read) and closes: how tests
 * see that a half-close reached the peer after every byte sent before it.
 */
export function startEofCountingPeer(): TcpPeer {
  return startTcpServer(async (conn) => {
    let got = 0;
    const buf = new Uint8Array(65536);
    for (let n; (n = await conn.read(buf)) !== null;) got += n;
    await conn.write(new TextEncoder().encode(`got ${got}`));
    conn.close();
  });
}

/** Starts a TCP server that runs `handle` for each connection; `close()` stops it and its connections. */
export function startTcpServer(
  handle: (conn: Deno.TcpConn) => Promise<void>,
  hostname = "127.0.0.1",
): TcpPeer {
  const listener = Deno.listen({ hostname, port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  const peer: TcpPeer = {
    port: listener.addr.port,
    hostname,
    accepted: 0,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by the handler
        }
      }
      await Promise.allSettled([loop, ...tasks]);
    },
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        peer.accepted++;
        conns.add(conn);
        const task = handle(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          tasks.delete(task);
        });
        tasks.add(task);
      }
    } catch {
      // listener closed
    }
  })();
  return peer;
}

/** A raw WebSocket test client that collects events (JSON parsed; binary kept as bytes). */
export class TestClient {
  readonly ws: WebSocket;
  readonly messages: (Record<string, unknown> | Uint8Array)[] = [];
  #waiters: { pred: (m: Record<string, unknown> | Uint8Array) => boolean; resolve: (m: never) => void }[] =
    [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;

  constructor(url: string, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = (e) => reject(new Error(`websocket error: ${(e as ErrorEvent).message ?? e.type}`));
    });
    this.closed = new Promise((resolve) => this.ws.addEventListener("close", (e) => resolve(e)));
    this.ws.onmessage = (e) => {
      const m = typeof e.data === "string" ? JSON.parse(e.data) : new Uint8Array(e.data);
      const i = this.#waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(m as never);
      else this.messages.push(m);
    };
  }

  /** Sends a JSON request (data fields must already be base64). */
  json(request: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(request));
  }

  /** Sends raw text or bytes. */
  raw(message: string | Uint8Array): void {
    this.ws.send(message as string | Uint8Array<ArrayBuffer>);
  }

  /** Resolves with the first message (already received or future) matching `pred`; rejects after `ms`. */
  next<T = Record<string, unknown>>(pred: (m: Record<string, unknown>) => boolean, ms = 5000): Promise<T> {
    const jsonPred = (m: Record<string, unknown> | Uint8Array) => !(m instanceof Uint8Array) && pred(m);
    return this.#next(jsonPred as (m: Record<string, unknown> | Uint8Array) => boolean, ms) as Promise<T>;
  }

  /** Like {@link next} for binary events. */
  nextBinary(pred: (m: Uint8Array) => boolean, ms = 5000): Promise<Uint8Array> {
    return this.#next((m) => m instanceof Uint8Array && pred(m), ms) as Promise<Uint8Array>;
  }

  /** Waits for the event `ev` on socket `id`. */
  event(ev: string, id?: number, ms = 5000): Promise<Record<string, unknown>> {
    return this.next((m) => m.ev === ev && (id === undefined || m.id === id), ms);
  }

  #next(pred: (m: Record<string, unknown> | Uint8Array) => boolean, ms: number): Promise<unknown> {
    const i = this.messages.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.messages.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (m: never) => (clearTimeout(timer), resolve(m)) };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `no matching message within ${ms} ms; queued: ${JSON.stringify(this.messages.slice(-5))}`,
          ),
        );
      }, ms);
      this.#waiters.push(waiter);
    });
  }

  /** Closes the WebSocket and waits for the close to complete. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** Base64 of a string (UTF-8). */
export function b64(text: string | Uint8Array): string {
  return (typeof text === "string" ? new TextEncoder().encode(text) : text).toBase64();
}

/** A UTF-8 string from base64. */
export function unb64(data: unknown): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(data as string));
}

/** A `wasmnet-server` subprocess (see {@link spawnCli}). */
export interface CliProcess {
  child: Deno.ChildProcess;
  pid: number;
  /** The port it listens on, and its `ws://` URL as printed. */
  port: number;
  url: string;
  /** stdout up to the line `waitFor` matched. */
  banner: string;
  /** Everything it printed, once it has exited. */
  output(): Promise<{ stdout: string; stderr: string }>;
  /** SIGTERM, then waits for the exit and the output. */
  stop(): Promise<void>;
}

const ROOT_DIR = new URL("../", import.meta.url).pathname;

/**
 * `--lock=` the development lockfile, for Deno subprocesses that load test-only npm packages: the server's
 * `deno.lock` holds only its runtime packages, which `deno compile` embeds (tests/packaging/deps_test.ts).
 */
export const DEV_LOCK_FLAG: string = `--lock=${new URL("../deno.dev.lock", import.meta.url).pathname}`;

/**
 * Starts `cli.ts` (or another `entry`) as a real subprocess on a free loopback port (`--port 0`) and waits
 * for stdout to match `waitFor` (by default the "listening on ws://…" line). Output is always drained, so a
 * chatty server never blocks on a full pipe.
 */
export async function spawnCli(
  args: string[] = [],
  options: { denoFlags?: string[]; entry?: string; waitFor?: RegExp; ulimitFiles?: number } = {},
): Promise<CliProcess> {
  const denoFlags = options.denoFlags ?? ["--allow-net", "--allow-read", "--allow-env"];
  // `ulimitFiles`: run under `ulimit -n N` (bash sets the soft and hard limits, then execs Deno).
  const [command, prefix] = options.ulimitFiles === undefined
    ? [Deno.execPath(), []]
    : ["bash", ["-c", `ulimit -n ${options.ulimitFiles} && exec "$0" "$@"`, Deno.execPath()]];
  const child = new Deno.Command(command, {
    args: [
      ...prefix,
      "run",
      ...denoFlags,
      `${ROOT_DIR}${options.entry ?? "cli.ts"}`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const waitFor = options.waitFor ?? /listening on ws:\/\/\S+/;
  let seen = "";
  while (!waitFor.test(seen)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`server exited before listening: ${seen}${await stderr}`);
    seen += value;
  }
  const url = /listening on (ws:\/\/\S+)/.exec(seen)![1];
  const banner = seen;
  const stdout = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return seen;
      seen += value;
    }
  })();
  const output = async () => ({ stdout: await stdout, stderr: await stderr });
  return {
    child,
    pid: child.pid,
    port: Number(new URL(url).port),
    url,
    banner,
    output,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      await child.status;
      await output();
    },
  };
}
