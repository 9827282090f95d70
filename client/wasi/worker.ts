/**
 * The fallback for runtimes without JSPI: the WASI program runs in a Worker and blocks with
 * `Atomics.wait` while this thread (which owns the wasmnet client and the socket core) does the network
 * work. Needs `SharedArrayBuffer`, i.e. a cross-origin isolated page: serve it with
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` (or
 * `credentialless`).
 *
 * The worker script is `worker_main.ts` (bundled as `wasi_worker.js` in the npm package); pass its URL.
 *
 * @module
 */

import { answerCall, type BridgeCall, DEFAULT_BRIDGE_BYTES } from "./bridge.ts";
import { type CoreClient, SocketCore, type SocketCoreOptions } from "./core.ts";
import { localExecutor } from "./wasix.ts";

/** Options of {@link runWasixInWorker}. */
export interface RunInWorkerOptions extends SocketCoreOptions {
  /** The wasmnet client the program's sockets go through (it stays on this thread). */
  client: CoreClient;
  /** URL of the worker script (`wasi_worker.js` from the package, or `worker_main.ts` bundled). */
  workerUrl: string | URL;
  /** argv, program name first. */
  args?: string[];
  /** Environment as `NAME=value` strings. */
  env?: string[];
  /** Each line the program writes to stdout. Default `console.log`. */
  stdout?: (line: string) => void;
  /** Each line the program writes to stderr. Default `console.error`. */
  stderr?: (line: string) => void;
  /** Size of the shared buffer (bounds one read: about this many bytes). Default 1 MiB + 4 KiB. */
  bridgeBytes?: number;
}

/** Messages the worker sends besides bridge calls. */
export type WorkerEvent =
  | { kind: "stdout" | "stderr"; line: string }
  | { kind: "exit"; code: number }
  | { kind: "error"; message: string };

/** Messages this thread sends the worker to start the program. */
export interface WorkerStart {
  kind: "start";
  module: WebAssembly.Module;
  args: string[];
  env: string[];
  shared: SharedArrayBuffer;
}

/**
 * Runs `wasm` in a new Worker; resolves to the exit code once the program ends (the worker is then
 * terminated and every socket it left open closed). Rejects when the page is not cross-origin isolated.
 */
export async function runWasixInWorker(
  wasm: BufferSource | WebAssembly.Module,
  options: RunInWorkerOptions,
): Promise<number> {
  if (
    typeof SharedArrayBuffer === "undefined" ||
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false
  ) {
    throw new Error(
      "wasmnet wasi: the Worker fallback needs SharedArrayBuffer; serve the page with " +
        "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp",
    );
  }
  const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm);
  const core = new SocketCore(options.client, options);
  const exec = localExecutor(core);
  const shared = new SharedArrayBuffer(options.bridgeBytes ?? DEFAULT_BRIDGE_BYTES);
  const worker = new Worker(options.workerUrl, { type: "module" });
  const stdout = options.stdout ?? ((l: string) => console.log(l));
  const stderr = options.stderr ?? ((l: string) => console.error(l));
  try {
    return await new Promise<number>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<BridgeCall | WorkerEvent>) => {
        const m = event.data;
        if ("wasmnetCall" in m) {
          answerCall(shared, m, exec);
          return;
        }
        if (m.kind === "stdout") stdout(m.line);
        else if (m.kind === "stderr") stderr(m.line);
        else if (m.kind === "exit") resolve(m.code);
        else if (m.kind === "error") reject(new Error(`wasmnet wasi worker: ${m.message}`));
      };
      worker.onerror = (event) => {
        event.preventDefault?.();
        reject(new Error(`wasmnet wasi worker failed: ${event.message}`));
      };
      const start: WorkerStart = {
        kind: "start",
        module,
        args: options.args ?? ["program"],
        env: options.env ?? [],
        shared,
      };
      worker.postMessage(start);
    });
  } finally {
    worker.terminate();
    core.closeAll();
  }
}
