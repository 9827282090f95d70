/**
 * `deno task bench:browser [--quick] [--only a,b] [--work download,...] [--rtt 20,80] [--profile DIR]
 * [--no-write]`: wasmnet
 * and its peers measured from inside a Chromium page (the page's main thread running each peer's own
 * client), and over a link with a round-trip time (`delay_relay.ts`). Every server runs in its own process,
 * the TCP targets in another; the page is one Chromium started by the bench with no DevTools attached
 * (`page_host.ts` says why that matters). Workloads go in interleaved rounds after an uncounted warm-up.
 * A full run (no `--quick`, `--only`, `--work`) rewrites the browser section of docs/benchmarks.md.
 *
 * Contenders are {@link BrowserContender}s: a page-side spec plus the server it needs, so another transport
 * (WebTransport, …) adds itself to {@link browserContenders}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type ContenderSpec, type PageHost, startPage } from "./page_host.ts";
import { POLICY, wispJsCli } from "../peers.ts";
import { freePort, type Proc, spawn, waitForPort } from "../procs.ts";
import { renderBrowserReport, type Results, writeBrowserSection } from "./report.ts";
import { freeUdpPort, makeWebTransportCert, webTransportFlags } from "../../tests/webtransport/helpers.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    only: { type: "string" },
    work: { type: "string" },
    rtt: { type: "string" },
    profile: { type: "string" },
    "no-write": { type: "boolean" },
  },
}).values;
const QUICK = args.quick ?? false;
const MiB = 1024 * 1024;
const ROOT = new URL("../..", import.meta.url).pathname;

/** Sizes of the work (full run, `--quick`). */
export const SIZE = QUICK
  ? { bulk: 16 * MiB, rtts: 100, connects: 30, rounds: 1, linkBulk: 8 * MiB, firstBytes: 5, linkRounds: 1 }
  : {
    bulk: 64 * MiB,
    rtts: 400,
    connects: 100,
    rounds: 5,
    linkBulk: 32 * MiB,
    firstBytes: 10,
    linkRounds: 3,
  };
/** Round-trip times of the link runs (ms) and its rate (Mbit/s). */
const LINK_RTTS = (args.rtt ?? "20,80").split(",").map(Number).filter((x) => x > 0);
const LINK_MBIT = 200;

/** The servers a run starts, by role; each contender names the one it talks to. */
export interface Servers {
  /** TCP targets (bench/targets.ts). */
  targetPort: number;
  /** WebSocket ports by server name. */
  ports: Record<string, number>;
}

/** A contender of the browser bench: what the page runs and which server (by name) it reaches. */
export interface BrowserContender {
  name: string;
  /** Key into {@link Servers.ports}. */
  server: string;
  /** The page side, without its URL (made from the server's port, through the link when there is one). */
  spec: Omit<ContenderSpec, "name" | "url">;
  /** URL path on the server (default `/`). */
  path?: string;
  /** Part of the link runs too (single-stream peers over the delaying relay). */
  overLink?: boolean;
}

/** Every contender of the page bench, in table order. */
export function browserContenders(): BrowserContender[] {
  const wasmnet = (
    name: string,
    options: ContenderSpec["options"],
    api: ContenderSpec["api"],
    overLink = false,
  ) => ({ name, server: "wasmnet", spec: { kind: "wasmnet", options, api }, overLink }) as BrowserContender;
  return [
    wasmnet("wasmnet binary", { binary: true }, "callback", true),
    wasmnet("wasmnet binary, streams", { binary: true }, "streams"),
    wasmnet("wasmnet binary, WASI", { binary: true }, "wasi"),
    wasmnet("wasmnet v2", { binary: true, flowControl: true }, "callback", true),
    wasmnet("wasmnet v2, streams", { binary: true, flowControl: true }, "streams", true),
    wasmnet("wasmnet JSON", {}, "callback"),
    // The same server process, over WebTransport on its UDP port (docs/webtransport.md).
    wasmnet("wasmnet WebTransport", { transport: "webtransport" }, "callback"),
    wasmnet("wasmnet WebTransport v2", { transport: "webtransport", flowControl: true }, "callback"),
    { name: "wisp-js server", server: "wispjs", spec: { kind: "wispjs" }, overLink: true },
    { name: "bare relay", server: "bare", spec: { kind: "raw" }, overLink: true },
    { name: "page WebSocket ceiling", server: "ceiling", spec: { kind: "ceiling" } },
    { name: "page WebTransport ceiling", server: "wtceiling", spec: { kind: "wtceiling" } },
  ];
}

async function startServers(tmp: string, procs: Proc[]): Promise<Servers> {
  const targets = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", `${ROOT}bench/targets.ts`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  procs.push({
    pid: targets.pid,
    child: targets,
    stop: async () => (targets.kill(), void await targets.status),
  });
  const reader = targets.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const targetPort = JSON.parse(((await reader.read()).value ?? "").split("\n")[0]).port as number;
  reader.releaseLock();
  targets.stdout.cancel().catch(() => {});
  Deno.writeTextFileSync(`${tmp}/policy.toml`, POLICY);
  const run = async (name: string, cmd: string, argv: (port: number) => string[]) => {
    const port = freePort();
    const proc = spawn(cmd, argv(port));
    procs.push(proc);
    await waitForPort(port, proc);
    return [name, port] as const;
  };
  const deno = Deno.execPath();
  // wasmnet also serves WebTransport (a certificate made here, Chromium accepts it by its hash).
  const cert = await makeWebTransportCert(tmp);
  const wtPort = await freeUdpPort();
  const wispOpts = JSON.stringify({ allow_loopback_ips: true, allow_private_ips: true });
  const cli = await wispJsCli();
  const ports = Object.fromEntries(
    await Promise.all([
      run("wasmnet", deno, (p) => [
        "run",
        "--unstable-net",
        // WASMNET_BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles the server, as in the loopback bench.
        ...(Deno.env.get("WASMNET_BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean),
        "--allow-net",
        "--allow-read",
        "--allow-env",
        `${ROOT}cli.ts`,
        "--host",
        "127.0.0.1",
        "--port",
        String(p),
        "--policy",
        `${tmp}/policy.toml`,
        "--quiet",
        ...webTransportFlags(wtPort, cert),
      ]),
      run("wispjs", "node", (p) => [cli, "-H", "127.0.0.1", "-P", String(p), "-L", "NONE", "-O", wispOpts]),
      run("bare", deno, (p) => ["run", "-A", `${ROOT}bench/bare_relay.ts`, String(p), String(targetPort)]),
      run("wtceiling", deno, (p) => [
        "run",
        "--unstable-net",
        "--allow-net",
        "--allow-read",
        `${ROOT}bench/browser/wt_ceiling_server.ts`,
        String(p),
        cert.cert,
        cert.key,
      ]),
      run(
        "ceiling",
        deno,
        (p) => ["run", "--allow-net", `${ROOT}bench/browser/ceiling_server.ts`, String(p)],
      ),
    ]),
  );
  return { targetPort, ports };
}

/** Starts a delaying relay in front of every server port; resolves to the relay's port for each. */
async function startLink(rttMs: number, servers: Servers, procs: Proc[]): Promise<Record<string, number>> {
  const upstream = Object.values(servers.ports).map(String);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      `${ROOT}bench/browser/delay_relay.ts`,
      "--rtt",
      String(rttMs),
      "--mbit",
      String(LINK_MBIT),
      ...upstream,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  procs.push({ pid: child.pid, child, stop: async () => (child.kill(), void await child.status) });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { ports } = JSON.parse(((await reader.read()).value ?? "").split("\n")[0]) as {
    ports: Record<string, number>;
  };
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return Object.fromEntries(Object.entries(servers.ports).map(([name, p]) => [name, ports[String(p)]]));
}

const WORK = args.work?.split(",").map((s) => s.trim().toLowerCase());
const selected = (what: string) => !WORK || WORK.some((w) => what.toLowerCase().includes(w));

/**
 * Runs `work` for every contender, round by round (all contenders in round 1, then round 2, …), after an
 * uncounted warm-up round, so drift of a shared machine falls on everyone alike.
 */
async function inRounds(
  page: PageHost,
  label: string,
  list: { name: string; spec: ContenderSpec }[],
  rounds: number,
  task: (spec: ContenderSpec) => Omit<Parameters<PageHost["run"]>[0], "contender">,
  results: Results,
): Promise<void> {
  if (!selected(label)) return;
  console.error(`${label} ...`);
  for (let round = 0; round <= rounds; round++) {
    for (const { name, spec } of list) {
      const row = (results[name] ??= {});
      const sofar = (row[label] ??= []);
      if (typeof sofar === "string") continue;
      try {
        const value = await page.run({ ...task(spec), contender: spec });
        if (round > 0) sofar.push(value);
      } catch (err) {
        console.error(`  ${name}, ${label}, round ${round}: FAILED: ${(err as Error).message}`);
        row[label] = "failed";
      }
    }
  }
}

async function main(): Promise<void> {
  const tmp = Deno.makeTempDirSync({ prefix: "wasmnet-browser-bench-" });
  const procs: Proc[] = [];
  const started = performance.now();
  const only = args.only?.split(",").map((s) => s.trim().toLowerCase());
  const chosen = browserContenders().filter((c) =>
    !only || only.some((o) => c.name.toLowerCase().includes(o))
  );
  const page = await startPage(tmp, { profileDir: args.profile });
  const results: Results = {};
  const links: Record<number, Results> = {};
  try {
    const servers = await startServers(tmp, procs);
    const specs = (ports: Record<string, number>, list: BrowserContender[]) =>
      list.map((c) => ({
        name: c.name,
        spec: { ...c.spec, name: c.name, url: `ws://127.0.0.1:${ports[c.server]}${c.path ?? "/"}` },
      }));
    const all = specs(servers.ports, chosen);
    const port = servers.targetPort;
    await inRounds(
      page,
      "download",
      all,
      SIZE.rounds,
      () => ({ work: "download", port, n: SIZE.bulk }),
      results,
    );
    await inRounds(page, "upload", all, SIZE.rounds, () => ({ work: "upload", port, n: SIZE.bulk }), results);
    await inRounds(
      page,
      "rtt 1 KiB",
      all,
      SIZE.rounds,
      () => ({ work: "rtt", port, n: SIZE.rtts, size: 1024 }),
      results,
    );
    await inRounds(
      page,
      "connects",
      all,
      SIZE.rounds,
      () => ({ work: "connects", port, n: SIZE.connects }),
      results,
    );
    for (const rtt of LINK_RTTS) {
      if (!["link download", "link upload", "link first byte"].some(selected)) continue;
      const ports = await startLink(rtt, servers, procs);
      const overLink = specs(ports, chosen.filter((c) => c.overLink));
      const r: Results = (links[rtt] = {});
      const n = SIZE.linkBulk;
      await inRounds(
        page,
        "link download",
        overLink,
        SIZE.linkRounds,
        () => ({ work: "download", port, n }),
        r,
      );
      await inRounds(page, "link upload", overLink, SIZE.linkRounds, () => ({ work: "upload", port, n }), r);
      const count = SIZE.firstBytes;
      await inRounds(
        page,
        "link first byte",
        overLink,
        SIZE.linkRounds,
        () => ({ work: "firstbyte", port, n: count }),
        r,
      );
    }
  } finally {
    await page.close();
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    Deno.removeSync(tmp, { recursive: true });
  }
  if (page.errors.length) console.error(`page errors:\n${page.errors.join("\n")}`);
  console.error(JSON.stringify({ results, links }));
  const seconds = (performance.now() - started) / 1000;
  const report = renderBrowserReport(results, links, {
    names: chosen.map((c) => c.name),
    sizes: SIZE,
    quick: QUICK,
    seconds,
    linkMbit: LINK_MBIT,
  });
  console.log(report);
  if (!args["no-write"] && !only && !WORK && !QUICK) writeBrowserSection(report);
}

if (import.meta.main) await main();
