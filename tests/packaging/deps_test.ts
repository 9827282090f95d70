/**
 * The server's module graph holds only the server's runtime npm packages. `deno compile` embeds the npm
 * packages of the lockfile that `deno info --json` lists under `npmPackages` (unless told
 * `--exclude-unused-npm`), and `deno task` installs every npm package of every import map in the workspace
 * into that lockfile before it runs a task. So test-only packages live in neither: tests name them with full
 * `npm:` specifiers and run against `deno.dev.lock` (`--lock=deno.dev.lock` in the test tasks).
 */

import assert from "node:assert/strict";
import { RUNTIME_NPM_PACKAGES } from "../../tools/compile.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** `name@version[_peer…]` (as `npmPackages` keys it) → `name`. */
function packageName(key: string): string {
  return key.slice(0, key.indexOf("@", 1));
}

async function graphNpmPackages(entry: string): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, `deno info ${entry}: ${new TextDecoder().decode(stderr)}`);
  return Object.keys(JSON.parse(new TextDecoder().decode(stdout)).npmPackages).map(packageName).sort();
}

for (const entry of ["cli.ts", "mod.ts"]) {
  Deno.test(`deps: deno info ${entry} lists only the server's runtime npm packages`, async () => {
    const names = await graphNpmPackages(entry);
    const extra = names.filter((n) => !RUNTIME_NPM_PACKAGES.includes(n));
    assert.deepEqual(
      extra,
      [],
      `deno.lock (what deno compile embeds) holds packages the server does not run: ${extra.join(", ")}. ` +
        "Run tests through `deno task test:quick FILE` (it uses deno.dev.lock), then `deno task lock:runtime`.",
    );
    assert.ok(names.includes("smol-toml"), `the policy parser is in the graph: ${names.join(", ")}`);
  });
}

Deno.test("deps: every npm package in a workspace import map is a runtime package", async () => {
  // `deno task` installs these into deno.lock before running any task, so a test package here would land
  // in every binary built after a `deno task test`.
  for (const config of ["deno.json", "client/deno.json"]) {
    const json = JSON.parse(await Deno.readTextFile(`${ROOT}${config}`));
    const npm = Object.values<string>(json.imports ?? {}).filter((v) => v.startsWith("npm:"))
      .map((v) => packageName(v.slice(4)));
    for (const name of npm) {
      assert.ok(
        RUNTIME_NPM_PACKAGES.includes(name),
        `${config} imports ${name}, which the server does not run`,
      );
    }
  }
});
