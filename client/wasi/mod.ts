/**
 * `@wasmnet/client/wasi`: WASM programs' own socket calls reach the network through wasmnet, in the
 * browser. One socket core over a {@link WasmnetClient}, two ABIs on top:
 * - WASIX (`wasix_32v1` sockets + preview 1 `sock_*`, beside `@bjorn3/browser_wasi_shim`):
 *   {@link runWasix} (JSPI) or {@link runWasixInWorker} (Worker + Atomics), or {@link createWasixImports}
 *   to wire your own instance;
 * - WASI 0.2 `wasi:sockets` for jco-transpiled components: {@link createWasiSockets}.
 *
 * ```ts
 * import { WasmnetClient } from "@wasmnet/client";
 * import { runWasix } from "@wasmnet/client/wasi";
 * const client = new WasmnetClient("wss://relay.example.com");
 * await client.ready();
 * const code = await runWasix(await (await fetch("http_client.wasm")).arrayBuffer(), {
 *   client,
 *   args: ["http_client", "93.184.215.14", "80", "/"],
 * });
 * ```
 *
 * @module
 */

export {
  type CoreClient,
  type PollInterest,
  type PollReady,
  SocketCore,
  type SocketCoreOptions,
} from "./core.ts";
export { Errno, errnoFor } from "./errno.ts";
export {
  ADDR_PORT_SIZE,
  AddressFamily,
  formatIp,
  parseIp,
  readAddrPort,
  type SocketAddress,
  writeAddrPort,
} from "./addr.ts";
export {
  type CoreOp,
  createWasixImports,
  drive,
  type Executor,
  localExecutor,
  SocketFd,
  SockOption,
  type WasixImportOptions,
  type WasixImports,
} from "./wasix.ts";
export { hasJspi, runWasix, type RunWasixOptions, suspending } from "./jspi.ts";
export { type RunInWorkerOptions, runWasixInWorker } from "./worker.ts";
export {
  createWasiSockets,
  errorCodeFor,
  type IoShim,
  type IpAddress,
  type IpSocketAddress,
  type WasiSockets,
  type WasiSocketsOptions,
} from "./sockets.ts";
