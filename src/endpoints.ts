/**
 * The endpoints the server serves besides wasmnet's own protocol (which answers at every other path).
 * Each front end adds itself here; order matters only if paths overlap.
 *
 * @module
 */

import type { Endpoint } from "./endpoint.ts";

/** Every extra endpoint, tried in order before the wasmnet protocol. */
export const EXTRA_ENDPOINTS: readonly Endpoint[] = [];
