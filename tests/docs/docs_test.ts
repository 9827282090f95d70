/**
 * The snippets of `docs/*.md` and `client/README.md` hold. A block whose twin is elsewhere names it in an
 * HTML comment just above (`<!-- twin: PATH … -->`, PATH must exist). The rest are checked here: JSON parses, TOML loads as a
 * policy, and JavaScript/TypeScript type-checks against this checkout (the published names point at it; a
 * fragment that uses `client` or `request` without making them gets them declared, nothing else).
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
