/**
 * The npm bundle of the client in headless Chromium against the real server and real TCP peers on
 * loopback: the README's snippet as written, then denial, binary framing, accept, and 8 MiB of streams.
 */

import { buildClient } from "../../client/build.ts";
import { Policy } from "../../mod.ts";
import { startServer, startTcpEchoServer, type TestServer } from "../helpers.ts";
import { runInPage } from "./harness.ts";

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}
function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** The READMEs whose browser snippet must work as written: the project's and the client package's. */
const READMES = ["README.md", "client/README.md"];

/** A README's browser snippet, pointed at this test's loopback peers (the only edits: URL, hosts, ports). */
async function readmeSnippet(readmePath: string, wsUrl: string, echoPort: number): Promise<string> {
  const readme = await Deno.readTextFile(new URL(`../../${readmePath}`, import.meta.url));
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
    .find((code) => code.includes("client.onAccept("));
  assert(block, `${readmePath} has no js block with the browser snippet`);
  const replacements: [string, string][] = [
    [`"@aspect-run/wasmnet-client"`, `"/wasmnet-client.js"`], // what an import map or bundler would do
    [`"ws://localhost:9000"`, JSON.stringify(wsUrl)],
    [`"api.example.com", 443`, `"127.0.0.1", ${echoPort}`],
    [`"0.0.0.0", 3000`, `"127.0.0.1", 0`],
  ];
  let code = block;
  for (const [from, to] of replacements) {
    assert(code.includes(from), `the README snippet no longer contains ${from}`);
    code = code.replace(from, to);
  }
  return code;
}

/** A test-side helper the page calls: dial the page's listener over real TCP and return what echoes back. */
async function dialAndEcho(port: number, text: string): Promise<{ echoed: string; localPort: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = new TextEncoder().encode(text);
    await conn.write(bytes);
    const buf = new Uint8Array(bytes.length);
    let n = 0;
    const deadline = setTimeout(() => conn.close(), 10_000);
    try {
      while (n < buf.length) {
        const r = await conn.read(buf.subarray(n));
        if (r === null) break;
        n += r;
      }
    } finally {
      clearTimeout(deadline);
    }
    return {
      echoed: new TextDecoder().decode(buf.subarray(0, n)),
      localPort: (conn.localAddr as Deno.NetAddr).port,
    };
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the deadline
    }
  }
}

/** Runs `fn` with a fresh build, a server denying 127.0.0.2 and an echo peer, and stops them after. */
async function withServers(fn: (server: TestServer, echoPort: number, bundle: string) => Promise<void>) {
  const bundle = await buildClient();
  const server = await startServer(Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } }));
  const echo = startTcpEchoServer();
  try {
    await fn(server, echo.port, bundle);
  } finally {
    await echo.close();
    await server.close();
  }
}

for (const readmePath of READMES) {
  Deno.test(`browser: the ${readmePath} snippet works as written in headless Chromium`, async () => {
    await withServers(async (server, echoPort, bundle) => {
      const snippet = await readmeSnippet(readmePath, server.url, echoPort);
      const module = `
const logged = [];
const log = console.log;
console.log = (...args) => { logged.push(args); log(...args); };
${snippet}
export default async () => {
  const decoder = new TextDecoder();
  const text = () => logged.filter((a) => a[0] === "received:").map((a) => decoder.decode(a[1])).join("");
  for (let i = 0; i < 500 && text().length < 41; i++) await new Promise((r) => setTimeout(r, 10));
  const inbound = await globalThis.dialAndEcho(listener.port, "hello from a real TCP peer");
  const result = {
    received: text(),
    receivedTypes: logged.filter((a) => a[0] === "received:").map((a) => Object.prototype.toString.call(a[1])),
    id: typeof id,
    listener: { id: typeof listener.id, port: listener.port },
    inbound,
  };
  await client.disconnect();
  return result;
};`;
      const { result, consoleErrors, pageErrors } = await runInPage<{
        received: string;
        receivedTypes: string[];
        id: string;
        listener: { id: string; port: number };
        inbound: { echoed: string; localPort: number };
      }>({
        files: { "/wasmnet-client.js": bundle },
        module,
        expose: { dialAndEcho },
      });
      assertEquals(result.received, "GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n", "outbound echo");
      assert(
        result.receivedTypes.every((t) => t === "[object Uint8Array]"),
        `data types: ${result.receivedTypes}`,
      );
      assertEquals(result.id, "number", "connect() result");
      assertEquals(result.listener.id, "number", "listener id");
      assert(result.listener.port > 0, `listener port ${result.listener.port}`);
      assertEquals(result.inbound.echoed, "hello from a real TCP peer", "inbound echo");
      assertEquals(pageErrors, [], "page errors");
      assertEquals(consoleErrors, [], "console errors");
    });
  });
}

const FEATURES_MODULE = `
import { WasmnetClient, WasmnetError } from "/wasmnet-client.js";

const collect = (client, id, n) => new Promise((resolve, reject) => {
  const chunks = [];
  let got = 0;
  const timer = setTimeout(() => reject(new Error("only " + got + " of " + n + " bytes")), 10000);
  client.onData(id, (data) => {
    chunks.push(data);
    got += data.length;
    if (got >= n) {
      clearTimeout(timer);
      const out = new Uint8Array(got);
      let o = 0;
      for (const c of chunks) { out.set(c, o); o += c.length; }
      resolve(out);
    }
  });
});

const pattern = (n) => (n * 31 + (n >> 11)) & 0xff;

async function streams(url, echoPort, size, binary) {
  const client = new WasmnetClient(url, { binary });
  const started = performance.now();
  try {
    const socket = client.openSocket("127.0.0.1", echoPort);
    const { readable, writable } = await socket.opened;
    const writing = (async () => {
      const writer = writable.getWriter();
      const chunkSize = 64 * 1024;
      for (let off = 0; off < size; off += chunkSize) {
        const chunk = new Uint8Array(chunkSize);
        for (let i = 0; i < chunkSize; i++) chunk[i] = pattern(off + i);
        await writer.ready;
        await writer.write(chunk);
      }
      await writer.close();
    })();
    let got = 0, bad = -1;
    const reader = readable.getReader();
    while (got < size) {
      const { value, done } = await reader.read();
      if (done) break;
      for (let i = 0; i < value.length && bad < 0; i++) if (value[i] !== pattern(got + i)) bad = got + i;
      got += value.length;
    }
    await reader.cancel();
    await writing;
    await socket.closed;
    return { got, bad, ms: Math.round(performance.now() - started) };
  } finally {
    await client.disconnect();
  }
}

export default async ({ url, echoPort, deadPort }) => {
  const out = {};

  // ready() rejects with a reason when nothing listens.
  const dead = new WasmnetClient("ws://127.0.0.1:" + deadPort + "/");
  try {
    await dead.ready();
    out.unreachable = "resolved";
  } catch (e) {
    out.unreachable = { isWasmnetError: e instanceof WasmnetError, kind: e.kind, mentionsUrl: e.message.includes(String(deadPort)) };
  }

  const client = new WasmnetClient(url);
  await client.ready();

  // A policy denial, told apart from a failure.
  try {
    await client.connect("127.0.0.2", echoPort);
    out.denied = "connected";
  } catch (e) {
    out.denied = { isWasmnetError: e instanceof WasmnetError, kind: e.kind, code: e.code, message: e.message };
  }
  const refused = new Promise((r) => { const s = client.openSocket("127.0.0.2", echoPort); s.opened.catch((e) => r(e.kind)); });
  out.deniedStream = await refused;

  // Binary framing: every byte value there and back, and an inbound connection through a bound port.
  const bin = new WasmnetClient(url, { binary: true });
  await bin.ready();
  const id = await bin.connect("127.0.0.1", echoPort);
  const bytes = new Uint8Array(4096).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
  const echoed = collect(bin, id, bytes.length);
  bin.send(id, bytes.buffer);
  const back = await echoed;
  out.binaryEcho = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
  const listener = await bin.bind("127.0.0.1", 0);
  const remotes = [];
  bin.onAccept(listener.id, (connId, remote) => {
    remotes.push(remote);
    bin.onData(connId, (data) => bin.send(connId, data));
  });
  out.binaryInbound = await globalThis.dialAndEcho(listener.port, "binary inbound");
  out.binaryRemotes = remotes;
  const closes = [];
  bin.onClose(id, (e) => closes.push(e ? e.kind : "clean"));
  await bin.close(id);
  await bin.disconnect();
  out.binaryCloses = closes;

  // Pending promises reject when the WebSocket goes away.
  const pending = client.connect("127.0.0.1", echoPort).then(() => "resolved", (e) => e.kind);
  await client.disconnect();
  out.pendingOnDisconnect = await pending;

  // Streams: 8 MiB through an echo peer, in both framings.
  out.streamsJson = await streams(url, echoPort, 8 << 20, false);
  out.streamsBinary = await streams(url, echoPort, 8 << 20, true);
  return out;
};
`;

Deno.test("browser: denial, binary framing, inbound accept and 8 MiB of streams in headless Chromium", async () => {
  await withServers(async (server, echoPort, bundle) => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadPort = probe.addr.port;
    probe.close();
    // deno-lint-ignore no-explicit-any
    const { result, consoleErrors, pageErrors } = await runInPage<any>({
      files: { "/wasmnet-client.js": bundle },
      module: FEATURES_MODULE,
      args: { url: server.url, echoPort, deadPort },
      expose: { dialAndEcho },
      timeoutMs: 120_000,
    });
    console.log(
      `8 MiB through streams: JSON ${result.streamsJson.ms} ms, binary ${result.streamsBinary.ms} ms`,
    );
    assertEquals(
      result.unreachable,
      { isWasmnetError: true, kind: "disconnected", mentionsUrl: true },
      "unreachable",
    );
    assertEquals(result.denied.isWasmnetError, true, "denied is a WasmnetError");
    assertEquals(result.denied.kind, "denied", "denied kind");
    assertEquals(result.denied.code, "POLICY_DENIED", "denied code");
    assert(/denied/.test(result.denied.message), `denied message: ${result.denied.message}`);
    assertEquals(result.deniedStream, "denied", "denied stream socket");
    assertEquals(result.binaryEcho, true, "binary echo of all byte values");
    assertEquals(result.binaryInbound.echoed, "binary inbound", "binary inbound echo");
    assertEquals(result.binaryRemotes, [`127.0.0.1:${result.binaryInbound.localPort}`], "accepted remote");
    assertEquals(result.binaryCloses, ["clean"], "close callback");
    assertEquals(result.pendingOnDisconnect, "disconnected", "pending connect on disconnect");
    for (const key of ["streamsJson", "streamsBinary"]) {
      assertEquals(result[key].bad, -1, `${key}: first wrong byte`);
      assertEquals(result[key].got, 8 << 20, `${key}: bytes`);
    }
    assertEquals(pageErrors, [], "page errors");
    // The one expected console error: Chromium reports the refused WebSocket to the dead port.
    const unexpected = consoleErrors.filter((e) => !e.includes(`127.0.0.1:${deadPort}`));
    assertEquals(unexpected, [], "console errors");
  });
});
