/**
 * The server's module graph holds only the server's runtime npm packages. `deno compile` embeds the npm
 * packages of the lockfile that `deno info --json` lists under `npmPackages` (unless told
 * `--exclude-unused-npm`), and `deno task` installs every npm package of every import map in the workspace
 * into that lockfile before it runs a task. So test-only packages live in neither: tests name them with full
 * `npm:` specifiers and run against `deno.dev.lock` (`--lock=deno.dev.lock` in the test tasks).
 */

import assert from "node:assert/strict";
import { RUNTIME_NPM_PACKAGES } from "../../tools/compile.ts";
import { graphNpmPackages, runtimeClosure } from "./npm_graph.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

for (const entry of ["cli.ts", "mod.ts"]) {
  Deno.test(`deps: deno info ${entry} lists only the server's runtime npm packages`, async () => {
    const packages = await graphNpmPackages(entry);
    const names = Object.values(packages).map((p) => p.name);
    const allowed = runtimeClosure(packages);
    const extra = [...new Set(names.filter((n) => !allowed.has(n)))].sort();
    assert.deepEqual(
      extra,
      [],
      `deno.lock (what deno compile embeds) holds packages the server does not run: ${extra.join(", ")}. ` +
        "Run tests through `deno task test:quick FILE` (it uses deno.dev.lock), then `deno task lock:runtime`.",
    );
    for (const name of RUNTIME_NPM_PACKAGES) {
      assert.ok(names.includes(name), `${name} in ${names.join(", ")}`);
    }
  });
}

Deno.test("deps: every npm package in a workspace import map is a runtime package", async () => {
  // `deno task` installs these into deno.lock before running any task, so a test package here would land
  // in every binary built after a `deno task test`.
  for (const config of ["deno.json", "client/deno.json"]) {
    const json = JSON.parse(await Deno.readTextFile(`${ROOT}${config}`));
    const npm = Object.values<string>(json.imports ?? {}).filter((v) => v.startsWith("npm:"))
      .map((v) => v.slice(4, v.indexOf("@", 5)));
    for (const name of npm) {
      assert.ok(
        RUNTIME_NPM_PACKAGES.includes(name),
        `${config} imports ${name}, which the server does not run`,
      );
    }
  }
});
