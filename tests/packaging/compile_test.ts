/**
 * `deno task compile` (tools/compile.ts): what the binary embeds, and what happens when Deno's runtime
 * (`denort`) cannot be had. Our CI cannot reach Deno's download server, so a real binary is never built
 * here; the embed list is measured from a build on the `deno` CLI, which the task itself rejects and
 * deletes (it would be plain Deno), so that path is tested too.
 */

import assert from "node:assert/strict";
import {
  compileArgs,
  compileOne,
  RELEASE_TARGETS,
  RUNTIME_INCLUDES,
  RUNTIME_NPM_PACKAGES,
} from "../../tools/compile.ts";
import { graphNpmPackages, runtimeClosure } from "./npm_graph.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function leftovers(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names;
}

Deno.test("compile: the five release targets, lean npm embedding, the server's permissions", () => {
  assert.deepEqual([...RELEASE_TARGETS].sort(), [
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
  ]);
  const args = compileArgs("x86_64-pc-windows-msvc", "/tmp/out.exe");
  assert.ok(args.includes("--exclude-unused-npm"));
  // deno task start's grants, plus what --workers and [cluster] need (docs/deployment.md).
  for (
    const flag of ["--allow-net", "--allow-read", "--allow-env", "--allow-sys=hostname", "--unstable-net"]
  ) {
    assert.ok(args.includes(flag), flag);
  }
  assert.ok(!args.some((a) => /^--allow-(run|write|ffi|all)|^-A$/.test(a)), "nothing more");
  assert.ok(args.includes(`--lock=${ROOT}deno.lock`), "the server's own lockfile pins what is embedded");
  assert.deepEqual(args.slice(args.indexOf("--target"), args.indexOf("--target") + 2), [
    "--target",
    "x86_64-pc-windows-msvc",
  ]);
  assert.ok(args.at(-1)!.endsWith("/cli.ts"));
  // A listed package's directories are excluded where it is installed; an absent one adds nothing.
  const withDirs = compileArgs(undefined, "/tmp/out", { bintrees: "/cache/bintrees/1.0.2" });
  assert.deepEqual(withDirs.slice(withDirs.indexOf("--exclude"), withDirs.indexOf("--exclude") + 2), [
    "--exclude",
    "/cache/bintrees/1.0.2/test",
  ]);
  assert.ok(!compileArgs(undefined, "/tmp/out").includes("--exclude"));
});

Deno.test("compile: every file src/ loads through import.meta.url is in the include list", async () => {
  const refs: string[] = [];
  async function walk(dir: string) {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        const text = await Deno.readTextFile(path);
        for (const m of text.matchAll(/new URL\(\s*["'`]([^"'`]+)["'`]\s*,\s*import\.meta\.url/g)) {
          refs.push(new URL(m[1], `file://${path}`).pathname.slice(ROOT.length));
        }
      }
    }
  }
  await walk(`${ROOT}src`);
  for (const ref of refs) {
    assert.ok(RUNTIME_INCLUDES.includes(ref), `${ref} is read at run time; add it to RUNTIME_INCLUDES`);
  }
  for (const file of RUNTIME_INCLUDES) await Deno.stat(`${ROOT}${file}`);
});

Deno.test("compile: DENORT_BIN at a missing file: the project's message, no binary left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-compile-" });
  try {
    const result = await compileOne("aarch64-apple-darwin", {
      output: `${dir}/wasmnet-server`,
      env: { DENORT_BIN: `${dir}/no-such-denort` },
    });
    assert.equal(result.ok, false);
    assert.ok(
      !result.ok && result.message.includes(`is not at DENORT_BIN=${dir}/no-such-denort`),
      result.ok ? "" : result.message,
    );
    assert.match(result.ok ? "" : result.message, /set DENORT_BIN to a denort \d+\.\d+\.\d+/);
    assert.deepEqual(await leftovers(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: without DENORT_BIN, the runtime is fetched, or the failure says so and leaves nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-compile-" });
  try {
    const env = { ...Deno.env.toObject() };
    delete env.DENORT_BIN;
    // The task run as a user runs it, with the running Deno.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-run", "--allow-env", `${ROOT}tools/compile.ts`],
      cwd: dir,
      clearEnv: true,
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    if (out.code === 0) {
      // Deno's download server was reachable: a real binary, which the task ran (`--version`) before keeping.
      await Deno.stat(`${ROOT}dist/wasmnet-server${Deno.build.os === "windows" ? ".exe" : ""}`);
    } else {
      assert.match(stderr, /Deno's runtime for \S+ \(denort [\d.]+\) could not be fetched/);
      assert.match(stderr, /Deno's download server \(dl\.deno\.land\) is reachable/);
      assert.match(stderr, /set DENORT_BIN to a denort/);
      assert.doesNotMatch(stderr, /Stack backtrace/);
      const dist = await leftovers(`${ROOT}dist`).catch(() => []);
      assert.deepEqual(dist.filter((n) => n.startsWith("wasmnet-server")), [], "no binary in dist/");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: embeds only the server's code and runtime packages; a build on the deno CLI is deleted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-compile-" });
  try {
    // Measurement only: the `deno` CLI stands in for denort so the build gets past the runtime download
    // and deno compile reports what it embedded. The result is plain Deno, which the task must refuse.
    const result = await compileOne(undefined, {
      output: `${dir}/wasmnet-server`,
      env: { DENORT_BIN: Deno.execPath() },
    });
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.message, /printed "deno \d/);
    assert.deepEqual(await leftovers(dir), [], "the plain-Deno binary was deleted");

    // deno compile lists each package as `name/version/*` (flat for one package, a tree for several).
    const packages = [...result.report.matchAll(/(?:── |\/localhost\/)(\S+?)\/\* \(/g)]
      .map((m) =>
        m[1].replace(/^.*\/localhost\//, "").split("/").filter((part) => !/^\d/.test(part)).join("/")
      );
    for (const name of RUNTIME_NPM_PACKAGES) {
      assert.ok(packages.includes(name), `${name} embedded: ${result.report}`);
    }
    const allowed = runtimeClosure(await graphNpmPackages("cli.ts", "deno.lock"));
    assert.deepEqual(packages.filter((p) => !allowed.has(p)), [], "embedded npm packages");
    assert.doesNotMatch(
      result.report,
      /^\s*[├└]─\S* (tests|bench|tools|\.ci|docs|examples|client\/(src|wasi|dist))\b/m,
      result.report,
    );

    // The binary is denort for the target plus these embedded files (~1 MB when measured, 2026-12).
    const files = /^Files: ([\d.]+)(B|KB|MB)$/m.exec(result.report);
    assert.ok(files, result.report);
    const bytes = Number(files[1]) * { B: 1, KB: 1e3, MB: 1e6 }[files[2] as "B" | "KB" | "MB"];
    console.log(`compile: ${files[1]} ${files[2]} embedded (server code and runtime npm packages)`);
    // A bound, not a timing: test packages (~140 MB) would blow it at once; runtime ones fit well under.
    assert.ok(bytes < 8e6, `embedded ${bytes} bytes`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: the release workflow builds the five targets with this Deno and publishes every package", async () => {
  const workflow = await Deno.readTextFile(`${ROOT}.github/workflows/release.yml`);
  for (const target of RELEASE_TARGETS) assert.match(workflow, new RegExp(`^\\s+- ${target}$`, "m"));
  assert.match(workflow, /run: deno task compile --target \$\{\{ matrix\.target \}\}/);
  assert.match(workflow, new RegExp(`DENO_VERSION: ${Deno.version.deno.replaceAll(".", "\\.")}\\n`));
  for (const dir of ["protocol", "client"]) {
    assert.match(workflow, new RegExp(`run: deno publish\\n\\s+working-directory: ${dir}\\n`));
  }
  assert.match(workflow, /run: npm publish --provenance --access public\n\s+working-directory: client\n/);
  const pkg = JSON.parse(await Deno.readTextFile(`${ROOT}client/package.json`));
  assert.equal(pkg.scripts.prepack.split(" ").slice(0, 3).join(" "), `npx -y deno@${Deno.version.deno}`);
});
