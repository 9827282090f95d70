/**
 * A reusable browser test harness: Debian's Chromium, headless, driven by `playwright-core`, plus a tiny
 * static file server (optionally cross-origin isolated for SharedArrayBuffer pages). Any test that must
 * prove something in a real browser page uses it:
 *
 * ```ts
 * const { result, consoleErrors } = await runInPage({
 *   files: { "/wasmnet.js": "client/dist/mod.js" },
 *   module: `export default async (args) => { const m = await import("/wasmnet.js"); return typeof m; }`,
 * });
 * ```
 *
 * Playwright runs in a child process (`driver.ts`, `deno run -A`), so tests need only the permissions of
 * `deno task test`, and its handles stay out of the test's leak checks. Everything `runInPage` starts
 * (file server, driver, browser) is stopped before it returns, also on failure.
 *
 * @module
 */

import type { DriverMessage, DriverReply, DriverRun } from "./driver.ts";
import { DEV_LOCK_FLAG } from "../helpers.ts";

/** Chromium to drive: Debian's package (installed by `.ci/run`), or `WASMNET_CHROMIUM` when set. */
export const CHROMIUM_PATH: string = Deno.env.get("WASMNET_CHROMIUM") ?? "/usr/bin/chromium";

/** Flags for a quiet, offline, sandbox-free headless Chromium (CI runs as root). */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-quic",
  "--disable-sync",
];

/** Throws a clear error (tests must fail, not skip) when Chromium is not installed. */
export async function requireChromium(): Promise<string> {
  try {
    await Deno.stat(CHROMIUM_PATH);
  } catch {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}. Install Debian's package: ` +
        "`apt-get install -y chromium` (or set WASMNET_CHROMIUM to a Chromium binary).",
    );
  }
  return CHROMIUM_PATH;
}

/** What a {@link serveStatic} server serves. Paths in the URL start with `/`. */
export interface StaticServerOptions {
  /** URL path → file on disk, e.g. `{ "/wasmnet.js": "client/dist/mod.js" }`. */
  files?: Record<string, string>;
  /** URL prefix → directory on disk, e.g. `{ "/app/": "examples/app/build/" }`. */
  dirs?: Record<string, string>;
  /** URL path → content given inline (HTML, a page script, ...). */
  inline?: Record<string, string | Uint8Array>;
  /** Send COOP `same-origin` + COEP `require-corp`, making pages cross-origin isolated (SharedArrayBuffer). */
  crossOriginIsolated?: boolean;
  /** Port to serve on (default: a free one), for tests that must name the page's origin in advance. */
  port?: number;
}

/** A running static file server on 127.0.0.1. */
export interface StaticServer {
  /** Base URL, ending in `/`. */
  url: string;
  /** Its port. */
  port: number;
  /** Paths requested so far, in order (to assert a page really loaded something). */
  requests: string[];
  /** Stops it. */
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  wasm: "application/wasm",
  css: "text/css",
  map: "application/json",
  txt: "text/plain; charset=utf-8",
  ts: "text/plain; charset=utf-8",
};

function contentType(path: string): string {
  if (path.endsWith("/")) return CONTENT_TYPES.html;
  return CONTENT_TYPES[path.slice(path.lastIndexOf(".") + 1).toLowerCase()] ?? "application/octet-stream";
}

/** Serves files, directories and inline content on 127.0.0.1 with a free port; 404 for anything else. */
export function serveStatic(options: StaticServerOptions): StaticServer {
  const requests: string[] = [];
  const headers = (path: string): HeadersInit => ({
    "content-type": contentType(path),
    "cache-control": "no-store",
    ...(options.crossOriginIsolated
      ? {
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-embedder-policy": "require-corp",
        "cross-origin-resource-policy": "cross-origin",
      }
      : {}),
  });
  const lookup = (path: string): string | undefined => {
    const file = options.files?.[path];
    if (file) return file;
    for (const [prefix, dir] of Object.entries(options.dirs ?? {})) {
      if (!path.startsWith(prefix)) continue;
      const rest = decodeURIComponent(path.slice(prefix.length));
      if (rest.split("/").includes("..")) return undefined;
      return `${dir.replace(/\/$/, "")}/${rest || "index.html"}`;
    }
    return undefined;
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const inline = options.inline?.[path];
      if (inline !== undefined) return new Response(inline as BodyInit, { headers: headers(path) });
      const file = lookup(path);
      if (file) {
        try {
          return new Response(await Deno.readFile(file), { headers: headers(file) });
        } catch {
          // fall through to 404
        }
      }
      return new Response("not found", { status: 404, headers: { "content-type": "text/plain" } });
    },
  );
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    close: async () => {
      await server.shutdown();
    },
  };
}

/** What {@link runInPage} runs. */
export interface RunInPageOptions extends StaticServerOptions {
  /**
   * Source of an ES module served as `/__test__.mjs`, whose default export is `async (args) => result`.
   * `result` must be JSON-serialisable; a throw fails the run with the page's error.
   */
  module: string;
  /** Passed to the module's default export (JSON-serialisable). */
  args?: unknown;
  /** Functions the page may call as `globalThis[name](...)`, running in the test (Deno) side. */
  expose?: Record<string, (...args: never[]) => unknown>;
  /** Overall time limit in ms (default 60 s). */
  timeoutMs?: number;
  /** Page HTML served as `/` (default: an empty page). */
  html?: string;
  /** Save a full-page PNG here once the module has returned (to look at what the page shows). */
  screenshot?: string;
  /** Let Chromium speak QUIC (WebTransport needs it; the default flags turn it off). */
  quic?: boolean;
  /**
   * Open this page instead of the static server's `/` (e.g. a page the server under test serves); the
   * module is then imported from a `data:` URL, so it needs no CORS from that page's origin.
   */
  pageUrl?: string;
}

/** The outcome of {@link runInPage}. */
export interface PageRun<T> {
  /** The module's return value. */
  result: T;
  /** Text of every `console.error` in the page. */
  consoleErrors: string[];
  /** Every uncaught page error. */
  pageErrors: string[];
  /** Every console message, as `type: text`. */
  console: string[];
}

/**
 * Serves the given files plus a test module, opens it in headless Chromium, runs the module's default
 * export and returns its result with everything the page logged. Always stops the browser and the server.
 */
export async function runInPage<T = unknown>(options: RunInPageOptions): Promise<PageRun<T>> {
  await requireChromium();
  const server = serveStatic({
    ...options,
    inline: {
      ...options.inline,
      "/": options.html ?? "<!doctype html><meta charset=utf-8><title>wasmnet test</title>",
      "/__test__.mjs": options.module,
      "/favicon.ico": new Uint8Array(0),
    },
  });
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const messages: string[] = [];
  const ms = options.timeoutMs ?? 60_000;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", DEV_LOCK_FLAG, new URL("driver.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  const encoder = new TextEncoder();
  const send = (message: DriverRun | DriverReply) =>
    stdin.write(encoder.encode(JSON.stringify(message) + "\n"));
  const log = () => `console:\n${messages.join("\n")}\npage errors:\n${pageErrors.join("\n")}`;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, ms);
  try {
    await send({
      type: "run",
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS.filter((a) => !(options.quic && a === "--disable-quic")),
      pageUrl: options.pageUrl ?? server.url,
      moduleUrl: options.pageUrl
        ? `data:text/javascript;base64,${new TextEncoder().encode(options.module).toBase64()}`
        : `${server.url}__test__.mjs`,
      moduleArgs: options.args ?? null,
      expose: Object.keys(options.expose ?? {}),
      screenshot: options.screenshot,
    });
    let done: Extract<DriverMessage, { type: "done" }> | undefined;
    let buffered = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      let i: number;
      while ((i = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        if (!line.trim()) continue;
        const message = JSON.parse(line) as DriverMessage;
        if (message.type === "console") {
          messages.push(`${message.kind}: ${message.text}`);
          if (message.kind === "error") consoleErrors.push(message.text);
        } else if (message.type === "pageerror") {
          pageErrors.push(message.text);
        } else if (message.type === "call") {
          const fn = options.expose?.[message.name] as ((...args: unknown[]) => unknown) | undefined;
          Promise.resolve()
            .then(() => fn!(...message.args))
            .then(
              (value) => send({ type: "reply", callId: message.callId, ok: true, value: value ?? null }),
              (error) => send({ type: "reply", callId: message.callId, ok: false, error: String(error) }),
            )
            .catch(() => {}); // the driver may be gone already
        } else {
          done = message;
        }
      }
    }
    const status = await child.status;
    if (timedOut) throw new Error(`page did not finish within ${ms} ms\n${log()}`);
    if (!done) {
      throw new Error(`browser driver exited (${status.code}) without a result\n${await stderr}\n${log()}`);
    }
    if (!done.ok) throw new Error(`page run failed: ${done.error}\n${log()}`);
    return { result: done.result as T, consoleErrors, pageErrors, console: messages };
  } finally {
    clearTimeout(timer);
    await stdin.close().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await stderr.catch(() => {});
    await server.close();
  }
}
