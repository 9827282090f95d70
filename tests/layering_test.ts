/**
 * The layout's rules, checked on the source (docs/architecture.md): imports flow one way (server → http →
 * front ends → core → policy/protocol), there is no import cycle (type-only imports count) in `src/`,
 * `client/` or `protocol/`, and no front end can open a socket around the socket core.
 *
 * Imports are read with a regular expression over each file's text, which is enough for this code base
 * (static `import`/`export … from`, and `import("…")` with a literal).
 */

import assert from "node:assert/strict";
import { findCycles, importGraph, importsOf } from "./layering.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const graph = await importGraph(ROOT, ["src", "client", "protocol"]);

Deno.test("layering: no import cycle in src/, client/, protocol/ or bench/ (type-only imports count)", async () => {
  const cycles = findCycles((await importGraph(ROOT, ["src", "client", "protocol", "bench"])).edges);
  assert.deepEqual(cycles.map((c) => c.join(" -> ")), [], "import cycles");
});

Deno.test("layering: the import reader sees type-only, multi-line, re-export and dynamic imports", () => {
  const found = importsOf(`
    import type { A } from "./a.ts";
    import {
      type B,
      C,
    } from "./b.ts";
    export { D } from "./d.ts";
    export * from "./e.ts";
    const f = await import("./f.ts");
    import "./g.ts";
  `);
  assert.deepEqual(found.map((i) => [i.specifier, i.typeOnly]), [
    ["./a.ts", true],
    ["./b.ts", false],
    ["./d.ts", false],
    ["./e.ts", false],
    ["./f.ts", false],
    ["./g.ts", false],
  ]);
});

Deno.test("layering: a cycle in a made-up graph is found", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(findCycles(g), [["a", "b", "c", "a"]]);
});

/** Which folders a layer may import from (besides itself and `npm:`/`node:` packages). */
const MAY_IMPORT: Record<string, string[]> = {
  "protocol/": [],
  "src/policy/": [],
  "src/auth/": ["src/policy/"],
  "src/core/": ["protocol/", "src/policy/", "src/auth/"],
  "src/frontends/": ["src/core/", "protocol/", "src/policy/", "src/auth/"],
  "client/": ["protocol/"],
};

Deno.test("layering: imports flow down (protocol and policy import no layer; core no front end; front ends no server)", () => {
  const wrong: string[] = [];
  for (const [from, targets] of graph.edges) {
    if (from.endsWith("_test.ts") || from.includes("/tests/")) continue; // tests may reach across layers
    const layer = Object.keys(MAY_IMPORT).find((l) => from.startsWith(l));
    if (!layer) continue;
    for (const to of targets) {
      if (to.startsWith(layer)) continue;
      if (!to.startsWith("src/") && !to.startsWith("client/") && !to.startsWith("protocol/")) continue;
      if (!MAY_IMPORT[layer].some((allowed) => to.startsWith(allowed))) wrong.push(`${from} -> ${to}`);
    }
  }
  assert.deepEqual(wrong, []);
});

/** Modules that open sockets or look names up: only the core may import them for their values. */
const DIALERS = [
  "src/core/sockets/dial.ts",
  "src/core/sockets/tls.ts",
  "src/core/sockets/udp.ts",
  "src/core/sockets/listener.ts",
  "src/core/sockets/lookup.ts",
  "src/core/sockets/dns.ts",
  "src/core/sockets/resolver.ts",
];

Deno.test("layering: no front end imports a dialer or opens a socket itself; the core does", async () => {
  const wrong: string[] = [];
  for (const [file, imports] of graph.valueEdges) {
    if (!file.startsWith("src/frontends/") || file.endsWith("_test.ts")) continue;
    for (const to of imports) if (DIALERS.includes(to)) wrong.push(`${file} imports ${to}`);
  }
  for (const file of graph.edges.keys()) {
    if (!file.startsWith("src/frontends/") || file.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    const calls = text.match(
      /Deno\.(connect|connectTls|startTls|listen|listenTls|listenDatagram)\(|node:(dgram|net|tls)/g,
    );
    if (calls) wrong.push(`${file} calls ${[...new Set(calls)].join(", ")}`);
  }
  assert.deepEqual(wrong, []);
  // And the core is what does import them (the resolver is only a type there).
  const core = graph.valueEdges.get("src/core/core.ts") ?? [];
  assert.deepEqual(DIALERS.filter((d) => !d.endsWith("resolver.ts") && !core.includes(d)), []);
});

Deno.test("layering: a source file over 500 lines says why in its top comment", async () => {
  const long: string[] = [];
  const graphWithBench = await importGraph(ROOT, ["src", "client", "protocol", "bench"]);
  for (const file of graphWithBench.edges.keys()) {
    if (file.endsWith("_test.ts") || file.includes("/tests/")) continue;
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    const lines = text.split("\n").length - 1;
    const top = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? "";
    if (lines > 500 && !/longer than 500 lines/i.test(top)) long.push(`${file} (${lines} lines)`);
  }
  assert.deepEqual(long, []);
});
