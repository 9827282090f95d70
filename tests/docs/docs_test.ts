/**
 * The snippets of `docs/*.md` and `client/README.md` hold. A block whose twin is elsewhere names it in an
 * HTML comment just above (`<!-- twin: PATH … -->`, PATH must exist). The rest are checked here: JSON parses, TOML loads as a
 * policy, and JavaScript/TypeScript type-checks against this checkout (the published names point at it; a
 * fragment that uses `client` or `request` without making them gets them declared, nothing else). A block whose
 * twin is a file of `docs/deploy/` must be that file exactly. Every relative link (README and docs) names a file
 * that exists, and its `#anchor` a heading of that file.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { fencedBlocks } from "./blocks.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function docFiles(): Promise<string[]> {
  const files: string[] = ["client/README.md"];
  for await (const e of Deno.readDir(`${ROOT}docs`)) if (e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  return files.sort();
}

/** Published names → files of this checkout. */
const MODULES: [RegExp, string][] = [
  [/"(@aspect-run\/wasmnet-client|(jsr:)?@wasmnet\/client)\/wasi"/g, `"${ROOT}client/wasi/mod.ts"`],
  [/"(@aspect-run\/wasmnet-client|(jsr:)?@wasmnet\/client)"/g, `"${ROOT}client/mod.ts"`],
  [/"jsr:@wasmnet\/server"/g, `"${ROOT}mod.ts"`],
];

/** The block as a module of this checkout, with what a fragment assumes declared. */
function asModule(code: string, lang: string): string {
  let out = code.replace(/^\s*\/\/ …$/gm, "");
  for (const [from, to] of MODULES) out = out.replace(from, to);
  const prelude: string[] = [];
  const js = lang === "js";
  if (/\bclient\b/.test(out) && !/\b(const|let) client\b|import \{ client/.test(out)) {
    prelude.push(
      js
        ? `/** @type {import("${ROOT}client/mod.ts").WasmnetClient} */ const client = /** @type {any} */ (null);`
        : `import type { WasmnetClient as __Client } from "${ROOT}client/mod.ts";\ndeclare const client: __Client;`,
    );
  }
  if (/\bWasmnetClient\b/.test(out) && !/import \{[^}]*\bWasmnetClient\b/.test(out)) {
    prelude.push(`import { WasmnetClient } from "${ROOT}client/mod.ts";`);
  }
  if (/\brequest\b/.test(out) && !/\b(const|let) request\b/.test(out)) {
    prelude.push(
      js
        ? "const request = new Uint8Array(48); // a fragment's payload"
        : "declare const request: Uint8Array;",
    );
  }
  return `${js ? "// @ts-check\n" : ""}${prelude.join("\n")}\n${out}\nexport {};\n`;
}

Deno.test("docs: every snippet is checked here or names a twin that exists", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-docs-" });
  try {
    const modules: string[] = [];
    let checked = 0;
    for (const file of await docFiles()) {
      for (const block of await fencedBlocks(file)) {
        const where = `${file}:${block.line} (${block.lang})`;
        if (block.twin) {
          const twin = await Deno.stat(`${ROOT}${block.twin}`).catch(() => null);
          assert.ok(twin, `${where}: twin ${block.twin} does not exist`);
          if (block.twin.startsWith("docs/deploy/")) {
            // A block that says it is a tested file must be that file, byte for byte.
            assert.equal(
              block.code,
              await Deno.readTextFile(`${ROOT}${block.twin}`),
              `${where}: differs from ${block.twin}`,
            );
          }
          continue;
        }
        checked++;
        switch (block.lang) {
          case "json":
            for (const doc of /^\{"/.test(block.code) ? block.code.trim().split("\n") : [block.code]) {
              assert.doesNotThrow(() => JSON.parse(doc), `${where}: ${doc}`);
            }
            break;
          case "toml": {
            const text = block.code.replace(/^ {2}/gm, ""); // a block inside a list item
            assert.doesNotThrow(() => Policy.fromToml(text, where), where);
            break;
          }
          case "js":
          case "ts": {
            const path = `${dir}/${file.replaceAll("/", "_")}_${block.line}.${block.lang}`;
            await Deno.writeTextFile(path, asModule(block.code, block.lang));
            modules.push(path);
            break;
          }
          default:
            assert.fail(`${where}: no twin, and ${block.lang} blocks are not checked here; name its test`);
        }
      }
    }
    assert.ok(checked >= 10, `checked ${checked} blocks`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", `--lock=${ROOT}deno.dev.lock`, ...modules],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).replaceAll(dir, "<doc>"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(
    /\s/g,
    "-",
  );
}

/** The anchors a Markdown file's headings give. */
function anchors(text: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of text.replace(/```[\s\S]*?```/g, "").matchAll(/^#{1,6} (.+)$/gm)) {
    const base = anchor(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

Deno.test("docs: every relative link and anchor resolves", async () => {
  const problems: string[] = [];
  let links = 0;
  for (const file of ["README.md", ...await docFiles()]) {
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
    for (const m of text.replace(/```[\s\S]*?```/g, "").matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = m[1];
      if (/^[a-z]+:/.test(href)) continue; // http:, https:, mailto:
      links++;
      const [path, hash] = href.split("#");
      const target = path ? new URL(path, `file://${ROOT}${dir}`).pathname : `${ROOT}${file}`;
      const stat = await Deno.stat(target).catch(() => null);
      if (!stat) {
        problems.push(`${file}: ${href}: no such file`);
        continue;
      }
      if (hash && target.endsWith(".md") && !anchors(await Deno.readTextFile(target)).has(hash)) {
        problems.push(`${file}: ${href}: no heading with that anchor`);
      }
    }
  }
  assert.ok(links >= 20, `found ${links} relative links`);
  assert.deepEqual(problems, []);
});
