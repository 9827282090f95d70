/**
 * The Worker script of the Atomics fallback (`runWasixInWorker`): receives the compiled program, runs it
 * with `@bjorn3/browser_wasi_shim` and the WASIX imports, whose socket calls block in `Atomics.wait` until
 * the page's thread answers. Bundle it (the npm package ships it as `wasi_worker.js`) and pass its URL.
 *
 * @module
 */

import { ConsoleStdout, File, OpenFile, WASI, WASIProcExit } from "./shim.ts";
import { maxPayload, workerExecutor } from "./bridge.ts";
import { createWasixImports } from "./wasix.ts";
import type { WorkerEvent, WorkerStart } from "./worker.ts";

const post = (message: unknown) =>
  (self as unknown as { postMessage(m: unknown): void }).postMessage(message);
const send = (event: WorkerEvent) => post(event);

(self as unknown as { onmessage: (event: MessageEvent<WorkerStart>) => void }).onmessage = (event) => {
  const start = event.data;
  if (start?.kind !== "start") return;
  try {
    const wasi = new WASI(start.args, start.env, [
      new OpenFile(new File([])),
      ConsoleStdout.lineBuffered((line) => send({ kind: "stdout", line })),
      ConsoleStdout.lineBuffered((line) => send({ kind: "stderr", line })),
    ], { debug: false });
    const exec = workerExecutor(start.shared, post);
    const built = createWasixImports({ wasi, exec, maxTransfer: maxPayload(start.shared.byteLength) });
    const instance = new WebAssembly.Instance(start.module, {
      wasi_snapshot_preview1: built.wasi_snapshot_preview1,
      wasix_32v1: built.wasix_32v1,
    });
    let code = 0;
    try {
      wasi.inst = instance as unknown as typeof wasi.inst;
      (instance.exports._start as () => void)();
    } catch (error) {
      if (error instanceof WASIProcExit) code = error.code;
      else throw error;
    }
    send({ kind: "exit", code });
  } catch (error) {
    send({
      kind: "error",
      message: error instanceof Error ? `${error.message}\n${error.stack}` : String(error),
    });
  }
};
