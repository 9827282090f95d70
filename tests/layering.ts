/**
 * The import graph of the repository's TypeScript, for the layering test (and `deno run --allow-read
 * tests/layering.ts`, which prints any cycle). Imports are read with a regular expression: static
 * `import … from`, `export … from`, side-effect `import "…"` and `import("…")` with a literal.
 * Workspace packages resolve by name (`@wasmnet/protocol[/entry]`, through `protocol/deno.json`);
 * `npm:`, `node:` and import-map packages are left out.
 *
 * @module
 */

/** One import of a file. `typeOnly`: `import type`/`export type`, or every name marked `type`. */
export interface ImportRef {
  specifier: string;
  typeOnly: boolean;
}

const IMPORT =
  /(?:^|[\n;])\s*(import|export)\s+(type\s+)?([\s\S]*?)\s+from\s+["']([^"']+)["']|(?:^|[\n;])\s*import\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The imports in `text`, in order. */
export function importsOf(text: string): ImportRef[] {
  const found: ImportRef[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of code.matchAll(IMPORT)) {
    if (m[4] !== undefined) {
      const names = m[3].trim();
      const braces = /^\{([\s\S]*)\}$/.exec(names);
      const allTyped = braces !== null &&
        braces[1].split(",").map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith("type "));
      found.push({ specifier: m[4], typeOnly: m[2] !== undefined || allTyped });
    } else {
      found.push({ specifier: (m[5] ?? m[6])!, typeOnly: false });
    }
  }
  return found;
}

/** Every elementary cycle reached by a depth-first walk of `edges`, each once, as `[a, b, …, a]`. */
export function findCycles(edges: Map<string, string[]>): string[][] {
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const seen = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    state.set(node, "active");
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === "active") {
        const cycle = stack.slice(stack.indexOf(next));
        // One rotation per cycle: start at its smallest name.
        const at = cycle.indexOf([...cycle].sort()[0]);
        const canonical = [...cycle.slice(at), ...cycle.slice(0, at)];
        const key = canonical.join("\n");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...canonical, canonical[0]]);
        }
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...edges.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

/** Files (repository paths) and what each imports: all imports, and those that are not type-only. */
export interface ImportGraph {
  edges: Map<string, string[]>;
  valueEdges: Map<string, string[]>;
}

/** The import graph of every `.ts` file under `dirs` of `root` (skipping `dist/` and `node_modules/`). */
export async function importGraph(root: string, dirs: string[]): Promise<ImportGraph> {
  const protocolEntries: Record<string, string> = JSON.parse(
    await Deno.readTextFile(`${root}protocol/deno.json`),
  ).exports;
  const edges = new Map<string, string[]>();
  const valueEdges = new Map<string, string[]>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(`${root}${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && entry.name !== "dist" && entry.name !== "node_modules") await walk(path);
      else if (entry.isFile && entry.name.endsWith(".ts")) {
        const refs = importsOf(await Deno.readTextFile(`${root}${path}`));
        const resolve = (ref: ImportRef) => resolveSpecifier(path, ref.specifier, protocolEntries);
        const all = refs.map(resolve).filter((p): p is string => p !== undefined);
        const values = refs.filter((r) => !r.typeOnly).map(resolve).filter((p): p is string =>
          p !== undefined
        );
        edges.set(path, [...new Set(all)]);
        valueEdges.set(path, [...new Set(values)]);
      }
    }
  };
  for (const dir of dirs) await walk(dir);
  return { edges, valueEdges };
}

function resolveSpecifier(
  from: string,
  specifier: string,
  protocol: Record<string, string>,
): string | undefined {
  const name = "@wasmnet/protocol";
  if (specifier === name || specifier.startsWith(`${name}/`)) {
    const file = protocol[`.${specifier.slice(name.length)}`];
    return file && `protocol/${file.slice(2)}`;
  }
  if (!specifier.startsWith(".")) return undefined;
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const cycles = findCycles((await importGraph(root, ["src", "client", "protocol", "bench"])).edges);
  for (const cycle of cycles) console.log(cycle.join(" -> "));
  console.log(cycles.length === 0 ? "no import cycles" : `${cycles.length} import cycle(s)`);
  Deno.exit(cycles.length === 0 ? 0 : 1);
}
