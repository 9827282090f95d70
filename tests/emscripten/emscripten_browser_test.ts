/**
 * Emscripten programs, unchanged, through wasmnet: C built during the test by Debian's emcc 3.1.6, run in
 * headless Chromium against the real server and TCP servers on loopback.
 *
 * - websockify mode: a default-SOCKFS program reaches an echo server through `/tcp/HOST:PORT` (URL set at
 *   link time with `-sWEBSOCKET_URL`), is refused (`ECONNREFUSED`) when the page points it at a denied
 *   target (`Module.websocket.url` at run time), and works the same against Debian's `websockify`.
 * - POSIX proxy: a blocking program (pthreads, cross-origin isolated page) does getaddrinfo, connect,
 *   send/recv (small and 200 kB), sees `EACCES` for a denied target, `ECONNREFUSED` for a closed port,
 *   `EAI_FAIL` for denied names, exchanges a UDP datagram (sendto/recvfrom), and serves one connection with
 *   bind/listen/accept.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { runInPage } from "../browser/harness.ts";
import { startServer, startTcpEchoServer } from "../helpers.ts";
import { emcc, FLAGS, requireEmcc } from "./build.ts";
import { startWebsockify } from "./reference.ts";

/** The page side: load an Emscripten program with `argv` and collect what it prints until `DONE`. */
const PAGE_MODULE = `
export default async (args) => {
  const lines = [];
  const done = new Promise((resolve) => {
    const onText = (text) => {
      lines.push(text);
      if (globalThis.onLine) globalThis.onLine(text);
      if (text === "DONE" || text.startsWith("usage")) resolve();
    };
    globalThis.Module = { arguments: args.argv, print: onText, printErr: (t) => lines.push("stderr: " + t) };
    if (args.websocketUrl) globalThis.Module.websocket = { url: args.websocketUrl };
    const script = document.createElement("script");
    script.src = args.script;
    document.body.appendChild(script);
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, args.timeoutMs))]);
  return { lines, isolated: globalThis.crossOriginIsolated };
};
`;

interface PageResult {
  lines: string[];
  isolated: boolean;
}

/** Runs one built program in a page; returns the lines it printed. */
async function runProgram(
  buildDir: string,
  script: string,
  argv: string[],
  options: { websocketUrl?: string; isolated?: boolean; onLine?: (line: string) => void } = {},
): Promise<PageResult & { console: string[] }> {
  const run = await runInPage<PageResult>({
    dirs: { "/build/": buildDir },
    crossOriginIsolated: options.isolated ?? false,
    html: "<!doctype html><meta charset=utf-8><title>emscripten via wasmnet</title><body></body>",
    module: PAGE_MODULE,
    args: { argv, script: `/build/${script}`, websocketUrl: options.websocketUrl, timeoutMs: 30_000 },
    expose: options.onLine ? { onLine: options.onLine as (...args: never[]) => unknown } : undefined,
    timeoutMs: 60_000,
  });
  if (Deno.env.get("WASMNET_DEBUG")) console.log(run.result.lines.join("\n"));
  return { ...run.result, console: run.console };
}

function line(lines: string[], prefix: string): string {
  const found = lines.find((l) => l.startsWith(prefix));
  assert.ok(found, `no line starting with "${prefix}" in:\n${lines.join("\n")}`);
  return found;
}

Deno.test("emscripten: a default-SOCKFS program through /tcp/HOST:PORT, denied, and against Debian's websockify", async () => {
  await requireEmcc();
  const echo = startTcpEchoServer();
  const denied = startTcpEchoServer();
  const policy = Policy.fromConfig({ network: { deny: [`127.0.0.1:${denied.port}`], allow: ["*"] } });
  const srv = await startServer(policy);
  const buildDir = await Deno.makeTempDir({ prefix: "wasmnet-emscripten-" });
  const reference = await startWebsockify(echo.port);
  try {
    const wsBase = `ws://127.0.0.1:${srv.port}/tcp/`;
    await emcc("sockfs_echo.c", buildDir, "sockfs_echo", [
      ...FLAGS.sockfs,
      `-sWEBSOCKET_URL=${wsBase}127.0.0.1:${echo.port}`,
    ]);
    const message = "hello from an unchanged sockfs build";

    // 1. The URL given at link time.
    const ok = await runProgram(buildDir, "sockfs_echo.js", ["127.0.0.1", String(echo.port), message]);
    assert.equal(line(ok.lines, "CONNECT "), "CONNECT ret=-1 inprogress=1");
    assert.equal(line(ok.lines, "ECHO "), `ECHO ${message}`);
    assert.ok(echo.accepted >= 1, "the echo server saw the connection");

    // 2. The same build pointed at a denied target by the page: refused before the upgrade.
    const refused = await runProgram(
      buildDir,
      "sockfs_echo.js",
      ["127.0.0.1", String(denied.port), message],
      {
        websocketUrl: `${wsBase}127.0.0.1:${denied.port}`,
      },
    );
    assert.match(line(refused.lines, "CONNECT_FAILED"), /is_ECONNREFUSED=1/);
    assert.equal(denied.accepted, 0, "a denied target is never dialled");
    assert.ok(
      srv.decisions.some((d) => d.op === "websockify" && d.decision === "deny"),
      "the denial is logged",
    );

    // 3. The same build against the reference websockify, for comparison.
    const ref = await runProgram(buildDir, "sockfs_echo.js", ["127.0.0.1", String(echo.port), message], {
      websocketUrl: `ws://127.0.0.1:${reference.port}/`,
    });
    assert.equal(line(ref.lines, "ECHO "), `ECHO ${message}`);
  } finally {
    await reference.stop();
    await srv.close();
    await echo.close();
    await denied.close();
    await Deno.remove(buildDir, { recursive: true });
  }
});

Deno.test("emscripten: a blocking PROXY_POSIX_SOCKETS program (connect, send/recv, getaddrinfo, UDP, accept) in Chromium", async () => {
  await requireEmcc();
  const echo = startTcpEchoServer();
  const denied = startTcpEchoServer();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusedPort = closed.addr.port;
  closed.close();
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const listenPort = probe.addr.port;
  probe.close();
  const policy = Policy.fromConfig({
    network: {
      deny: [`127.0.0.1:${denied.port}`, "blocked.test", "10.0.0.0/8"],
      allow: ["*"],
      bind_addrs: ["127.0.0.1"],
      bind_ports: "*",
    },
  });
  const names: Record<string, string[]> = { "echo.test": ["127.0.0.1"], "private.test": ["10.1.2.3"] };
  const dgram = (await import("node:dgram")).default;
  const udpEcho = dgram.createSocket("udp4");
  udpEcho.on(
    "message",
    (msg: Uint8Array, r: { port: number; address: string }) => udpEcho.send(msg, r.port, r.address),
  );
  await new Promise<void>((resolve) => udpEcho.bind(0, "127.0.0.1", () => resolve()));
  const udpPort = udpEcho.address().port;
  const srv = await startServer(policy, {
    resolver: (name) =>
      names[name] ? Promise.resolve(names[name]) : Promise.reject(new Error(`no such name ${name}`)),
  });
  const buildDir = await Deno.makeTempDir({ prefix: "wasmnet-emscripten-" });
  let served: Promise<string> | undefined;
  try {
    await emcc("posix_client.c", buildDir, "posix_client", FLAGS.posix);
    const argv = [
      `ws://127.0.0.1:${srv.port}/posix/`,
      "echo.test",
      String(echo.port),
      "127.0.0.1",
      String(denied.port),
      String(refusedPort),
      "blocked.test",
      "private.test",
      String(listenPort),
      String(udpPort),
    ];
    const run = await runProgram(buildDir, "posix_client.js", argv, {
      isolated: true,
      onLine: (text) => {
        if (text.startsWith("LISTENING")) served = talkTo(listenPort, "ping from deno");
      },
    });
    const lines = run.lines;
    assert.equal(run.isolated, true, "the page is cross-origin isolated (pthreads need it)");
    assert.equal(line(lines, "BRIDGE"), "BRIDGE ready=1");
    assert.equal(line(lines, "GAI "), `GAI ok 127.0.0.1 port=${echo.port}`);
    assert.match(line(lines, "CONNECT "), /^CONNECT ok fd=\d+$/);
    assert.equal(line(lines, "GETSOCKNAME "), "GETSOCKNAME ret=-1 is_EOPNOTSUPP=1");
    assert.equal(line(lines, "ECHO "), "ECHO sent=29 got=29 hello through the posix proxy");
    assert.equal(line(lines, "BIG "), "BIG sent=200000 got=200000 same=1");
    assert.match(line(lines, "DENIED "), /^DENIED ret=-1 errno=\d+ is_EACCES=1 Permission denied$/);
    assert.match(line(lines, "REFUSED "), /^REFUSED ret=-1 errno=\d+ is_ECONNREFUSED=1 Connection refused$/);
    assert.match(line(lines, "GAI_DENIED "), /is_EAI_FAIL=1/);
    assert.match(line(lines, "GAI_PRIVATE "), /is_EAI_FAIL=1/);
    assert.equal(line(lines, "UDP "), `UDP sent=27 got=27 from_port=${udpPort} udp through the posix proxy`);
    assert.equal(line(lines, "LISTENING"), `LISTENING bind=0 listen=0 port=${listenPort}`);
    assert.equal(line(lines, "SERVED "), "SERVED PING FROM DENO");
    assert.ok(served, "the test connected to the program's listener");
    assert.equal(await served, "PING FROM DENO");
    assert.equal(denied.accepted, 0, "a denied target is never dialled");
    const ops = srv.decisions.map((d) => `${d.op}:${d.decision}`);
    for (
      const expected of [
        "getaddrinfo:allow",
        "connect:allow",
        "connect:deny",
        "getaddrinfo:deny",
        "bind:allow",
        "send_to:allow",
      ]
    ) {
      assert.ok(ops.includes(expected), `decision log has ${expected}: ${ops.join(", ")}`);
    }
  } finally {
    await served?.catch(() => {});
    await new Promise<void>((resolve) => udpEcho.close(() => resolve()));
    await srv.close();
    await echo.close();
    await denied.close();
    await Deno.remove(buildDir, { recursive: true });
  }
});

/** Connects to the program's listener, sends `text`, returns everything it answers until it closes. */
async function talkTo(port: number, text: string): Promise<string> {
  let conn: Deno.TcpConn | undefined;
  for (let i = 0; i < 50 && !conn; i++) {
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (!conn) throw new Error(`could not connect to the program's listener on ${port}`);
  try {
    await conn.write(new TextEncoder().encode(text));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(1024);
    const timer = setTimeout(() => conn.close(), 10_000);
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) chunks.push(buf.slice(0, n));
    } finally {
      clearTimeout(timer);
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}
