/**
 * The one place the client names `@bjorn3/browser_wasi_shim` and its version. A full `npm:` specifier
 * rather than an import-map entry: `deno task` installs every import-map npm package of the workspace into
 * the server's `deno.lock`, which `deno compile` embeds (see README, "Single binary").
 *
 * @module
 */

export {
  ConsoleStdout,
  Fd,
  File,
  OpenFile,
  WASI,
  wasi,
  WASIProcExit,
} from "npm:@bjorn3/browser_wasi_shim@0.4.2";
