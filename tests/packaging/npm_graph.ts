/**
 * The server's npm packages as `deno info --json` reports them (what `deno compile` embeds), and the
 * packages the allow-list {@link RUNTIME_NPM_PACKAGES} permits: those packages and everything they depend
 * on, transitively.
 *
 * @module
 */

import { RUNTIME_NPM_PACKAGES } from "../../tools/compile.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** One entry of `deno info --json`'s `npmPackages`. */
interface NpmPackage {
  name: string;
  dependencies: string[];
}

/**
 * `npmPackages` of `deno info --json ENTRY` at the repository root: as deno.json has it (no lockfile), or
 * against `lock` (e.g. the server's `deno.lock`, which `deno task compile` and `deno task start` use).
 */
export async function graphNpmPackages(entry: string, lock?: string): Promise<Record<string, NpmPackage>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ...(lock ? [`--lock=${ROOT}${lock}`] : []), entry],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno info ${entry}: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout)).npmPackages;
}

/** Names of the allow-listed runtime packages and of everything they pull in, within `packages`. */
export function runtimeClosure(packages: Record<string, NpmPackage>): Set<string> {
  const allowed = new Set<string>();
  const queue = Object.keys(packages).filter((k) => RUNTIME_NPM_PACKAGES.includes(packages[k].name));
  while (queue.length > 0) {
    const key = queue.pop()!;
    const pkg = packages[key];
    if (!pkg || allowed.has(pkg.name)) continue;
    allowed.add(pkg.name);
    queue.push(...pkg.dependencies);
  }
  return allowed;
}
