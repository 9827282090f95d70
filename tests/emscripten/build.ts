/**
 * Builds the C test programs with Debian's Emscripten (3.1.6) into a temporary directory. Debian ships
 * Emscripten's system libraries prebuilt in a frozen cache (`/usr/share/emscripten/cache`), so a build
 * takes about a second and writes nothing outside `outDir`. `-O0`: from `-O1` (with `-pthread`) or `-O2`
 * Emscripten runs its JS minifier, which needs `NODE_PATH=/usr/share/nodejs` to find Debian's `acorn`.
 *
 * @module
 */

/** The link flags of each mode, exactly as docs/emscripten.md gives them. */
export const FLAGS = {
  /** Default SOCKFS: nothing to add (websockify mode). */
  sockfs: [] as string[],
  /** The POSIX socket proxy. */
  posix: ["-lwebsocket.js", "-sPROXY_POSIX_SOCKETS", "-pthread", "-sPROXY_TO_PTHREAD"],
};

/** Throws a clear error (tests must fail, not skip) when emcc is missing. */
export async function requireEmcc(): Promise<void> {
  try {
    const out = await new Deno.Command("emcc", { args: ["--version"], stdout: "piped", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  } catch (err) {
    throw new Error(
      `emcc is not usable (install Debian's emscripten: apt-get install -y emscripten): ${err}`,
    );
  }
}

/** Compiles `tests/emscripten/<source>` to `<outDir>/<name>.js` with `flags`; throws with emcc's output on failure. */
export async function emcc(source: string, outDir: string, name: string, flags: string[]): Promise<string> {
  const src = new URL(source, import.meta.url).pathname;
  const out = `${outDir}/${name}.js`;
  const result = await new Deno.Command("emcc", {
    args: [src, "-O0", "-o", out, ...flags],
    stdout: "piped",
    stderr: "piped",
    env: { EMCC_SKIP_SANITY_CHECK: "1" },
  }).output();
  if (!result.success) {
    const text = new TextDecoder().decode(result.stderr) + new TextDecoder().decode(result.stdout);
    throw new Error(`emcc ${source} ${flags.join(" ")} failed:\n${text}`);
  }
  return out;
}
