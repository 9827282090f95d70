/**
 * `deno task compile`: the single `wasmnet-server` binary, with the running Deno (`Deno.execPath()`), for the
 * host or for any of the five release targets.
 *
 * ```sh
 * deno task compile                                   # host → dist/wasmnet-server
 * deno task compile --target aarch64-apple-darwin     # → dist/wasmnet-server-aarch64-apple-darwin
 * deno task compile --all                             # the five release targets
 * ```
 *
 * Why a wrapper and not a bare `deno compile` in the task:
 * - `--exclude-unused-npm`: without it `deno compile` embeds every npm package of the lockfile's snapshot,
 *   not only those the server imports (the server's own `deno.lock` holds only runtime packages; the flag
 *   keeps the binary lean even if that lockfile ever gains a test package).
 * - `deno compile` fetches Deno's runtime for the target (`denort`) from Deno's download server. Where that
 *   fails (no network, as on our CI), this says so in plain words, names the two ways out and leaves no
 *   binary behind.
 * - A host-target binary is run once (`--version`): a `DENORT_BIN` pointing at the `deno` CLI instead of
 *   `denort` produces plain Deno, which this catches and deletes rather than shipping.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "../deno.json" with { type: "json" };

/** The five release targets (`deno compile --target` values): Linux and macOS on x86_64/aarch64, Windows x86_64. */
export const RELEASE_TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** One of {@link RELEASE_TARGETS}. */
export type ReleaseTarget = typeof RELEASE_TARGETS[number];

/**
 * Files the server reads at run time through `import.meta.url` (Worker scripts, static assets), relative to
 * the repository root. `deno compile` embeds only the static module graph; anything else must be listed here
 * (`--include`). Today the server reads none: policy, secret and CA files are the operator's, from disk.
 * `tests/packaging/compile_test.ts` fails if a module under `src/` reaches for a file this list lacks.
 */
export const RUNTIME_INCLUDES: readonly string[] = [];

/**
 * The npm packages the server runs, by name: all that the binary may embed. Extend this list (and only this
 * list) when the server gains a runtime dependency (a Prometheus client, a Redis client, …); a test-only
 * package never belongs here. `tests/packaging/deps_test.ts` holds `deno.lock` and the import maps to it.
 */
export const RUNTIME_NPM_PACKAGES: readonly string[] = ["smol-toml", "ioredis", "prom-client"];

/**
 * The permissions baked into the binary: what `deno task start` grants the server, plus what the deployment
 * docs run it with: `--allow-sys=hostname` (a replica's default name under `[cluster]`) and `--unstable-net`
 * (`--workers` shares the port with `SO_REUSEPORT`, which Deno 2.9.6 keeps behind that flag).
 */
export const PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys=hostname",
  "--unstable-net",
];

const ROOT = new URL("../", import.meta.url);

/** Where the binary for `target` goes: `dist/wasmnet-server[-TARGET][.exe]` (no suffix for the host build). */
export function outputPath(target: string | undefined, outDir = new URL("dist/", ROOT).pathname): string {
  const exe = (target ?? Deno.build.target).includes("windows") ? ".exe" : "";
  return `${outDir.replace(/\/?$/, "/")}wasmnet-server${target ? `-${target}` : ""}${exe}`;
}

/**
 * Directories of runtime npm packages left out of the binary, by package name. `bintrees` (under
 * prom-client) ships `test/perf/100k`, a file of 100,000 signed numbers that deno compile 2.9.6 parses as one
 * expression and overflows its stack on; its tests are not needed at run time.
 */
export const NPM_EXCLUDES: Readonly<Record<string, readonly string[]>> = { bintrees: ["test"] };

/**
 * The `deno compile` arguments for one binary. `npmDirs` maps an npm package's name to its directory (as
 * `deno info --json` reports it, see {@link npmPackageDirs}), for {@link NPM_EXCLUDES}.
 */
export function compileArgs(
  target: string | undefined,
  output: string,
  npmDirs: Record<string, string> = {},
): string[] {
  // deno.json sets "lock": false (no test run can add to the server's lockfile); the binary pins its npm
  // packages with the server's own, deno.lock.
  const args = [
    "compile",
    `--lock=${new URL("deno.lock", ROOT).pathname}`,
    "--exclude-unused-npm",
    ...PERMISSIONS,
    "--output",
    output,
  ];
  if (target) args.push("--target", target);
  for (const file of RUNTIME_INCLUDES) args.push("--include", new URL(file, ROOT).pathname);
  for (const [name, dirs] of Object.entries(NPM_EXCLUDES)) {
    if (npmDirs[name]) { for (const dir of dirs) args.push("--exclude", `${npmDirs[name]}/${dir}`); }
  }
  return [...args, new URL("cli.ts", ROOT).pathname];
}

/** One entry of `deno info --json`'s `npmPackages`. */
export interface GraphNpmPackage {
  name: string;
  dependencies: string[];
  localPath?: string;
}

/**
 * `npmPackages` of `deno info --json ENTRY` at the repository root (what `deno compile` embeds): as deno.json
 * has it (no lockfile), or against `lock`, a lockfile relative to the root (e.g. the server's `deno.lock`).
 */
export async function graphNpmPackages(
  entry = "cli.ts",
  lock?: string,
  deno = Deno.execPath(),
): Promise<Record<string, GraphNpmPackage>> {
  const { code, stdout, stderr } = await new Deno.Command(deno, {
    args: ["info", "--json", ...(lock ? [`--lock=${new URL(lock, ROOT).pathname}`] : []), entry],
    cwd: new URL(".", ROOT).pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno info ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout)).npmPackages;
}

/** Name → directory of every npm package in the server's graph, pinned by `deno.lock`. */
export async function npmPackageDirs(deno = Deno.execPath()): Promise<Record<string, string>> {
  const packages = await graphNpmPackages("cli.ts", "deno.lock", deno);
  return Object.fromEntries(
    Object.values(packages).filter((p) => p.localPath).map((p) => [p.name, p.localPath!]),
  );
}

/**
 * If `stderr` of a failed `deno compile` says the runtime (`denort`) could not be had, the project's own
 * explanation with the two ways out; otherwise `undefined`.
 */
export function explainRuntimeFailure(stderr: string, target: string | undefined): string | undefined {
  const text = stderr; // NO_COLOR is set for deno compile
  const missingLocal = /Could not find denort at '([^']*)'/.exec(text);
  const download = /(https?:\/\/\S*denort-[^\s)]+\.zip)/.exec(text);
  if (!missingLocal && !download && !/Setting up base binary/.test(text)) return undefined;
  const version = Deno.version.deno;
  const what = `Deno's runtime for ${target ?? Deno.build.target} (denort ${version})`;
  const why = missingLocal
    ? `${what} is not at DENORT_BIN=${missingLocal[1]}.`
    : `${what} could not be fetched${download ? ` from ${download[1]}` : ""}.`;
  return [
    `wasmnet compile: ${why}`,
    "`deno compile` builds the binary from that runtime and the server's code; no binary was written.",
    "Two ways out:",
    "  1. run this where Deno's download server (dl.deno.land) is reachable, or",
    `  2. set DENORT_BIN to a denort ${version} for this target (unzipped from denort-${
      target ?? Deno.build.target
    }.zip of Deno's v${version} release), e.g. DENORT_BIN=/opt/denort deno task compile.`,
    "The `deno` CLI itself is not a runtime for this: a binary built on it is plain Deno.",
  ].join("\n");
}

/** What one compile produced: the binary's path and size, or why there is none. */
export type CompileResult =
  | { ok: true; output: string; bytes: number; report: string }
  | { ok: false; output: string; message: string; report: string };

/** Removes `output` and any temporary file `deno compile` left beside it. */
async function removeOutput(output: string): Promise<void> {
  const dir = output.slice(0, output.lastIndexOf("/") + 1) || "./";
  const base = output.slice(dir.length);
  await Deno.remove(output).catch(() => {});
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(`${base}.tmp-`)) await Deno.remove(dir + entry.name).catch(() => {});
    }
  } catch { /* no directory, nothing left */ }
}

/**
 * Compiles one binary with `deno` (default: the running Deno). On any failure no binary is left behind; a
 * runtime-download failure comes back as {@link explainRuntimeFailure}'s message.
 */
export async function compileOne(
  target: string | undefined,
  options: { output?: string; deno?: string; env?: Record<string, string> } = {},
): Promise<CompileResult> {
  const output = options.output ?? outputPath(target);
  await Deno.mkdir(output.slice(0, output.lastIndexOf("/") + 1) || ".", { recursive: true });
  const { code, stdout, stderr } = await new Deno.Command(options.deno ?? Deno.execPath(), {
    args: compileArgs(target, output, await npmPackageDirs(options.deno)),
    cwd: new URL(".", ROOT).pathname,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  // deno compile's own account (target, embedded files and their sizes) comes on stderr, before any error.
  const err = new TextDecoder().decode(stderr);
  const report = new TextDecoder().decode(stdout) + err;
  if (code !== 0) {
    await removeOutput(output);
    return {
      ok: false,
      output,
      report,
      message: explainRuntimeFailure(err, target) ??
        `wasmnet compile: deno compile failed (exit ${code}):\n${err}`,
    };
  }
  if (!target || target === Deno.build.target) {
    const { stdout } = await new Deno.Command(output, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    const printed = new TextDecoder().decode(stdout).trim();
    if (printed !== `wasmnet-server ${denoJson.version}`) {
      await removeOutput(output);
      return {
        ok: false,
        output,
        report,
        message: `wasmnet compile: the binary printed "${printed.split("\n")[0]}" for --version, not ` +
          `"wasmnet-server ${denoJson.version}": it was built on something other than denort ` +
          "(DENORT_BIN pointing at the deno CLI?). It was deleted.",
      };
    }
  }
  return { ok: true, output, bytes: (await Deno.stat(output)).size, report };
}

/** Runs the task with `args`; resolves with the exit code (0 when every binary was built). */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      strict: true,
      options: { target: { type: "string", multiple: true }, all: { type: "boolean" } },
    }).values;
  } catch (err) {
    console.error(`wasmnet compile: ${(err as Error).message}`);
    return 2;
  }
  const targets: (string | undefined)[] = flags.all ? [...RELEASE_TARGETS] : flags.target ?? [undefined];
  for (const t of targets) {
    if (t !== undefined && !(RELEASE_TARGETS as readonly string[]).includes(t)) {
      console.error(`wasmnet compile: unknown target "${t}"; one of ${RELEASE_TARGETS.join(", ")}`);
      return 2;
    }
  }
  for (const target of targets) {
    const result = await compileOne(target);
    if (result.ok) console.log(result.report.trimEnd());
    if (!result.ok) {
      console.error(result.message);
      return 1;
    }
    console.log(`wasmnet compile: ${result.output} (${(result.bytes / 1e6).toFixed(1)} MB)`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
