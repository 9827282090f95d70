/**
 * Where the wisp-js 0.5.0 browser bundle (`dist/wisp-client.mjs`) is on this machine, for the browser tests
 * and the browser bench, which serve it to a page as wisp-js ships it.
 *
 * @module
 */

/** Where Deno keeps the wisp-js package (its npm cache, or a node_modules directory if the repo uses one). */
export async function wispJsBrowserBundle(): Promise<string> {
  const local =
    new URL("../../node_modules/@mercuryworkshop/wisp-js/dist/wisp-client.mjs", import.meta.url).pathname;
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const npmCache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache as string;
  const cached = `${npmCache}/registry.npmjs.org/@mercuryworkshop/wisp-js/0.5.0/dist/wisp-client.mjs`;
  for (const path of [local, cached]) {
    try {
      await Deno.stat(path);
      return path;
    } catch {
      // try the next place
    }
  }
  throw new Error(
    `wisp-js 0.5.0 browser bundle not found (looked at ${local} and ${cached}); run deno install`,
  );
}
