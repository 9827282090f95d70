/**
 * Builds the npm package's files from the same TypeScript the JSR package publishes: `dist/mod.js` (one
 * ESM file, no imports, for browsers, Deno and Node) and `dist/mod.d.ts`, using `deno bundle`.
 *
 * The client imports the workspace's protocol package by name (`@wasmnet/protocol`, as JSR resolves it).
 * The npm package has no runtime dependencies, so the build inlines it: the sources are copied to a
 * staging directory with those imports pointed at a copy of `protocol/` beside them, and bundled from
 * there. (`deno bundle` inlines a named package's code but leaves its import in the `.d.ts`; a relative
 * import it inlines in both.)
 *
 * Run: `deno task build:client` at the repository root, or `deno task build` in `client/`.
 * Tests import {@link buildClient} so a fresh clone builds before it runs.
 *
 * @module
 */

const here = new URL(".", import.meta.url);
const PROTOCOL = "@wasmnet/protocol";
const PROTOCOL_DIR = new URL("../protocol/", here);

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
  const args = ["bundle", "--quiet", "--platform", "browser", "--format", "esm", "--output", out];
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

/**
 * Copies the client's sources (no tests) and the protocol package's into a new temporary directory, as
 * `client/` and `protocol/`, with every `@wasmnet/protocol[/entry]` import rewritten to the relative path of
 * the file that entry names in `protocol/deno.json`; returns the directory. The caller removes it.
 */
export async function stageSources(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-client-build-" });
  const entries: Record<string, string> = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", PROTOCOL_DIR)),
  ).exports;
  const isSource = (name: string) => name.endsWith(".ts") && !name.endsWith("_test.ts");
  const copy = async (from: URL, to: string, rewrite: boolean) => {
    await Deno.mkdir(to, { recursive: true });
    for await (const entry of Deno.readDir(from)) {
      if (!entry.isFile || !isSource(entry.name)) continue;
      let text = await Deno.readTextFile(new URL(entry.name, from));
      if (rewrite) {
        const depth = to.slice(dir.length + 1).split("/").length; // client/ = 1, client/src/ = 2
        text = text.replace(/(["'])@wasmnet\/protocol(\/[\w-]+)?\1/g, (_whole, quote, sub = "") => {
          const file = entries[`.${sub}`];
          if (!file) {
            throw new Error(
              `${entry.name} imports ${PROTOCOL}${sub}, which protocol/deno.json does not export`,
            );
          }
          return `${quote}${"../".repeat(depth)}protocol/${file.slice(2)}${quote}`;
        });
      }
      await Deno.writeTextFile(`${to}/${entry.name}`, text);
    }
  };
  await copy(here, `${dir}/client`, true);
  await copy(new URL("src/", here), `${dir}/client/src`, true);
  await copy(new URL("wasi/", here), `${dir}/client/wasi`, true);
  await copy(PROTOCOL_DIR, `${dir}/protocol`, false);
  // The client's own import map (its npm peer, `@bjorn3/browser_wasi_shim`), without the workspace.
  const { imports } = JSON.parse(await Deno.readTextFile(new URL("deno.json", here)));
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports }));
  return dir;
}

/** Bundles `client/mod.ts` into `client/dist/mod.js` plus `mod.d.ts`; throws with deno's output on failure. */
export async function buildClient(): Promise<string> {
  await Deno.mkdir(DIST_DIR, { recursive: true });
  const staged = await stageSources();
  try {
    const out = await bundle(`${staged}/client/mod.ts`, `${DIST_DIR}mod.js`, {
      declaration: true,
      selfContained: true,
    });
    await Deno.stat(`${DIST_DIR}mod.d.ts`);
    return out;
  } finally {
    await Deno.remove(staged, { recursive: true });
  }
}

/**
 * Bundles the `./wasi` entry (`client/wasi/mod.ts`, with `@bjorn3/browser_wasi_shim` inlined) into
 * `dist/wasi.js` + `wasi.d.ts`, and its Worker script (`client/wasi/worker_main.ts`) into
 * `dist/wasi_worker.js`; resolves to both paths. Same self-contained rule as {@link buildClient}.
 */
export async function buildClientWasi(): Promise<{ wasi: string; worker: string }> {
  await Deno.mkdir(DIST_DIR, { recursive: true });
  const staged = await stageSources();
  try {
    const [wasi, worker] = await Promise.all([
      bundle(`${staged}/client/wasi/mod.ts`, `${DIST_DIR}wasi.js`, {
        declaration: true,
        selfContained: true,
      }),
      bundle(`${staged}/client/wasi/worker_main.ts`, `${DIST_DIR}wasi_worker.js`, {
        selfContained: true,
      }),
    ]);
    return { wasi, worker };
  } finally {
    await Deno.remove(staged, { recursive: true });
  }
}

if (import.meta.main) {
  const out = await buildClient();
  const wasi = await buildClientWasi();
  console.log(`built ${out} and mod.d.ts, ${wasi.wasi} and wasi.d.ts, ${wasi.worker}`);
}
