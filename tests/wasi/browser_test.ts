/**
 * The proof in a real browser: clang-built C programs (HTTP/1.1 client, echo server) run in headless
 * Chromium with their socket calls going through the bundled WASI bridge and client to the real wasmnet
 * server — once with JSPI on the page's thread, once in a Worker blocking with Atomics.
 */
import assert from "node:assert/strict";
import { buildClient, buildClientWasi } from "../../client/build.ts";
import { startServer } from "../helpers.ts";
import { runInPage } from "../browser/harness.ts";
import { buildExample } from "./build.ts";
import { startHttpServer } from "./peers.ts";

/** The page: runs one program in one mode; returns its exit code and output lines. */
const PAGE_MODULE = `
import { WasmnetClient } from "/wasmnet-client.js";
import { runWasix, runWasixInWorker, hasJspi } from "/wasi.js";

export default async ({ wsUrl, program, args, mode, dial }) => {
  const client = new WasmnetClient(wsUrl);
  await client.ready();
  const wasm = await (await fetch("/" + program + ".wasm")).arrayBuffer();
  const lines = [];
  const dials = [];
  const onLine = (line) => {
    lines.push(line);
    const m = /listening on port (\\d+)/.exec(line);
    if (m && dial) dials.push(globalThis.dialAndEcho(Number(m[1]), dial));
  };
  const options = { client, args: [program, ...args], stdout: onLine, stderr: onLine };
  const code = mode === "jspi"
    ? await runWasix(wasm, options)
    : await runWasixInWorker(wasm, { ...options, workerUrl: "/wasi_worker.js" });
  const echoed = await Promise.all(dials);
  await client.disconnect();
  return { code, lines, echoed, jspi: hasJspi(), isolated: globalThis.crossOriginIsolated };
};
`;

interface PageResult {
  code: number;
  lines: string[];
  echoed: string[];
  jspi: boolean;
  isolated: boolean;
}

/** Test side of the echo test: dials the program's listener over real TCP, returns what came back. */
async function dialAndEcho(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = new TextEncoder().encode(text);
    await conn.write(bytes);
    const buf = new Uint8Array(bytes.length);
    let n = 0;
    while (n < buf.length) {
      const r = await conn.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    conn.close();
  }
}

async function files() {
  const [client, bundles, http, echo] = await Promise.all([
    buildClient(),
    buildClientWasi(),
    buildExample("http_client"),
    buildExample("echo_server"),
  ]);
  return {
    "/wasmnet-client.js": client,
    "/wasi.js": bundles.wasi,
    "/wasi_worker.js": bundles.worker,
    "/http_client.wasm": http,
    "/echo_server.wasm": echo,
  };
}

for (const mode of ["jspi", "worker"] as const) {
  Deno.test(`wasix in Chromium (${mode}): C HTTP/1.1 client fetches a page from a loopback server`, async () => {
    const server = await startServer();
    const http = startHttpServer(`served to the browser via ${mode}\n`);
    try {
      const run = await runInPage<PageResult>({
        files: await files(),
        crossOriginIsolated: mode === "worker",
        module: PAGE_MODULE,
        args: {
          wsUrl: server.url,
          program: "http_client",
          args: ["127.0.0.1", String(http.port), `/${mode}`],
          mode,
        },
      });
      const out = run.result.lines.join("\n");
      assert.equal(run.result.code, 0, `${out}\n${run.pageErrors.join("\n")}`);
      assert.match(out, /^HTTP\/1\.1 200 OK/m);
      assert.match(out, new RegExp(`served to the browser via ${mode}`));
      assert.match(out, new RegExp(`path=/${mode}`));
      if (mode === "jspi") assert.equal(run.result.jspi, true);
      else assert.equal(run.result.isolated, true);
      assert.deepEqual(run.pageErrors, []);
    } finally {
      await http.close();
      await server.close();
    }
  });

  Deno.test(`wasix in Chromium (${mode}): C echo server answers a connection opened from outside`, async () => {
    const server = await startServer();
    try {
      const text = `hello ${mode} echo server\n`;
      const run = await runInPage<PageResult>({
        files: await files(),
        crossOriginIsolated: mode === "worker",
        module: PAGE_MODULE,
        args: { wsUrl: server.url, program: "echo_server", args: ["127.0.0.1", "0", "1"], mode, dial: text },
        expose: { dialAndEcho },
      });
      const out = run.result.lines.join("\n");
      assert.equal(run.result.code, 0, `${out}\n${run.pageErrors.join("\n")}`);
      assert.match(out, /listening on port \d+/);
      assert.match(out, /accepted 127\.0\.0\.1:\d+/);
      assert.deepEqual(run.result.echoed, [text]);
      assert.match(out, new RegExp(`echoed ${new TextEncoder().encode(text).length} bytes`));
    } finally {
      await server.close();
    }
  });
}

Deno.test("examples/wasi/index.html works as shipped (Worker mode, cross-origin isolated)", async () => {
  const server = await startServer();
  const http = startHttpServer("hello example page\n");
  try {
    const run = await runInPage<string>({
      files: await files(),
      crossOriginIsolated: true,
      html: await Deno.readTextFile(new URL("../../examples/wasi/index.html", import.meta.url)),
      module: `export default async ({ ws, port }) => {
        const f = document.getElementById("f");
        f.elements.ws.value = ws;
        f.elements.mode.value = "worker";
        f.elements.args.value = "127.0.0.1 " + port + " /example";
        f.requestSubmit();
        const out = document.getElementById("out");
        for (let i = 0; i < 400 && !out.textContent.includes("[exit"); i++) await new Promise((r) => setTimeout(r, 25));
        return out.textContent;
      };`,
      args: { ws: server.url, port: http.port },
    });
    assert.match(run.result, /hello example page\npath=\/example/);
    assert.match(run.result, /\[exit 0\]/);
  } finally {
    await http.close();
    await server.close();
  }
});
