/**
 * Builds the npm package's files from the same TypeScript the JSR package publishes: `dist/mod.js` (one
 * ESM file, no imports, for browsers, Deno and Node) and `dist/mod.d.ts`, using `deno bundle`.
 *
 * Run: `deno task build:client` at the repository root, or `deno task build` in `client/`.
 * Tests import {@link buildClient} so a fresh clone builds before it runs.
 *
 * @module
 */

const here = new URL(".", import.meta.url);

/** Where the build writes, as a file path. */
export const DIST_DIR: string = new URL("dist/", here).pathname;

/**
 * Runs `deno bundle` for the browser (ESM) from `entry` (a file path) to `out`, with a `.d.ts` beside it if
 * `declaration`. With `selfContained`, throws if the bundle still imports anything: the npm package promises
 * no runtime dependencies. Throws with deno's output when the bundle fails.
 */
export async function bundle(
  entry: string,
  out: string,
  options: { declaration?: boolean; selfContained?: boolean } = {},
): Promise<string> {
  const args = [
    "bundle",
    "--quiet",
    `--lock=${new URL("../deno.dev.lock", here).pathname}`,
    "--platform",
    "browser",
    "--format",
    "esm",
    "--output",
    out,
  ];
  if (options.declaration) args.push("--declaration");
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...args, entry],
    stdout: "inherit",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (code !== 0) {
    throw new Error(`deno bundle ${entry} failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`);
  }
  if (options.selfContained && /^\s*import\s|\bimport\(/m.test(await Deno.readTextFile(out))) {
    throw new Error(`${out} still imports something; it must be self-contained`);
  }
  return out;
}

/** Bundles `client/mod.ts` into `client/dist/mod.js` plus `mod.d.ts`; throws with deno's output on failure. */
export async function buildClient(): Promise<string> {
  await Deno.mkdir(DIST_DIR, { recursive: true });
  const out = await bundle(new URL("mod.ts", here).pathname, `${DIST_DIR}mod.js`, {
    declaration: true,
    selfContained: true,
  });
  await Deno.stat(`${DIST_DIR}mod.d.ts`);
  return out;
}

/**
 * Bundles the `./wasi` entry (`client/wasi/mod.ts`, with `@bjorn3/browser_wasi_shim` inlined) into
 * `dist/wasi.js` + `wasi.d.ts`, and its Worker script (`client/wasi/worker_main.ts`) into
 * `dist/wasi_worker.js`; resolves to both paths. Same self-contained rule as {@link buildClient}.
 */
export async function buildClientWasi(): Promise<{ wasi: string; worker: string }> {
  await Deno.mkdir(DIST_DIR, { recursive: true });
  const [wasi, worker] = await Promise.all([
    bundle(new URL("wasi/mod.ts", here).pathname, `${DIST_DIR}wasi.js`, {
      declaration: true,
      selfContained: true,
    }),
    bundle(new URL("wasi/worker_main.ts", here).pathname, `${DIST_DIR}wasi_worker.js`, {
      selfContained: true,
    }),
  ]);
  return { wasi, worker };
}

if (import.meta.main) {
  const out = await buildClient();
  const wasi = await buildClientWasi();
  console.log(`built ${out} and mod.d.ts, ${wasi.wasi} and wasi.d.ts, ${wasi.worker}`);
}
