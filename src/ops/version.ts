/**
 * The server's version (from deno.json), for `wasmnet_build_info`, the status page and `--version`.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The version of this wasmnet server. */
export const SERVER_VERSION: string = denoJson.version;
