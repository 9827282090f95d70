/**
 * The README's snippets hold. Every fenced block with a language names its twin in an HTML comment just
 * above it (`<!-- twin: PATH … -->`, PATH a test or script that exists); the blocks whose twin is this file
 * are run here: the server commands start and stop as written (the only edit: `--host 127.0.0.1 --port 0`
 * appended, so the test owns a free port), the test command is `.ci/run`'s, the TOML loads as a policy, the
 * library snippet type-checks against `mod.ts`.
 */

import assert from "node:assert/strict";
import { loadPolicyFile } from "../../src/policy/mod.ts";
import { type Block, fencedBlocks } from "./blocks.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const THIS = "tests/docs/readme_test.ts";
const DENO = "npx -y deno@2.9.6"; // what `deno` stands for in the README

async function readmeBlocks(): Promise<Block[]> {
  return await fencedBlocks("README.md");
}

/** Lines of a shell block without comments and blanks. */
function commands(code: string): string[] {
  return code.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l && !l.startsWith("#"));
}

/** Runs `deno task start ARGS… --host 127.0.0.1 --port 0` until it listens, then stops it with SIGTERM. */
async function startAndStop(args: string[]): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "start", ...args, "--host", "127.0.0.1", "--port", "0"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let out = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    while (!/listening on ws:\/\/127\.0\.0\.1:\d+\/\npolicy: .*\n/.test(out)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`deno task start ${args.join(" ")} ended early:\n${out}\n${await stderr}`);
      out += value;
    }
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    assert.equal(status.code, 0, `${out}\n${await stderr}`);
    assert.match(out, /wasmnet-server: shut down/);
    return out;
  } finally {
    clearTimeout(timer);
    await stderr;
  }
}

Deno.test("README: every snippet names a twin that exists", async () => {
  const blocks = await readmeBlocks();
  assert.ok(blocks.length >= 8, `found ${blocks.length} blocks`);
  for (const block of blocks) {
    assert.ok(block.twin, `README.md:${block.line} (${block.lang}) has no <!-- twin: … --> comment above it`);
    await Deno.stat(`${ROOT}${block.twin}`);
  }
});

Deno.test("README: the two commands: the server starts and stops; the test command is .ci/run's", async () => {
  const block = (await readmeBlocks()).find((b) => b.code.includes(`${DENO} task test`));
  assert.ok(block);
  assert.equal(block.twin, THIS);
  const lines = commands(block.code);
  assert.deepEqual(lines, [`${DENO} task start`, `${DENO} task test`]);
  const ci = commands(await Deno.readTextFile(`${ROOT}.ci/run`));
  assert.equal(ci.at(-1), lines[1], ".ci/run ends with the README's test command");
  assert.match(await startAndStop([]), /policy: built-in default/);
});

Deno.test("README: quick start: each deno task start line runs as written", async () => {
  const block = (await readmeBlocks()).find((b) => b.code.includes("deno task start --no-policy"));
  assert.ok(block);
  assert.equal(block.twin, THIS);
  const expected: Record<string, RegExp> = {
    "": /policy: built-in default/,
    "--port 8420": /policy: built-in default/,
    "--policy policy.example.toml": /policy: policy\.example\.toml/,
    "--no-policy": /policy: --no-policy: everything allowed/,
  };
  const seen: string[] = [];
  for (const line of commands(block.code)) {
    assert.ok(line.startsWith("deno task start"), line);
    const args = line.slice("deno task start".length).trim();
    seen.push(args);
    assert.ok(args in expected, `a new quick-start line: ${line}; add what it should print here`);
    assert.match(await startAndStop(args ? args.split(/\s+/) : []), expected[args], line);
  }
  assert.deepEqual(seen, Object.keys(expected));
});

Deno.test("README: the policy snippet loads as a policy file", async () => {
  const block = (await readmeBlocks()).find((b) => b.lang === "toml");
  assert.ok(block);
  assert.equal(block.twin, THIS);
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-readme-" });
  try {
    await Deno.writeTextFile(`${dir}/policy.toml`, block.code);
    const policy = await loadPolicyFile(`${dir}/policy.toml`);
    assert.match(policy.describe(), /deny 5 rules/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README: the library snippet type-checks against mod.ts", async () => {
  const block = (await readmeBlocks()).find((b) => b.lang === "ts" && b.code.includes("jsr:@wasmnet/server"));
  assert.ok(block);
  assert.equal(block.twin, THIS);
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-readme-" });
  try {
    // The one edit: the published name points at this checkout.
    const code = block.code.replaceAll('"jsr:@wasmnet/server"', JSON.stringify(`${ROOT}mod.ts`));
    await Deno.writeTextFile(`${dir}/library.ts`, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", `--lock=${ROOT}deno.dev.lock`, `${dir}/library.ts`],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
