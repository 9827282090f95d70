/**
 * The packages the allow-list {@link RUNTIME_NPM_PACKAGES} permits in the server's graph: those packages and
 * everything they depend on, transitively.
 *
 * @module
 */

import { type GraphNpmPackage, graphNpmPackages, RUNTIME_NPM_PACKAGES } from "../../tools/compile.ts";

export { graphNpmPackages };

/** Names of the allow-listed runtime packages and of everything they pull in, within `packages`. */
export function runtimeClosure(packages: Record<string, GraphNpmPackage>): Set<string> {
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
