/**
 * `./wasi` programs run unchanged over WebTransport: the clang-built C HTTP/1.1 client of tests/wasi, in
 * headless Chromium (JSPI), with its socket calls going through the WASI bridge and a client whose transport
 * is WebTransport, to `cli.ts --webtransport` (a subprocess with `--unstable-net`).
 */
import assert from "node:assert/strict";
import { buildClient, buildClientWasi } from "../../client/build.ts";
import { runInPage } from "../browser/harness.ts";
import { buildExample } from "../wasi/build.ts";
import { startHttpServer } from "../wasi/peers.ts";
import { makeWebTransportCert, spawnWebTransportServer } from "./helpers.ts";

const PAGE = `
import { WasmnetClient } from "/wasmnet-client.js";
import { runWasix } from "/wasi.js";

export default async ({ wsUrl, args }) => {
  const client = new WasmnetClient(wsUrl, { transport: "webtransport" });
  await client.ready();
  const wasm = await (await fetch("/http_client.wasm")).arrayBuffer();
  const lines = [];
  const code = await runWasix(wasm, { client, args: ["http_client", ...args], stdout: (l) => lines.push(l), stderr: (l) => lines.push(l) });
  const transport = client.transport;
  const stats = client.webTransportStats;
  await client.disconnect();
  return { code, lines, transport, streamsOpened: stats.streamsOpened };
};
`;

Deno.test("wasix in Chromium over WebTransport: the C HTTP client fetches a page, unchanged", async () => {
  const cert = await makeWebTransportCert();
  const server = await spawnWebTransportServer(cert, `[network]\ndeny = []\nallow = ["*"]\n`);
  const http = startHttpServer("served over webtransport\n");
  try {
    const [client, bundles, program] = await Promise.all([
      buildClient(),
      buildClientWasi(),
      buildExample("http_client"),
    ]);
    const run = await runInPage<{ code: number; lines: string[]; transport: string; streamsOpened: number }>({
      quic: true,
      files: { "/wasmnet-client.js": client, "/wasi.js": bundles.wasi, "/http_client.wasm": program },
      module: PAGE,
      args: { wsUrl: server.url, args: ["127.0.0.1", String(http.port), "/wt"] },
    });
    const out = run.result.lines.join("\n");
    assert.equal(run.result.code, 0, `${out}\n${run.pageErrors.join("\n")}`);
    assert.equal(run.result.transport, "webtransport");
    assert.equal(run.result.streamsOpened, 1, "the program's one TCP socket had a stream of its own");
    assert.match(out, /^HTTP\/1\.1 200 OK/m);
    assert.match(out, /served over webtransport/);
    assert.match(out, /path=\/wt/);
    assert.deepEqual(run.pageErrors, []);
  } finally {
    await http.close();
    await server.stop();
    await Deno.remove(cert.dir, { recursive: true });
  }
});
