/**
 * Browser bundle entry for the WASI 0.2 test page: jco's browser shim (its `io` and `WASIShim`) next to
 * our `wasi:sockets` adapter, bundled together so the adapter's streams are the shim's own resources.
 *
 * @module
 */
export { io } from "npm:@bytecodealliance/preview2-shim@0.26.1";
export { WASIShim } from "npm:@bytecodealliance/preview2-shim@0.26.1/instantiation";
export { createWasiSockets } from "../../client/wasi/sockets.ts";
