/**
 * The endpoints the server serves besides wasmnet's own protocol (which answers at every other path).
 * Each front end adds itself here; order matters only if paths overlap.
 *
 * @module
 */

import type { Endpoint } from "../frontends/endpoint.ts";
import { WISP_ENDPOINT } from "../frontends/wisp/endpoint.ts";
import { posixProxyEndpoint } from "../frontends/posix/posix_proxy.ts";
import { websockifyEndpoint } from "../frontends/websockify/websockify.ts";

/** Every extra endpoint, tried in order before the wasmnet protocol. */
export const EXTRA_ENDPOINTS: readonly Endpoint[] = [WISP_ENDPOINT, websockifyEndpoint, posixProxyEndpoint];
