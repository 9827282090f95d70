/**
 * The wisp-js client from its browser bundle (`dist/wisp-client.mjs`, the browser's own WebSocket) in
 * headless Chromium against wasmnet's Wisp endpoint: TCP echo on v2 and v1, MOTD, and a policy refusal.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { startTcpEchoServer } from "../helpers.ts";
import { runInPage } from "../browser/harness.ts";
import { startWispServer } from "./servers.ts";

/** Where Deno keeps the wisp-js package (its npm cache, or a node_modules directory if the repo uses one). */
async function wispJsBrowserBundle(): Promise<string> {
  const local =
    new URL("../../node_modules/@mercuryworkshop/wisp-js/dist/wisp-client.mjs", import.meta.url).pathname;
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const npmCache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache as string;
  const cached = `${npmCache}/registry.npmjs.org/@mercuryworkshop/wisp-js/0.5.0/dist/wisp-client.mjs`;
  for (const path of [local, cached]) {
    try {
      await Deno.stat(path);
      return path;
    } catch {
      // try the next place
    }
  }
  throw new Error(
    `wisp-js 0.5.0 browser bundle not found (looked at ${local} and ${cached}); run deno install`,
  );
}

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
