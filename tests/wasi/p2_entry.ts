/**
 * Browser bundle entry for the WASI 0.2 test page: jco's browser shim (its `io` and `WASIShim`) next to
 * our `wasi:sockets` adapter, bundled together so the adapter's streams are the shim's own resources.
 *
 * @module
 */
export { io } from "@bytecodealliance/preview2-shim";
export { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";
export { createWasiSockets } from "../../client/wasi/sockets.ts";
