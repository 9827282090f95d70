/**
 * The admin listener: a second HTTP listener for operators, never the public port.
 *
 * | path           | answers                                                    | token |
 * |----------------|------------------------------------------------------------|-------|
 * | `/metrics`     | Prometheus text (src/ops/metrics.ts)                       | yes   |
 * | `/healthz`     | 200 while the process serves HTTP                          | no    |
 * | `/readyz`      | 200 when new sessions are welcome, 503 (and why) otherwise | no    |
 * | `/status`      | the status page (static HTML; draws `/status.json`)        | no    |
 * | `/status.json` | live sessions, busiest targets, recent refusals, totals   | yes   |
 *
 * With a token set (`[admin] token_env`/`token_file`), the paths marked "yes" need `Authorization: Bearer
 * TOKEN` (compared in constant time; 401 otherwise). Health checks and the page carry no data, so a load
 * balancer needs no secret. Only GET and HEAD are served.
 *
 * @module
 */

import { loadSecret } from "../auth/mod.ts";
import type { AdminConfig } from "../policy/mod.ts";
import type { StatusSnapshot } from "./status.ts";
import { STATUS_PAGE_HTML } from "./status_page.ts";

/** What the admin listener reads; a server provides it, a worker supervisor may provide its own. */
export interface AdminSource {
  /** The Prometheus text exposition. */
  metrics(): Promise<string>;
  /** Null when ready for new sessions, else why not (e.g. `draining`). */
  notReady(): string | null;
  /** The status page's data. */
  status(): StatusSnapshot;
}

/** Where and how the admin listener runs. */
export interface AdminOptions {
  hostname: string;
  port: number;
  /** The bearer token required for `/metrics` and `/status.json` (null: none). */
  token?: Uint8Array | null;
  /** Aborting it stops the listener. */
  signal?: AbortSignal;
}

/** A running admin listener. */
export interface RunningAdmin {
  addr: Deno.NetAddr;
  /** `http://host:port/`. */
  url: string;
  finished: Promise<void>;
}

/** The bearer token `[admin]` points to (null when none); throws `SecretError` naming where it looked. */
export function loadAdminToken(admin: AdminConfig): Uint8Array | null {
  return loadSecret({
    required: false,
    secret_env: admin.token_env,
    secret_file: admin.token_file,
    max_sessions_per_token: 0,
  });
}

/** The admin request handler (mount it yourself, or use {@link serveAdmin}). */
export function adminHandler(
  source: AdminSource,
  token: Uint8Array | null = null,
): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(405, "only GET and HEAD\n", { allow: "GET, HEAD" });
    }
    const path = new URL(request.url).pathname;
    switch (path) {
      case "/healthz":
        return text(200, "ok\n");
      case "/readyz": {
        const problem = source.notReady();
        return problem === null ? text(200, "ready\n") : text(503, `not ready: ${problem}\n`);
      }
      case "/status":
      case "/status/":
        return new Response(STATUS_PAGE_HTML, {
          headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...SAFE },
        });
      case "/favicon.ico": // browsers ask; an empty answer keeps their consoles clean
        return new Response(null, { status: 204 });
      case "/metrics":
      case "/status.json": {
        if (token !== null && !bearerMatches(request, token)) {
          return text(401, "admin token required\n", { "www-authenticate": 'Bearer realm="wasmnet-admin"' });
        }
        if (path === "/metrics") {
          return text(200, await source.metrics(), {
            "content-type": "text/plain; version=0.0.4; charset=utf-8",
          });
        }
        return new Response(JSON.stringify(source.status()), {
          headers: { "content-type": "application/json", "cache-control": "no-store", ...SAFE },
        });
      }
      default:
        return text(404, "not found: /metrics, /healthz, /readyz, /status\n");
    }
  };
}

/** Starts the admin listener on `hostname:port`. */
export function serveAdmin(source: AdminSource, options: AdminOptions): RunningAdmin {
  const http = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: () => {},
  }, adminHandler(source, options.token ?? null));
  const addr = http.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return { addr, url: `http://${host}:${addr.port}/`, finished: http.finished };
}

const SAFE = { "x-content-type-options": "nosniff", "x-frame-options": "DENY" };

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...SAFE, ...headers },
  });
}

/** `Authorization: Bearer TOKEN` with exactly `token`, compared without an early exit. */
function bearerMatches(request: Request, token: Uint8Array): boolean {
  const header = request.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  const given = new TextEncoder().encode(m[1]);
  let diff = given.length ^ token.length;
  for (let i = 0; i < token.length; i++) diff |= token[i] ^ (given[i % Math.max(1, given.length)] ?? 0);
  return diff === 0;
}
