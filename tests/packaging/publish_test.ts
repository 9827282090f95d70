/**
 * `deno publish --dry-run` for each JSR package: it passes, ships the licence and the library, and nothing
 * from tests, benchmarks, CI, tools, build output or `*_test.ts`.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The JSR packages of the repository, as directories relative to the root. */
const PACKAGES = ["", "client/", "protocol/"];

async function dryRun(dir: string): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", `--lock=${ROOT}deno.dev.lock`],
    cwd: `${ROOT}${dir}`,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, out);
  assert.match(out, /Success Dry run complete/);
  return [...out.matchAll(/file:\/\/(\S+)/g)].map((m) => m[1].slice(`${ROOT}${dir}`.length));
}

for (const dir of PACKAGES) {
  Deno.test(`publish: ${dir || "the root"} dry-runs with only the library and its licence`, async () => {
    const files = await dryRun(dir);
    for (const f of ["LICENSE", "README.md", "mod.ts", "deno.json"]) {
      assert.ok(files.includes(f), `${f} in ${files}`);
    }
    const stray = files.filter((f) =>
      /^(tests|bench|\.ci|tools|dist|examples|docs|node_modules)\//.test(f) ||
      /_test(_helper)?\.ts$/.test(f) ||
      /(^|\/)tests\//.test(f) || f === "build.ts" || f === "package.json" || f.endsWith(".lock")
    );
    assert.deepEqual(stray, [], "files that are not the library");
  });
}
