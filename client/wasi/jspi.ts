/**
 * Runs a WASI/WASIX program on the current thread with JSPI: socket imports that must wait are wrapped in
 * `WebAssembly.Suspending` and `_start` in `WebAssembly.promising`, so the program is suspended (not the
 * page) until wasmnet answers. Needs a runtime with JSPI (Chromium 137+, Firefox 153+, Deno 2.x); nothing
 * of the page.
 *
 * @module
 */

import { ConsoleStdout, type Fd, File, OpenFile, WASI, WASIProcExit } from "./shim.ts";
import { type CoreClient, SocketCore, type SocketCoreOptions } from "./core.ts";
import { createWasixImports, localExecutor } from "./wasix.ts";

/** Options of {@link runWasix}. */
export interface RunWasixOptions extends SocketCoreOptions {
  /** The wasmnet client the program's sockets go through. */
  client: CoreClient;
  /** argv, program name first. Default `["program"]`. */
  args?: string[];
  /** Environment as `NAME=value` strings. */
  env?: string[];
  /** Each line the program writes to stdout. Default `console.log`. */
  stdout?: (line: string) => void;
  /** Each line the program writes to stderr. Default `console.error`. */
  stderr?: (line: string) => void;
  /** Extra fds after stdio (e.g. a `PreopenDirectory`). */
  fds?: Fd[];
  /** More import modules (merged over ours). */
  imports?: WebAssembly.Imports;
}

/** True when this runtime has JSPI (`WebAssembly.Suspending` and `WebAssembly.promising`). */
export function hasJspi(): boolean {
  const wa = WebAssembly as unknown as Record<string, unknown>;
  return typeof wa.Suspending === "function" && typeof wa.promising === "function";
}

/** Wraps the named functions of `fns` with `WebAssembly.Suspending`. */
export function suspending<T extends Record<string, unknown>>(fns: T, names: string[]): T {
  const Suspending = (WebAssembly as unknown as { Suspending: new (f: unknown) => unknown }).Suspending;
  const out: Record<string, unknown> = { ...fns };
  for (const name of names) out[name] = new Suspending(fns[name]);
  return out as T;
}

/**
 * Instantiates `wasm` (a WASI command using WASIX sockets) and runs `_start` with JSPI; resolves to the
 * exit code. Every socket the program left open is closed when it ends.
 */
export async function runWasix(
  wasm: BufferSource | WebAssembly.Module,
  options: RunWasixOptions,
): Promise<number> {
  if (!hasJspi()) throw new Error("wasmnet wasi: this runtime has no JSPI; use runWasixInWorker (worker.ts)");
  const core = new SocketCore(options.client, options);
  const wasi = new WASI(options.args ?? ["program"], options.env ?? [], [
    new OpenFile(new File([])),
    ConsoleStdout.lineBuffered(options.stdout ?? ((l) => console.log(l))),
    ConsoleStdout.lineBuffered(options.stderr ?? ((l) => console.error(l))),
    ...(options.fds ?? []),
  ], { debug: false }); // the shim logs every call unless told not to
  const built = createWasixImports({ wasi, exec: localExecutor(core) });
  const imports: WebAssembly.Imports = {
    wasi_snapshot_preview1: suspending(built.wasi_snapshot_preview1, built.asyncNames.wasi_snapshot_preview1),
    wasix_32v1: suspending(built.wasix_32v1, built.asyncNames.wasix_32v1),
    ...options.imports,
  };
  const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm);
  const instance = await WebAssembly.instantiate(module, imports);
  wasi.inst = instance as unknown as typeof wasi.inst;
  const promising =
    (WebAssembly as unknown as { promising: (f: unknown) => () => Promise<unknown> }).promising;
  const start = promising(instance.exports._start);
  try {
    await start();
    return 0;
  } catch (error) {
    if (error instanceof WASIProcExit) return error.code;
    throw error;
  } finally {
    core.closeAll();
  }
}
