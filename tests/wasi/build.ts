/**
 * Test helper: builds the C examples with Debian's clang for wasm32-wasi, caching each output under
 * `tests/wasi/.build/` (gitignored) by a hash of the sources and flags.
 *
 * @module
 */

const EXAMPLES = new URL("../../examples/wasi/", import.meta.url);
const OUT = new URL("./.build/", import.meta.url);

/** The clang command line used for every example (also printed in docs/wasi.md). */
export const CLANG_FLAGS = ["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall"];

async function hash(parts: (string | Uint8Array)[]): Promise<string> {
  const enc = new TextEncoder();
  const all = parts.map((p) => typeof p === "string" ? enc.encode(p) : p);
  const buf = new Uint8Array(all.reduce((n, p) => n + p.length + 1, 0));
  let off = 0;
  for (const p of all) {
    buf.set(p, off);
    off += p.length + 1;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

const PROGRAMS = new URL("./programs/", import.meta.url);

/**
 * Builds `examples/wasi/<name>.c` (or, with `testProgram`, `tests/wasi/programs/<name>.c`) against the
 * examples' `wasix_sockets.h` (cached); resolves to the path of the `.wasm`.
 */
export async function buildExample(name: string, testProgram = false): Promise<string> {
  const source = new URL(`${name}.c`, testProgram ? PROGRAMS : EXAMPLES);
  const header = new URL("wasix_sockets.h", EXAMPLES);
  const key = await hash([await Deno.readFile(source), await Deno.readFile(header), CLANG_FLAGS.join(" ")]);
  await Deno.mkdir(OUT, { recursive: true });
  const out = new URL(`${name}-${key}.wasm`, OUT).pathname;
  try {
    await Deno.stat(out);
    return out;
  } catch {
    // not built yet
  }
  const tmp = `${out}.tmp`;
  const { code, stderr } = await new Deno.Command("clang", {
    args: [...CLANG_FLAGS, "-I", EXAMPLES.pathname, "-o", tmp, source.pathname],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`clang failed for ${name}.c:\n${new TextDecoder().decode(stderr)}`);
  await Deno.rename(tmp, out);
  return out;
}
