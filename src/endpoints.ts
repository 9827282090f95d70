/**
 * The endpoints the server serves besides wasmnet's own protocol (which answers at every other path).
 * Each front end adds itself here; order matters only if paths overlap.
 *
 * @module
 */

import type { Endpoint } from "./endpoint.ts";
import { WISP_ENDPOINT } from "./wisp/endpoint.ts";
import { posixProxyEndpoint } from "./emscripten/posix_proxy.ts";
import { websockifyEndpoint } from "./emscripten/websockify.ts";

/** Every extra endpoint, tried in order before the wasmnet protocol. */
export const EXTRA_ENDPOINTS: readonly Endpoint[] = [WISP_ENDPOINT, websockifyEndpoint, posixProxyEndpoint];
