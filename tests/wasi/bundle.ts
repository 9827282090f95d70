/**
 * Test helper: bundles the WASI bridge for the browser with `deno bundle` (as the npm build does), into
 * `tests/wasi/.build/`: `wasi.js` (the `./wasi` entry) and `wasi_worker.js` (the Worker script).
 *
 * @module
 */

const OUT = new URL("./.build/", import.meta.url).pathname;
const WASI_DIR = new URL("../../client/wasi/", import.meta.url).pathname;

async function bundle(entry: string, out: string): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", "--format", "esm", "--output", out, entry],
    stdout: "inherit",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (code !== 0) throw new Error(`deno bundle ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
}

/** Bundles both entries; resolves to their file paths. */
export async function bundleWasi(): Promise<{ wasi: string; worker: string }> {
  await Deno.mkdir(OUT, { recursive: true });
  const wasi = `${OUT}wasi.js`, worker = `${OUT}wasi_worker.js`;
  await Promise.all([bundle(`${WASI_DIR}mod.ts`, wasi), bundle(`${WASI_DIR}worker_main.ts`, worker)]);
  return { wasi, worker };
}
