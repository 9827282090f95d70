/**
 * WASI 0.2 `wasi:sockets` in headless Chromium: our adapter plugged into jco's browser shim through
 * `new WASIShim({ sockets })`, driven through the exact call sequence a wasip2 program makes (what Rust's
 * std and wasi-libc do on wasip2): create socket, start/finish connect around a pollable block, blocking
 * write-and-flush, read until closed; bind/listen/accept for a server; name lookup through the server.
 * Blocking calls return promises here, which is what `jco transpile --async-mode jspi` suspends on.
 */
import assert from "node:assert/strict";
import { buildClient, bundle } from "../../client/build.ts";
import { startServer } from "../helpers.ts";
import { runInPage } from "../browser/harness.ts";
import { startHttpServer } from "./peers.ts";
import { buildP2Component } from "./component.ts";
import { startUdpPeer } from "../network_helpers.ts";

const OUT = new URL("./.build/", import.meta.url).pathname;

async function bundleP2(): Promise<string> {
  await Deno.mkdir(OUT, { recursive: true });
  return await bundle(new URL("./p2_entry.ts", import.meta.url).pathname, `${OUT}p2.js`);
}

const PAGE = `
import { WasmnetClient } from "/wasmnet-client.js";
import { io, WASIShim, createWasiSockets } from "/p2.js";

const V = "@0.2.3";
const errOf = (fn) => { try { fn(); return "ok"; } catch (e) { return typeof e === "string" ? e : (e && e.tag) || String(e); } };
async function block(p) { await p.block(); p[Symbol.dispose](); }

export default async ({ wsUrl, httpPort, text, udpPort }) => {
  const client = new WasmnetClient(wsUrl);
  await client.ready();
  const sockets = createWasiSockets({ client, io });
  const imports = new WASIShim({ sockets }).getImportObject({ asVersion: "0.2.3" });
  const { instanceNetwork } = imports["wasi:sockets/instance-network" + V];
  const { createTcpSocket } = imports["wasi:sockets/tcp-create-socket" + V];
  const { resolveAddresses } = imports["wasi:sockets/ip-name-lookup" + V];
  const { TcpSocket } = imports["wasi:sockets/tcp" + V];
  const { InputStream, OutputStream } = imports["wasi:io/streams" + V];
  const { Pollable } = imports["wasi:io/poll" + V];
  const out = { states: {} };
  const network = instanceNetwork();

  // --- name lookup (resolve-addresses, subscribe, block, resolve-next-address until none) ---
  const lookup = resolveAddresses(network, "localhost");
  out.states.lookupBeforeBlock = errOf(() => lookup.resolveNextAddress());
  await block(lookup.subscribe());
  out.resolved = [];
  for (let a; (a = lookup.resolveNextAddress()) !== undefined;) out.resolved.push(a);

  // --- client: the wasip2 connect sequence ---
  const sock = createTcpSocket("ipv4");
  out.isTcpSocket = sock instanceof TcpSocket;
  out.states.finishBeforeStart = errOf(() => sock.finishConnect());
  out.states.remoteBeforeConnect = errOf(() => sock.remoteAddress());
  sock.startConnect(network, { tag: "ipv4", val: { port: httpPort, address: [127, 0, 0, 1] } });
  out.states.startTwice = errOf(() => sock.startConnect(network, { tag: "ipv4", val: { port: httpPort, address: [127, 0, 0, 1] } }));
  out.states.finishEarly = errOf(() => sock.finishConnect());
  let streams;
  for (;;) {
    const p = sock.subscribe();
    out.pollableIsShims = p instanceof Pollable;
    await block(p);
    try { streams = sock.finishConnect(); break; } catch (e) { if (e !== "would-block") throw e; }
  }
  const [input, output] = streams;
  out.streamsAreShims = input instanceof InputStream && output instanceof OutputStream;
  out.remote = sock.remoteAddress();
  const req = new TextEncoder().encode("GET /p2 HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n");
  await output.blockingWriteAndFlush(req);
  let body = "";
  for (;;) {
    try { body += new TextDecoder().decode(await input.blockingRead(65536n)); }
    catch (e) { out.readEnd = e.tag; break; }
  }
  out.body = body;
  input[Symbol.dispose](); output[Symbol.dispose](); sock[Symbol.dispose]();

  // --- refused connection: finish-connect reports the error code ---
  const bad = createTcpSocket("ipv4");
  bad.startConnect(network, { tag: "ipv4", val: { port: 1, address: [127, 0, 0, 1] } });
  await block(bad.subscribe());
  out.refused = errOf(() => bad.finishConnect());
  bad[Symbol.dispose]();

  // --- server: bind, listen, accept, echo ---
  const ls = createTcpSocket("ipv4");
  out.states.listenUnbound = errOf(() => ls.startListen());
  ls.startBind(network, { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
  ls.finishBind();
  ls.startListen();
  await block(ls.subscribe());
  ls.finishListen();
  out.listening = ls.isListening();
  const port = ls.localAddress().val.port;
  out.states.acceptEmpty = errOf(() => ls.accept());
  const dialed = globalThis.dialAndEcho(port, text);
  await block(ls.subscribe());
  const [conn, cin, cout] = ls.accept();
  out.acceptedRemote = conn.remoteAddress().val.address;
  let echoed = 0;
  for (;;) {
    let chunk;
    try { chunk = await cin.blockingRead(4096n); } catch (e) { out.echoEnd = e.tag; break; }
    if (chunk.length) { await cout.blockingWriteAndFlush(chunk); echoed += chunk.length; }
  }
  out.echoedBytes = echoed;
  out.dialed = await dialed;
  cin[Symbol.dispose](); cout[Symbol.dispose](); conn[Symbol.dispose](); ls[Symbol.dispose]();

  // --- UDP: bind, stream(remote), send, block on the incoming pollable, receive ---
  const { createUdpSocket } = imports["wasi:sockets/udp-create-socket" + V];
  const udp = createUdpSocket("ipv4");
  out.states.udpStreamUnbound = errOf(() => udp.stream(undefined));
  udp.startBind(network, { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
  udp.finishBind();
  const [din, dout] = udp.stream({ tag: "ipv4", val: { port: udpPort, address: [127, 0, 0, 1] } });
  out.udpPermit = String(dout.checkSend());
  out.udpSent = String(dout.send([{ data: new TextEncoder().encode("datagram one") }, { data: new TextEncoder().encode("two") }]));
  const got = [];
  while (got.length < 2) {
    await block(din.subscribe());
    for (const d of din.receive(10n)) got.push(new TextDecoder().decode(d.data) + "@" + d.remoteAddress.val.port);
  }
  out.udpGot = got;
  out.udpLocalPort = udp.localAddress().val.port;
  din[Symbol.dispose](); dout[Symbol.dispose](); udp[Symbol.dispose]();
  await client.disconnect();
  return out;
};
`;

async function dialAndEcho(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = new TextEncoder().encode(text);
  await conn.write(bytes);
  const buf = new Uint8Array(bytes.length);
  let n = 0;
  while (n < buf.length) {
    const r = await conn.read(buf.subarray(n));
    if (r === null) break;
    n += r;
  }
  conn.close();
  return new TextDecoder().decode(buf.subarray(0, n));
}

Deno.test("wasi:sockets (WASI 0.2) in Chromium through jco's WASIShim: connect, read, listen, accept, lookup, UDP", async () => {
  const server = await startServer();
  const http = startHttpServer("hello wasi 0.2\n");
  const udp = await startUdpPeer(true);
  try {
    const text = "echo through wasi:sockets\n";
    const [client, p2] = await Promise.all([buildClient(), bundleP2()]);
    const run = await runInPage<Record<string, unknown> & { states: Record<string, string> }>({
      files: { "/wasmnet-client.js": client, "/p2.js": p2 },
      module: PAGE,
      args: { wsUrl: server.url, httpPort: http.port, text, udpPort: udp.port },
      expose: { dialAndEcho },
    });
    const r = run.result;
    assert.deepEqual(run.pageErrors, []);
    assert.deepEqual(r.states, {
      lookupBeforeBlock: "would-block",
      finishBeforeStart: "not-in-progress",
      remoteBeforeConnect: "invalid-state",
      startTwice: "invalid-state",
      finishEarly: "would-block",
      listenUnbound: "invalid-state",
      acceptEmpty: "would-block",
      udpStreamUnbound: "invalid-state",
    });
    assert.ok(
      (r.resolved as { tag: string; val: number[] }[]).some((a) =>
        a.tag === "ipv4" && a.val.join(".") === "127.0.0.1"
      ),
      JSON.stringify(r.resolved),
    );
    assert.equal(r.isTcpSocket, true);
    assert.equal(r.pollableIsShims, true);
    assert.equal(r.streamsAreShims, true);
    assert.deepEqual(r.remote, { tag: "ipv4", val: { port: http.port, address: [127, 0, 0, 1] } });
    assert.match(r.body as string, /^HTTP\/1\.1 200 OK/);
    assert.match(r.body as string, /hello wasi 0\.2\npath=\/p2/);
    assert.equal(r.readEnd, "closed");
    assert.equal(r.refused, "connection-refused");
    assert.equal(r.listening, true);
    assert.deepEqual(r.acceptedRemote, [127, 0, 0, 1]);
    assert.equal(r.dialed, text);
    assert.equal(r.echoedBytes, new TextEncoder().encode(text).length);
    assert.equal(r.echoEnd, "closed");
    assert.equal(r.udpPermit, "64");
    assert.equal(r.udpSent, "2");
    assert.deepEqual(r.udpGot, [`datagram one@${udp.port}`, `two@${udp.port}`]);
    assert.ok((r.udpLocalPort as number) > 0);
    assert.deepEqual(udp.received.map((d) => new TextDecoder().decode(d.data)), ["datagram one", "two"]);
  } finally {
    await udp.close();
    await http.close();
    await server.close();
  }
});

const COMPONENT_PAGE = `
import { WasmnetClient } from "/wasmnet-client.js";
import { io, WASIShim, createWasiSockets } from "/p2.js";
import { instantiate } from "/component/component.js";

export default async ({ wsUrl, httpPort }) => {
  const client = new WasmnetClient(wsUrl);
  await client.ready();
  const shim = new WASIShim({ sockets: createWasiSockets({ client, io }) });
  const component = await instantiate(undefined, shim.getImportObject());
  const request = new TextEncoder().encode("GET /component HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n");
  const response = await component.fetch(httpPort, request);
  await client.disconnect();
  return { response: new TextDecoder().decode(response) };
};
`;

Deno.test("wasi:sockets: a wasip2 component (WAT + jco component new, transpiled with --async-mode jspi) fetches a page in Chromium", async () => {
  const server = await startServer();
  const http = startHttpServer("hello from a transpiled component\n");
  try {
    const [client, p2, dir] = await Promise.all([buildClient(), bundleP2(), buildP2Component()]);
    const run = await runInPage<{ response: string }>({
      files: { "/wasmnet-client.js": client, "/p2.js": p2 },
      dirs: { "/component/": dir },
      module: COMPONENT_PAGE,
      args: { wsUrl: server.url, httpPort: http.port },
    });
    assert.deepEqual(run.pageErrors, []);
    assert.match(run.result.response, /^HTTP\/1\.1 200 OK/);
    assert.match(run.result.response, /hello from a transpiled component\npath=\/component/);
  } finally {
    await http.close();
    await server.close();
  }
});
