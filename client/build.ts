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
  if (options.declaration) await fixDeclarations(out.replace(/\.js$/, ".d.ts"));
  return out;
}

/** The WASI shim the client inlines (the same specifier as `wasi/shim.ts`), and where its types go in dist. */
const SHIM = {
  name: "@bjorn3/browser_wasi_shim",
  version: "0.4.2",
  module: "./shim.ts",
  types: "./shim/index.js",
};

/**
 * `deno bundle --declaration` concatenates the modules' declarations but keeps each module's own imports:
 * `./shim.ts` once per importing module (tsc: `Duplicate identifier 'Fd'`), pointing at a file that is not
 * in dist. This merges them into one import of the shim's own typings, shipped beside the bundle in
 * `dist/shim/` with its licence (the JS inlines the shim, so the package needs no peer for it), and throws
 * if any other import is left, since nothing else is in the tarball.
 */
async function fixDeclarations(dts: string): Promise<void> {
  const text = await Deno.readTextFile(dts);
  const names = new Map<string, string>(); // local name → specifier text ("Fd", "type WASI", "wasi as defs")
  const importLine = /^import \{([^}]*)\} from "([^"]+)";\n/gm;
  let first = -1;
  const rest = text.replace(importLine, (line, specs: string, from: string, offset: number) => {
    if (from !== SHIM.module) return line;
    if (first < 0) first = offset;
    for (const raw of specs.split(",").map((x) => x.trim()).filter(Boolean)) {
      const local = raw.replace(/^type\s+/, "").split(/\s+as\s+/).at(-1)!;
      const seen = names.get(local);
      if (!seen || seen.startsWith("type ")) names.set(local, raw); // a value import covers the type
    }
    return "";
  });
  const left = [...rest.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
  if (left.length > 0) {
    throw new Error(`${dts} imports ${left.join(", ")}, which the npm package does not ship`);
  }
  if (first < 0) return void await Deno.writeTextFile(dts, rest);
  const merged = `import { ${[...names.values()].join(", ")} } from "${SHIM.types}";\n`;
  await Deno.writeTextFile(dts, rest.slice(0, first) + merged + rest.slice(first));
  await copyShimTypes();
}

/** Copies the shim's `.d.ts` files and licence from Deno's npm cache into `dist/shim/`. */
async function copyShimTypes(): Promise<void> {
  const { stdout } = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  const cache = JSON.parse(new TextDecoder().decode(stdout)).npmCache as string;
  const pkg = `${cache}/registry.npmjs.org/${SHIM.name}/${SHIM.version}`;
  const out = `${DIST_DIR}shim/`;
  await Deno.mkdir(out, { recursive: true });
  for await (const e of Deno.readDir(`${pkg}/typings`)) {
    if (e.name.endsWith(".d.ts")) await Deno.copyFile(`${pkg}/typings/${e.name}`, out + e.name);
  }
  await Deno.copyFile(`${pkg}/LICENSE-MIT`, `${out}LICENSE-MIT`);
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
  // The client's own import map (it may have none: the shim is named by npm: specifier), without the workspace.
  const { imports } = JSON.parse(await Deno.readTextFile(new URL("deno.json", here)));
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify({ imports: imports ?? {} }));
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
