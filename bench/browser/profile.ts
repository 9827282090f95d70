/**
 * CPU profiles of the bench page (`bench:browser --profile DIR`): attaches to the Chromium the bench
 * started (`--remote-debugging-port=0`) and enables only the DevTools `Profiler` domain, never `Network`
 * (the `Network` domain is what copies every WebSocket frame to the driver and slows the page fourfold).
 * Each task's profile is written as a `.cpuprofile` (Chrome DevTools opens it) and summarised as the
 * functions with the most self time.
 *
 * @module
 */

/** A running profiler on the bench page. */
export interface PageProfiler {
  start(): Promise<void>;
  /** Stops and returns the profile (Chrome's `Profiler.Profile`). */
  stop(): Promise<CpuProfile>;
  close(): void;
}

/** The parts of a Chrome CPU profile the summary reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
}

/** Waits for Chromium's `DevToolsActivePort` file in `userDataDir` and attaches to its page. */
export async function attachProfiler(userDataDir: string): Promise<PageProfiler> {
  let port = 0;
  for (let i = 0; i < 100 && !port; i++) {
    try {
      port = Number((await Deno.readTextFile(`${userDataDir}/DevToolsActivePort`)).split("\n")[0]);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (!port) throw new Error("Chromium wrote no DevToolsActivePort");
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    type: string;
    webSocketDebuggerUrl: string;
  }[];
  const page = targets.find((t) => t.type === "page");
  if (!page) throw new Error("no page target in Chromium");
  const ws = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("cannot attach to the page"));
  });
  let next = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id) waiting.get(m.id)?.(m.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 200 });
  return {
    start: async () => void await call("Profiler.start"),
    stop: async () => ((await call("Profiler.stop")) as { profile: CpuProfile }).profile,
    close: () => ws.close(),
  };
}

/** The `n` functions with the most self time, as `percent  name  url:line` lines. */
export function topSelf(profile: CpuProfile, n = 15): string[] {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const counts = new Map<string, number>();
  for (const id of profile.samples) {
    const f = byNode.get(id);
    if (!f) continue;
    const file = f.url.slice(f.url.lastIndexOf("/") + 1);
    const key = `${f.functionName || "(anonymous)"}  ${file ? `${file}:${f.lineNumber + 1}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length || 1;
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, c]) =>
    `${(c / total * 100).toFixed(1).padStart(5)}%  ${k}`
  );
}
