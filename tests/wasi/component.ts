/**
 * Test helper: builds the wasip2 test component from `p2_component/fetch.wat` + `world.wit` — wat2wasm
 * (Debian `wabt`), then jco's wasm-tools (`component embed` + `component new`), then
 * `jco transpile --async-mode jspi --instantiation async` with `fetch` as a JSPI export — into
 * `tests/wasi/.build/p2_component/`, cached by a hash of the sources.
 *
 * @module
 */

// Full npm: specifiers, not import-map entries: `deno task` installs every import-map npm package
// into deno.lock, the server's runtime lockfile that `deno compile` embeds (tests/packaging/).
// deno-lint-ignore no-import-prefix
import { componentEmbed, componentNew } from "npm:@bytecodealliance/jco-transpile@0.15.0/wasm-tools";
// deno-lint-ignore no-import-prefix
import { transpileBytes } from "npm:@bytecodealliance/jco-transpile@0.15.0";

const SRC = new URL("./p2_component/", import.meta.url);
const OUT = new URL("./.build/", import.meta.url).pathname;

/** Builds (or reuses) the transpiled component; resolves to the directory holding `component.js`. */
export async function buildP2Component(): Promise<string> {
  const wat = await Deno.readFile(new URL("fetch.wat", SRC));
  const wit = await Deno.readTextFile(new URL("world.wit", SRC));
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new Uint8Array([...wat, ...new TextEncoder().encode(wit)])),
  );
  const key = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  const dir = `${OUT}p2_component-${key}/`;
  try {
    await Deno.stat(`${dir}component.js`);
    return dir;
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const core = `${dir}fetch.core.wasm`;
  const { code, stderr } = await new Deno.Command("wat2wasm", {
    args: [new URL("fetch.wat", SRC).pathname, "-o", core],
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`wat2wasm failed:\n${new TextDecoder().decode(stderr)}`);
  const embedded = await componentEmbed({
    binary: await Deno.readFile(core),
    witSource: wit,
    world: "fetcher",
  });
  const component = await componentNew(embedded, []);
  await Deno.writeFile(`${dir}fetcher.wasm`, component);
  const { files } = await transpileBytes(component, {
    name: "component",
    instantiation: "async",
    asyncMode: "jspi",
    asyncImports: [
      "wasi:io/poll@0.2.10#[method]pollable.block",
      "wasi:io/streams@0.2.10#[method]input-stream.blocking-read",
      "wasi:io/streams@0.2.10#[method]output-stream.blocking-write-and-flush",
    ],
    asyncExports: ["fetch"],
    nodejsCompat: false,
    emitTypescriptDeclarations: false,
  });
  for (const [name, bytes] of Object.entries(files)) {
    const path = `${dir}${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, bytes);
  }
  return dir;
}

if (import.meta.main) console.log(await buildP2Component());
