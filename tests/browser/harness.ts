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
 * Everything it starts (browser, page, file server) is stopped before it returns, also on failure.
 *
 * @module
 */

import { type Browser, chromium, type Page } from "playwright-core";

/** Chromium to drive: Debian's package (installed by `.ci/run`), or `WASMNET_CHROMIUM` when set. */
export const CHROMIUM_PATH: string = Deno.env.get("WASMNET_CHROMIUM") ?? "/usr/bin/chromium";

/** Flags for a quiet, offline, sandbox-free headless Chromium (CI runs as root in a container). */
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

/** A launched browser (with its own throwaway profile); `close()` ends it. */
export interface LaunchedBrowser {
  /** The playwright browser. */
  browser: Browser;
  /** Stops Chromium; its temporary profile goes with it. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium with {@link CHROMIUM_ARGS} and a fresh profile. Throws a clear error
 * (never skips) when Chromium is not installed, since CI must install it.
 */
export async function launchChromium(): Promise<LaunchedBrowser> {
  try {
    await Deno.stat(CHROMIUM_PATH);
  } catch {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}. Install Debian's package: ` +
        "`apt-get install -y chromium` (or set WASMNET_CHROMIUM to a Chromium binary).",
    );
  }
  let browser: Browser;
  try {
    // playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 60_000,
    });
  } catch (error) {
    throw new Error(`could not start Chromium at ${CHROMIUM_PATH}: ${error}`, { cause: error });
  }
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
    },
  };
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
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
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
  });
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
  /** Also hand the live page to this callback before the module runs (e.g. to add listeners). */
  onPage?: (page: Page) => void | Promise<void>;
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
  const server = serveStatic({
    ...options,
    inline: {
      ...options.inline,
      "/": options.html ?? "<!doctype html><meta charset=utf-8><title>wasmnet test</title>",
      "/__test__.mjs": options.module,
      "/favicon.ico": new Uint8Array(0),
    },
  });
  let launched: LaunchedBrowser | undefined;
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const messages: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    launched = await launchChromium();
    const page = await launched.browser.newPage();
    page.on("console", (msg) => {
      messages.push(`${msg.type()}: ${msg.text()}`);
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    for (const [name, fn] of Object.entries(options.expose ?? {})) {
      await page.exposeFunction(name, fn as (...args: unknown[]) => unknown);
    }
    await options.onPage?.(page);
    await page.goto(server.url, { waitUntil: "load" });
    const ms = options.timeoutMs ?? 60_000;
    const run = page.evaluate(async ({ url, args }) => {
      const mod = await import(url);
      return await mod.default(args);
    }, { url: `${server.url}__test__.mjs`, args: options.args ?? null });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`page did not finish within ${ms} ms; console:\n${messages.join("\n")}`)),
        ms,
      );
    });
    let result: T;
    try {
      result = await Promise.race([run, timeout]) as T;
    } catch (error) {
      run.catch(() => {}); // closing the browser rejects it; that is expected now
      throw new Error(
        `page run failed: ${error}\nconsole:\n${messages.join("\n")}\npage errors:\n${pageErrors.join("\n")}`,
        {
          cause: error,
        },
      );
    }
    return { result, consoleErrors, pageErrors, console: messages };
  } finally {
    clearTimeout(timer);
    await launched?.close();
    await server.close();
  }
}
