/**
 * The npm package as a user gets it: `npm pack` with scripts on (its `prepack` builds `dist/` with Deno from
 * the npm registry, with no `deno` on PATH), the tarball installed into a fresh npm project (with `ws` as
 * the project's own dev dependency, since Node 20 has no global WebSocket), used from Node against the real
 * server and real TCP peers on loopback; a TypeScript consumer of both entries type-checked strictly by
 * TypeScript 5 and 7 (no skipLibCheck, DOM lib, `nodenext` and `bundler` resolution), and bundled by esbuild
 * for a Chromium page that talks through the server.
 */

import { Policy } from "../../mod.ts";
import { startServer, startTcpEchoServer } from "../helpers.ts";
import { runInPage } from "../browser/harness.ts";

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}
function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const CLIENT_DIR = new URL("../../client/", import.meta.url).pathname;
const WS_VERSION = "8.23.0";
/** The consumer's tool versions: TypeScript 5 and 7 (the native compiler, npm `typescript@7`), esbuild. */
const TOOLS = { ts5: "typescript@5.9.3", ts7: "typescript@7.0.2", esbuild: "esbuild@0.28.2" };

/** Runs a command to completion (killed after `ms`), returning stdout; throws with its output on failure. */
async function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}, ms = 180_000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    const { code, stdout, stderr } = await new Deno.Command(cmd, {
      args,
      cwd,
      env: { NO_COLOR: "1", npm_config_fund: "false", npm_config_audit: "false", ...env },
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const out = new TextDecoder().decode(stdout);
    if (code !== 0) {
      throw new Error(
        `${cmd} ${args.join(" ")} exited ${code}:\n${out}\n${new TextDecoder().decode(stderr)}`,
      );
    }
    return out;
  } finally {
    clearTimeout(timer);
  }
}

const NODE_SCRIPT = `
import net from "node:net";
import { WebSocket } from "ws";
import { WasmnetClient, WasmnetError } from "@aspect-run/wasmnet-client";

const url = process.env.WASMNET_URL;
const echoPort = Number(process.env.ECHO_PORT);
const out = { node: process.version, globalWebSocket: typeof globalThis.WebSocket };

try {
  new WasmnetClient(url);
  out.withoutConstructor = "constructed";
} catch (e) {
  out.withoutConstructor = e instanceof TypeError ? "TypeError" : String(e);
}

const collect = (client, id, n) => new Promise((resolve, reject) => {
  let text = "";
  const timer = setTimeout(() => reject(new Error("timeout, got " + JSON.stringify(text))), 10000);
  client.onData(id, (data) => {
    text += new TextDecoder().decode(data);
    if (text.length >= n) { clearTimeout(timer); resolve(text); }
  });
});

for (const binary of [false, true]) {
  const key = binary ? "binary" : "json";
  const client = new WasmnetClient(url, { WebSocket, binary });
  await client.ready();
  const id = await client.connect("127.0.0.1", echoPort);
  const echoed = collect(client, id, 10);
  client.send(id, "hello node");
  const result = { echo: await echoed };

  const listener = await client.bind("127.0.0.1", 0);
  client.onAccept(listener.id, (connId) => client.onData(connId, (data) => client.send(connId, data)));
  result.inbound = await new Promise((resolve, reject) => {
    const sock = net.connect(listener.port, "127.0.0.1", () => sock.write("inbound"));
    let got = "";
    sock.on("data", (d) => { got += d; if (got.length >= 7) { sock.end(); resolve(got); } });
    sock.on("error", reject);
  });

  try {
    await client.connect("127.0.0.2", echoPort);
    result.denied = "connected";
  } catch (e) {
    result.denied = e instanceof WasmnetError ? e.kind : String(e);
  }

  const socket = client.openSocket("127.0.0.1", echoPort);
  const { readable, writable } = await socket.opened;
  const size = 1 << 20;
  const writer = writable.getWriter();
  const writing = writer.write(new Uint8Array(size).fill(binary ? 3 : 5)).then(() => writer.close());
  let got = 0, good = true;
  for await (const chunk of readable) {
    good &&= chunk.every((b) => b === (binary ? 3 : 5));
    got += chunk.length;
    if (got >= size) break;
  }
  await writing;
  await socket.closed;
  result.streams = { got, good };

  // Back-to-back sends of distinct chunks through the ws package (whose send may keep the buffer it was
  // given): each must arrive as it was when sent, so no frame buffer may be reused under it.
  const burstId = client.connectNow("127.0.0.1", echoPort);
  const chunks = Array.from({ length: 32 }, (_, i) => new Uint8Array(1000 + i * 997).fill(i + 1));
  const total = chunks.reduce((a, c) => a + c.length, 0);
  const back = new Uint8Array(total);
  let at = 0;
  const burst = new Promise((resolve) => client.onData(burstId, (d) => {
    back.set(d, at);
    at += d.length;
    if (at >= total) resolve();
  }));
  for (const c of chunks) client.send(burstId, c);
  await burst;
  let off = 0, intact = true;
  for (const c of chunks) {
    intact &&= back.subarray(off, off + c.length).every((b) => b === c[0]);
    off += c.length;
  }
  result.burst = intact;
  await client.disconnect();
  out[key] = result;
}
console.log(JSON.stringify(out));
`;

const TS_CONSUMER = `
import { WasmnetClient, WasmnetError, type WasmnetSocket, type WebSocketConstructor } from "@aspect-run/wasmnet-client";
import { createWasixImports, hasJspi, runWasix, SocketCore, type RunWasixOptions } from "@aspect-run/wasmnet-client/wasi";
// The DOM's WebSocket, passed as the README says.
const client: WasmnetClient = new WasmnetClient("ws://127.0.0.1:1", { binary: true, WebSocket });
const ctor: WebSocketConstructor = WebSocket;
const socket: WasmnetSocket = client.openSocket("127.0.0.1", 1);
const id: Promise<number> = client.connect("h", 1);
const kind: WasmnetError["kind"] = "denied";
const options: RunWasixOptions = { client, args: ["prog"] };
const run: Promise<number> = runWasix(new ArrayBuffer(8), options);
export { createWasixImports, ctor, hasJspi, id, kind, run, socket, SocketCore };
`;

/** A page script bundled by esbuild from the installed package: one echo through the server. */
const BROWSER_ENTRY = `
import { WasmnetClient } from "@aspect-run/wasmnet-client";
import { hasJspi } from "@aspect-run/wasmnet-client/wasi";
export default async ({ url, port }) => {
  const client = new WasmnetClient(url, { binary: true });
  await client.ready();
  const id = await client.connect("127.0.0.1", port);
  const echoed = new Promise((resolve) => client.onData(id, (d) => resolve(new TextDecoder().decode(d))));
  client.send(id, "hello chromium");
  const result = { echo: await echoed, jspi: typeof hasJspi() };
  await client.disconnect();
  return result;
};
`;

/** PATH without any directory holding a `deno` executable: the README's set-up has none. */
async function pathWithoutDeno(): Promise<string> {
  const dirs: string[] = [];
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    const hasDeno = await Deno.stat(`${dir}/deno`).then(() => true, () => false);
    if (!hasDeno) dirs.push(dir);
  }
  return dirs.join(":");
}

Deno.test("node: the packed npm tarball installs into a fresh project and works from Node, tsc 5/7, esbuild, Chromium", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "wasmnet-node-" });
  const server = await startServer(Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } }));
  const echo = startTcpEchoServer();
  try {
    // Scripts on: prepack builds dist/ (`npx -y deno@…`), and must do so without a deno on PATH.
    const PATH = await pathWithoutDeno();
    const packOut = await run(
      "npm",
      ["pack", "--json", "--pack-destination", tmp],
      CLIENT_DIR,
      { PATH },
      600_000,
    );
    // Lifecycle output shares stdout with npm's JSON; the JSON is the last top-level array.
    const packed = JSON.parse(packOut.slice(packOut.lastIndexOf("\n[\n") + 1));
    const tarball = `${tmp}/${packed[0].filename}`;
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path).sort();
    assertEquals(
      files,
      [
        "LICENSE",
        "README.md",
        "dist/mod.d.ts",
        "dist/mod.js",
        "dist/shim/LICENSE-MIT",
        "dist/shim/debug.d.ts",
        "dist/shim/fd.d.ts",
        "dist/shim/fs_mem.d.ts",
        "dist/shim/fs_opfs.d.ts",
        "dist/shim/index.d.ts",
        "dist/shim/strace.d.ts",
        "dist/shim/wasi.d.ts",
        "dist/shim/wasi_defs.d.ts",
        "dist/wasi.d.ts",
        "dist/wasi.js",
        "dist/wasi_worker.js",
        "package.json",
      ],
      "packed files",
    );

    const project = `${tmp}/project`;
    await Deno.mkdir(project);
    await Deno.writeTextFile(
      `${project}/package.json`,
      JSON.stringify({ name: "wasmnet-node-test", private: true, type: "module" }),
    );
    await run("npm", ["install", "--no-audit", "--no-fund", tarball], project);
    await run(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--save-dev",
        `ws@${WS_VERSION}`,
        `ts5@npm:${TOOLS.ts5}`,
        `ts7@npm:${TOOLS.ts7}`,
        TOOLS.esbuild,
      ],
      project,
      {},
      600_000,
    );
    const installed = JSON.parse(
      await Deno.readTextFile(`${project}/node_modules/@aspect-run/wasmnet-client/package.json`),
    );
    assertEquals(installed.dependencies, undefined, "runtime dependencies of the package");
    // dist/wasi.js inlines the WASI shim and dist/shim/ carries its types: nothing for the user to add.
    assertEquals(installed.peerDependencies, undefined, "peer dependencies of the package");
    const wasiJs = await Deno.readTextFile(`${project}/node_modules/@aspect-run/wasmnet-client/dist/wasi.js`);
    assert(!/^\s*import\s/m.test(wasiJs) && wasiJs.includes("fd_prestat_get"), "wasi.js inlines the shim");

    await Deno.writeTextFile(`${project}/test.mjs`, NODE_SCRIPT);
    const stdout = await run("node", ["test.mjs"], project, {
      WASMNET_URL: server.url,
      ECHO_PORT: String(echo.port),
    }, 60_000);
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert(out.node.startsWith("v"), `node version ${out.node}`);
    if (out.globalWebSocket === "undefined") {
      assertEquals(out.withoutConstructor, "TypeError", "no WebSocket anywhere");
    }
    for (const key of ["json", "binary"]) {
      assertEquals(out[key].echo, "hello node", `${key}: outbound echo`);
      assertEquals(out[key].inbound, "inbound", `${key}: inbound echo`);
      assertEquals(out[key].denied, "denied", `${key}: policy denial`);
      assertEquals(out[key].streams, { got: 1 << 20, good: true }, `${key}: streams`);
      assertEquals(out[key].burst, true, `${key}: back-to-back sends intact through ws`);
    }
    // Both entries import in Node.
    const entries = await run("node", [
      "--input-type=module",
      "-e",
      `const m = await import("@aspect-run/wasmnet-client"); const w = await import("@aspect-run/wasmnet-client/wasi");
       console.log(JSON.stringify([typeof m.WasmnetClient, typeof w.runWasix, typeof w.createWasiSockets]));`,
    ], project);
    assertEquals(JSON.parse(entries.trim()), ["function", "function", "function"], "exports of . and ./wasi");

    // The .d.ts as a TypeScript user sees it, resolved through node_modules and package.json "exports".
    await Deno.writeTextFile(`${project}/consumer.ts`, TS_CONSUMER);
    for (const [moduleResolution, module] of [["nodenext", "nodenext"], ["bundler", "esnext"]]) {
      const tsconfig = `tsconfig.${moduleResolution}.json`;
      await Deno.writeTextFile(
        `${project}/${tsconfig}`,
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: "es2022",
            lib: ["dom", "es2023"],
            module,
            moduleResolution,
            types: [],
          },
          files: ["consumer.ts"],
        }),
      );
      for (const ts of ["ts5", "ts7"]) {
        const version = await run("node", [`node_modules/${ts}/bin/tsc`, "--version"], project);
        assert(version.includes(ts === "ts5" ? "Version 5." : "Version 7."), `${ts}: ${version}`);
        await run("node", [`node_modules/${ts}/bin/tsc`, "-p", tsconfig], project);
      }
    }
    await run(Deno.execPath(), ["check", "--quiet", "consumer.ts"], project);

    // esbuild bundles it for the browser, and the bundle works in Chromium through the server.
    await Deno.writeTextFile(`${project}/page.mjs`, BROWSER_ENTRY);
    await run(`${project}/node_modules/.bin/esbuild`, [
      "page.mjs",
      "--bundle",
      "--platform=browser",
      "--format=esm",
      "--outfile=page.bundle.js",
    ], project);
    const { result, pageErrors } = await runInPage<{ echo: string; jspi: string }>({
      files: { "/page.bundle.js": `${project}/page.bundle.js` },
      module: `export { default } from "/page.bundle.js";`,
      args: { url: server.url, port: echo.port },
    });
    assertEquals(pageErrors, [], "page errors");
    assertEquals(result, { echo: "hello chromium", jspi: "boolean" }, "the esbuild bundle in Chromium");
  } finally {
    await echo.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
