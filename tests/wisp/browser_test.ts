/**
 * The wisp-js client from its browser bundle (`dist/wisp-client.mjs`, the browser's own WebSocket) in
 * headless Chromium against wasmnet's Wisp endpoint: TCP echo on v2 and v1, MOTD, and a policy refusal.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { DEV_LOCK_FLAG, startTcpEchoServer } from "../helpers.ts";
import { runInPage } from "../browser/harness.ts";
import { startWispServer } from "./servers.ts";
import { wispJsBrowserBundle } from "./wispjs_bundle.ts";

const PAGE = `
export default async ({ wispUrl, echoPort, blockedHost }) => {
  const { client } = await import("/wisp-client.mjs");
  const open = (version) => new Promise((resolve, reject) => {
    const conn = new client.ClientConnection(wispUrl, { wisp_version: version });
    conn.onopen = () => resolve(conn);
    conn.onclose = () => reject(new Error("closed before open (v" + version + ")"));
  });
  const echo = (conn, text) => new Promise((resolve, reject) => {
    const s = conn.create_stream("127.0.0.1", echoPort);
    let got = "";
    s.onmessage = (d) => {
      got += new TextDecoder().decode(d);
      if (got.length >= text.length) { s.close(); resolve(got); }
    };
    s.onclose = (reason) => reject(new Error("stream closed with 0x" + reason.toString(16)));
    s.send(new TextEncoder().encode(text));
  });
  const out = {};
  for (const version of [2, 1]) {
    const conn = await open(version);
    out["v" + version] = { version: conn.wisp_version, motd: conn.server_motd ?? null, echoed: await echo(conn, "hello from chromium v" + version) };
    out["v" + version].blocked = await new Promise((resolve) => {
      const s = conn.create_stream(blockedHost, 80);
      s.onclose = (reason) => resolve(reason);
    });
    conn.close();
  }
  return out;
};`;

Deno.test("browser: wisp-js browser bundle in headless Chromium does a TCP echo through wasmnet (v2 and v1)", async () => {
  const echo = startTcpEchoServer();
  const policy = Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["*"] } });
  const srv = await startWispServer(policy, { wisp: { motd: "hello browser" } });
  try {
    const { result, pageErrors } = await runInPage<
      Record<string, { version: number; motd: string | null; echoed: string; blocked: number }>
    >({
      files: { "/wisp-client.mjs": await wispJsBrowserBundle() },
      module: PAGE,
      args: { wispUrl: srv.wispUrl, echoPort: echo.port, blockedHost: "10.1.2.3" },
      timeoutMs: 60_000,
    });
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(result.v2, {
      version: 2,
      motd: "hello browser",
      echoed: "hello from chromium v2",
      blocked: 0x48,
    });
    assert.deepEqual(result.v1, { version: 1, motd: null, echoed: "hello from chromium v1", blocked: 0x48 });
  } finally {
    await srv.close();
    await echo.close();
  }
});

/** libcurl.js's single-file bundle (WASM inside) from Deno's npm cache, cached first if needed. */
async function libcurlBundle(): Promise<string> {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "null" }).output();
  await run(["cache", DEV_LOCK_FLAG, "npm:libcurl.js@0.7.4"]);
  const npmCache = JSON.parse(new TextDecoder().decode((await run(["info", "--json"])).stdout))
    .npmCache as string;
  const path = `${npmCache}/registry.npmjs.org/libcurl.js/0.7.4/libcurl_full.mjs`;
  await Deno.stat(path);
  return path;
}

Deno.test("browser: libcurl.js (libcurl compiled to WASM) fetches over wasmnet's Wisp in headless Chromium", async () => {
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => new Response(`hello ${new URL(req.url).pathname} via libcurl`, { headers: { "x-test": "1" } }),
  );
  const policy = Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["*"] } });
  const srv = await startWispServer(policy);
  try {
    const { result, pageErrors } = await runInPage<{ status: number; body: string; blocked: string }>({
      files: { "/libcurl_full.mjs": await libcurlBundle() },
      module: `
        export default async ({ wispUrl, httpUrl }) => {
          const { libcurl } = await import("/libcurl_full.mjs");
          await libcurl.load_wasm();
          libcurl.set_websocket(wispUrl);
          const res = await libcurl.fetch(httpUrl);
          let blocked = "";
          try { await libcurl.fetch("http://10.9.9.9/"); blocked = "fetched?!"; } catch (e) { blocked = String(e); }
          return { status: res.status, body: await res.text(), blocked };
        };`,
      args: { wispUrl: srv.wispUrl, httpUrl: `http://127.0.0.1:${http.addr.port}/page` },
      timeoutMs: 60_000,
    });
    assert.deepEqual(pageErrors, []);
    assert.equal(result.status, 200);
    assert.equal(result.body, "hello /page via libcurl");
    assert.notEqual(result.blocked, "fetched?!");
    const ops = srv.decisions.map((d) => `${d.op} ${d.target} ${d.decision}`);
    assert.ok(ops.includes(`wisp 127.0.0.1:${http.addr.port} allow`), ops.join("\n"));
    assert.ok(ops.includes("wisp 10.9.9.9:80 deny"), ops.join("\n"));
  } finally {
    await srv.close();
    await http.shutdown();
  }
});

/** epoxy-tls's bundled build (WASM inside; its Wisp client is the Rust wisp-mux), cached first if needed. */
async function epoxyBundle(): Promise<string> {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "null" }).output();
  await run(["cache", DEV_LOCK_FLAG, "npm:@mercuryworkshop/epoxy-tls@2.1.19-1"]);
  const npmCache = JSON.parse(new TextDecoder().decode((await run(["info", "--json"])).stdout))
    .npmCache as string;
  const path = `${npmCache}/registry.npmjs.org/@mercuryworkshop/epoxy-tls/2.1.19-1/full/epoxy-bundled.js`;
  await Deno.stat(path);
  return path;
}

Deno.test("browser: epoxy-tls (Rust wisp-mux client) fetches and does a TCP echo over wasmnet's Wisp v2", async () => {
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => new Response(`hello ${new URL(req.url).pathname} via epoxy`),
  );
  const echo = startTcpEchoServer();
  const versions: number[] = [];
  const srv = await startWispServer(Policy.allowAll(), {
    wisp: { motd: "epoxy", onSession: (s) => versions.push(s.version) },
  });
  try {
    const { result, pageErrors } = await runInPage<{ status: number; body: string; echoed: string }>({
      files: { "/epoxy.js": await epoxyBundle() },
      module: `
        export default async ({ wispUrl, httpUrl, echoUrl }) => {
          const { default: init, EpoxyClient, EpoxyClientOptions } = await import("/epoxy.js");
          await init();
          const options = new EpoxyClientOptions();
          options.wisp_v2 = true;
          options.user_agent = "wasmnet-test";
          const client = new EpoxyClient(wispUrl, options);
          const res = await client.fetch(httpUrl, {});
          const body = await res.text();
          const stream = await client.connect_tcp(echoUrl);
          const writer = stream.write.getWriter();
          await writer.write(new TextEncoder().encode("epoxy echo"));
          const reader = stream.read.getReader();
          let echoed = "";
          while (echoed.length < 10) {
            const { value, done } = await reader.read();
            if (done) break;
            echoed += new TextDecoder().decode(value);
          }
          return { status: res.status, body, echoed };
        };`,
      args: {
        wispUrl: srv.wispUrl,
        httpUrl: `http://127.0.0.1:${http.addr.port}/e`,
        echoUrl: `tcp://127.0.0.1:${echo.port}`,
      },
      timeoutMs: 60_000,
    });
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(result, { status: 200, body: "hello /e via epoxy", echoed: "epoxy echo" });
    assert.deepEqual(versions, [2], "epoxy offers a subprotocol, so it speaks v2 (INFO exchange)");
  } finally {
    await srv.close();
    await echo.close();
    await http.shutdown();
  }
});
