/**
 * The npm package as a user gets it: build, `npm pack`, install the tarball into a fresh npm project
 * (with `ws` as the project's own dev dependency, since Node 20 has no global WebSocket) and use it from
 * Node against the real server and real TCP peers on loopback. Also type-checks a TypeScript consumer
 * against the packed `.d.ts`.
 */

import { buildClient, buildClientWasi } from "../../client/build.ts";
import { Policy } from "../../mod.ts";
import { startServer, startTcpEchoServer } from "../helpers.ts";

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}
function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const CLIENT_DIR = new URL("../../client/", import.meta.url).pathname;
const WS_VERSION = "8.23.0";

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
  await client.disconnect();
  out[key] = result;
}
console.log(JSON.stringify(out));
`;

const TS_CONSUMER = `
import { WasmnetClient, WasmnetError, type WasmnetSocket } from "@aspect-run/wasmnet-client";
const client: WasmnetClient = new WasmnetClient("ws://127.0.0.1:1", { binary: true });
const socket: WasmnetSocket = client.openSocket("127.0.0.1", 1);
const id: Promise<number> = client.connect("h", 1);
const kind: WasmnetError["kind"] = "denied";
export { id, kind, socket };
`;

Deno.test("node: the packed npm tarball installs into a fresh project and works from Node", async () => {
  // Everything the package exports (`.`, `./wasi`, `./wasi_worker.js`), as `prepack` builds it.
  await Promise.all([buildClient(), buildClientWasi()]);
  const tmp = await Deno.makeTempDir({ prefix: "wasmnet-node-" });
  const server = await startServer(Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } }));
  const echo = startTcpEchoServer();
  try {
    // --ignore-scripts: the package was just built above; prepack would only build it again.
    const packed = JSON.parse(
      await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", tmp], CLIENT_DIR),
    );
    const tarball = `${tmp}/${packed[0].filename}`;
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path).sort();
    assertEquals(
      files,
      [
        "README.md",
        "dist/mod.d.ts",
        "dist/mod.js",
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
    await run("npm", ["install", "--no-audit", "--no-fund", "--save-dev", `ws@${WS_VERSION}`], project);
    const installed = JSON.parse(
      await Deno.readTextFile(`${project}/node_modules/@aspect-run/wasmnet-client/package.json`),
    );
    assertEquals(installed.dependencies, undefined, "runtime dependencies of the package");

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
    }

    // The .d.ts as a TypeScript user sees it, resolved through node_modules and package.json "exports".
    await Deno.writeTextFile(`${project}/consumer.ts`, TS_CONSUMER);
    await run(Deno.execPath(), ["check", "--quiet", "consumer.ts"], project);
  } finally {
    await echo.close();
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
