/**
 * The server's module graph holds only the server's runtime npm packages. `deno compile` embeds the npm
 * packages of the lockfile that `deno info --json` lists under `npmPackages` (unless told
 * `--exclude-unused-npm`), `deno task` installs every npm package of every import map in the workspace into
 * the lockfile before it runs a task, and a test run adds its packages too. So deno.json has no lockfile
 * (`"lock": false`); the server pins its runtime packages in `deno.lock` (used by `deno task start` and
 * `deno task compile`), the tests, benchmarks and checks theirs in `deno.dev.lock` (`--lock=deno.dev.lock`
 * in their tasks); and test-only packages are named by full `npm:` specifier, in no import map.
 */

import assert from "node:assert/strict";
import { RUNTIME_NPM_PACKAGES } from "../../tools/compile.ts";
import { graphNpmPackages, runtimeClosure } from "./npm_graph.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

for (const [entry, lock] of [["cli.ts"], ["mod.ts"], ["cli.ts", "deno.lock"], ["mod.ts", "deno.lock"]]) {
  const how = lock ? ` --lock=${lock}` : "";
  Deno.test(`deps: deno info${how} ${entry} lists only the server's runtime npm packages`, async () => {
    const packages = await graphNpmPackages(entry, lock);
    const names = Object.values(packages).map((p) => p.name);
    const allowed = runtimeClosure(packages);
    const extra = [...new Set(names.filter((n) => !allowed.has(n)))].sort();
    assert.deepEqual(
      extra,
      [],
      `the server's graph${how} holds packages the server does not run: ${extra.join(", ")}. ` +
        "A test package belongs in no import map; deno.lock is rebuilt by `deno task lock:runtime`.",
    );
    for (const name of RUNTIME_NPM_PACKAGES) {
      assert.ok(names.includes(name), `${name} in ${names.join(", ")}`);
    }
  });
}

Deno.test("deps: the workspace has no default lockfile; the server's tasks use deno.lock", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  assert.equal(config.lock, false);
  assert.match(config.tasks.start, /^deno run --lock=deno\.lock /);
  for (const task of ["test", "test:quick", "check", "bench", "build:client"]) {
    assert.match(config.tasks[task], /--lock=deno\.dev\.lock/, task);
  }
});

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
