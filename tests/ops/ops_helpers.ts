/**
 * Helpers for the operations tests: a server with its admin listener on loopback, a scrape that reads one
 * series out of the text exposition, `promtool check metrics`, and a WebSocket that counts the bytes of
 * every message each way (so a test can say exactly what the server must have counted).
 *
 * @module
 */

import { Policy } from "../../src/policy/mod.ts";
import { type RunningServer, Server } from "../../src/server.ts";
import type { DecisionRecord } from "../../src/core/log.ts";
import type { AccessRecord } from "../../src/ops/logger.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { type CliProcess, spawnCli } from "../helpers.ts";

/** A server with an admin listener, for one test. */
export interface OpsServer {
  server: Server;
  running: RunningServer;
  /** `ws://127.0.0.1:PORT`, no trailing slash. */
  ws: string;
  /** `http://127.0.0.1:PORT`, the admin listener, no trailing slash. */
  admin: string;
  decisions: DecisionRecord[];
  access: AccessRecord[];
  events: { level: string; event: string; fields?: Record<string, unknown> }[];
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1 with its admin listener on another free loopback port. */
export async function startOpsServer(
  policy: Policy = Policy.allowAll(),
  options: { token?: string; resolver?: Resolver; policyFile?: string } = {},
): Promise<OpsServer> {
  const decisions: DecisionRecord[] = [];
  const access: AccessRecord[] = [];
  const events: OpsServer["events"] = [];
  const builder = Server.builder().host("127.0.0.1").port(0).policy(policy)
    .log((r) => decisions.push(r))
    .accessLog((r) => access.push(r))
    .events((level, event, fields) => events.push({ level, event, fields }))
    .admin("127.0.0.1", 0, options.token ? new TextEncoder().encode(options.token) : null);
  if (options.resolver) builder.resolver(options.resolver);
  if (options.policyFile) builder.reloadPath(options.policyFile);
  const server = builder.build();
  const ac = new AbortController();
  const running = await server.serve({ signal: ac.signal });
  return {
    server,
    running,
    ws: `ws://127.0.0.1:${running.addr.port}`,
    admin: `http://127.0.0.1:${running.admin!.addr.port}`,
    decisions,
    access,
    events,
    close: async () => {
      ac.abort();
      await running.finished;
    },
  };
}

/** GETs `/metrics` (with `token` as bearer, if given) and returns the text. */
export async function scrape(admin: string, token?: string): Promise<string> {
  const res = await fetch(`${admin}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${await res.text()}`);
  return await res.text();
}

/** The value of the series `name{labels}` in an exposition (labels must match exactly, in any order); 0 when absent. */
export function seriesValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found[k] = JSON.parse(`"${v}"`);
    }
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(found).length) continue;
    if (keys.every((k) => found[k] === labels[k])) return Number(m[3]);
  }
  return 0;
}

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/**
 * A WebSocket that counts the length of every message each way, as the server counts them: bytes for binary
 * messages, UTF-16 units for text. Messages are queued for {@link next}.
 */
export class CountingSocket {
  readonly ws: WebSocket;
  sentBytes = 0;
  receivedBytes = 0;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  readonly #queue: (string | Uint8Array)[] = [];
  #wake: (() => void) | undefined;

  constructor(url: string, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error(`websocket error on ${url}`));
    });
    this.closed = new Promise((resolve) =>
      this.ws.addEventListener("close", (e) => {
        resolve(e);
        this.#wake?.();
      })
    );
    this.ws.onmessage = (e) => {
      const m = typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer);
      this.receivedBytes += m.length;
      this.#queue.push(m);
      this.#wake?.();
    };
  }

  /** Sends and counts one message. */
  send(message: string | Uint8Array): void {
    this.sentBytes += message.length;
    this.ws.send(message as string | Uint8Array<ArrayBuffer>);
  }

  /** The first queued message matching `pred` (waiting up to `ms`). */
  async next(
    pred: (m: string | Uint8Array) => boolean = () => true,
    ms = 5000,
  ): Promise<string | Uint8Array> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.#queue.findIndex(pred);
      if (i >= 0) return this.#queue.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(`no matching message within ${ms} ms (queued ${this.#queue.length})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => (clearTimeout(t), resolve());
      });
    }
  }

  /** The next JSON event `ev` (text messages only). */
  async event(ev: string): Promise<Record<string, unknown>> {
    const m = await this.next((m) => typeof m === "string" && JSON.parse(m).ev === ev);
    return JSON.parse(m as string);
  }

  /** Closes with `code` and waits for the close. */
  async close(code = 1000): Promise<CloseEvent> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(code);
    return await this.closed;
  }
}

/** Polls `check` (every 20 ms, up to `ms`) until it returns true; how tests wait for the server's side. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `wasmnet-server` subprocess with its admin listener (`[admin] listen` or `--admin`) up. */
export async function spawnWithAdmin(args: string[]): Promise<CliProcess & { admin: string }> {
  const srv = await spawnCli(args, { waitFor: /admin listening on http:\/\/\S+/ });
  const admin = /admin listening on (http:\/\/\S+?)\/? /.exec(srv.banner)![1];
  return { ...srv, admin };
}

/** Asks for a WebSocket upgrade with a plain HTTP request and returns the status (no WebSocket is opened). */
export async function upgradeStatus(wsUrl: string): Promise<number> {
  const res = await fetch(wsUrl.replace(/^ws/, "http"), {
    headers: {
      upgrade: "websocket",
      connection: "upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  await res.body?.cancel();
  return res.status;
}
