/**
 * Runs bench tasks in a Chromium page that is not driven by DevTools: the page (`page.ts`, bundled with the
 * wasmnet client) is served here, Chromium is started with its URL on the command line, and the page pulls
 * tasks over HTTP (`GET /task`) and posts figures back (`POST /result`).
 *
 * Why not playwright: a page playwright creates has DevTools network tracking on, which copies every
 * WebSocket frame to the driver and cuts the page's WebSocket ceiling about fourfold (~100 MB/s instead of
 * ~400 on this machine); every figure taken in such a page is low by that factor. Nothing here attaches
 * to the browser.
 *
 * @module
 */

import { bundle } from "../../client/build.ts";
import { CHROMIUM_ARGS, requireChromium } from "../../tests/browser/harness.ts";
import { wispJsBrowserBundle } from "../../tests/wisp/wispjs_bundle.ts";
import type { PageTask } from "./page.ts";
import { attachProfiler, type PageProfiler, topSelf } from "./profile.ts";

export type { ContenderSpec, PageTask } from "./page.ts";

/** What a task gives back: a figure, or a list of samples. */
export type TaskValue = number | number[];

/** A running page. */
export interface PageHost {
  /** Runs one task in the page; rejects with the page's error (or after `timeoutMs`). */
  run(task: Omit<PageTask, "id">, timeoutMs?: number): Promise<TaskValue>;
  /** Errors the page reported outside tasks. */
  errors: string[];
  /** Ends the page's loop, stops Chromium and the HTTP server. */
  close(): Promise<void>;
}

/**
 * Bundles the page, serves it, starts Chromium on it; resolves once the page asked for its first task.
 * With `profileDir`, every task runs under the DevTools CPU profiler (profile.ts) and its profile is
 * written there (figures taken so are not the bench's: the profiler costs the page some speed).
 */
export async function startPage(tmp: string, options: { profileDir?: string } = {}): Promise<PageHost> {
  const chromium = await requireChromium();
  const pageJs = await Deno.readFile(
    await bundle(new URL("page.ts", import.meta.url).pathname, `${tmp}/page.js`),
  );
  const wispJs = await Deno.readFile(await wispJsBrowserBundle());
  const html = `<!doctype html><meta charset=utf-8><title>wasmnet browser bench</title>
<script type=module src=/page.js></script>`;
  const queue: PageTask[] = [];
  const waiting = new Map<number, { resolve(v: TaskValue): void; reject(e: Error): void }>();
  let taskWaiter: (() => void) | undefined;
  let firstPoll!: () => void;
  const polled = new Promise<void>((r) => (firstPoll = r));
  let closing = false;
  let nextId = 1;
  const errors: string[] = [];
  // Cross-origin isolated, so the page's clock has microseconds (else performance.now() steps by 100 µs).
  const isolated = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cache-control": "no-store",
  };
  const js = { ...isolated, "content-type": "text/javascript" };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/") return new Response(html, { headers: { ...isolated, "content-type": "text/html" } });
    if (path === "/page.js") return new Response(pageJs, { headers: js });
    if (path === "/wisp-client.mjs") return new Response(wispJs, { headers: js });
    if (path === "/task") {
      firstPoll();
      while (!queue.length && !closing) await new Promise<void>((r) => (taskWaiter = r));
      return Response.json(closing ? { done: true } : queue.shift());
    }
    if (path === "/result") {
      const r = await req.json() as { id: number; ok: boolean; value?: TaskValue; error?: string };
      const w = waiting.get(r.id);
      waiting.delete(r.id);
      if (r.ok) w?.resolve(r.value!);
      else w?.reject(new Error(r.error));
      return new Response(null, { status: 204 });
    }
    if (path === "/log") {
      errors.push(JSON.stringify(await req.json()));
      return new Response(null, { status: 204 });
    }
    return new Response("not found", { status: 404 });
  });
  const profile = `${tmp}/chromium-profile`;
  const browser = new Deno.Command(chromium, {
    args: [
      // QUIC on: the WebTransport contenders need it (the WebSocket ones are TCP either way).
      ...CHROMIUM_ARGS.filter((a) => a !== "--disable-quic"),
      `--user-data-dir=${profile}`,
      // The page is the only tab, but keep its timers and renderer at full speed whatever headless thinks.
      "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows",
      ...(options.profileDir ? ["--remote-debugging-port=0"] : []),
      `http://127.0.0.1:${server.addr.port}/`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const started = await Promise.race([
    polled.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
  ]);
  const close = async () => {
    closing = true;
    taskWaiter?.();
    await new Promise((r) => setTimeout(r, 200));
    try {
      browser.kill("SIGTERM");
    } catch {
      // gone
    }
    await browser.status;
    await server.shutdown();
  };
  if (!started) {
    await close();
    throw new Error("the bench page did not load in Chromium within 30 s");
  }
  let profiler: PageProfiler | undefined;
  if (options.profileDir) {
    Deno.mkdirSync(options.profileDir, { recursive: true });
    profiler = await attachProfiler(profile);
  }
  const run = (task: Omit<PageTask, "id">, timeoutMs = 120_000): Promise<TaskValue> => {
    const id = nextId++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = new Promise<TaskValue>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`no result from the page in ${timeoutMs / 1000} s`));
      }, timeoutMs);
    });
    queue.push({ ...task, id });
    const wake = taskWaiter;
    taskWaiter = undefined;
    wake?.();
    return result.finally(() => clearTimeout(timer));
  };
  let profiled = 0;
  return {
    errors,
    run: !profiler ? run : async (task, timeoutMs) => {
      await profiler.start();
      const value = await run(task, timeoutMs);
      const cpu = await profiler.stop();
      const name = `${++profiled}-${task.contender.name}-${task.work}`.replace(/[^\w.-]+/g, "_");
      Deno.writeTextFileSync(`${options.profileDir}/${name}.cpuprofile`, JSON.stringify(cpu));
      console.error(`profile ${name}:\n${topSelf(cpu).join("\n")}`);
      return value;
    },
    close: async () => {
      profiler?.close();
      await close();
    },
  };
}
