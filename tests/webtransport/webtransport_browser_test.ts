/**
 * The wasmnet protocol over WebTransport from a real page: Debian's Chromium (QUIC on) against `cli.ts`
 * started with `--unstable-net --webtransport PORT` and a self-signed certificate Chromium accepts by hash.
 * TCP echo, 1 MiB in order, 200 sockets opened and closed one after another on one session (past the
 * runtime's 100-stream trap: this fails if the client's stream reuse is removed), half-close, UDP echo over
 * datagrams, a policy refusal, a bad token, origins (a ticket admits the page's origin, no ticket is 403),
 * and `auto` falling back to the WebSocket when the advertised WebTransport port is closed.
 */

import { buildClient } from "../../client/build.ts";
import { importHs256Key, signHs256 } from "../../src/auth/mod.ts";
import { Policy } from "../../src/policy/mod.ts";
import { Server } from "../../src/server.ts";
import { silentLog } from "../../src/core/log.ts";
import { startEofCountingPeer, startTcpEchoServer } from "../helpers.ts";
import { startUdpPeer } from "../network_helpers.ts";
import { runInPage } from "../browser/harness.ts";
import { freeUdpPort, makeWebTransportCert, spawnWebTransportServer } from "./helpers.ts";

function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** Holds a free TCP port until `release()` (so the servers started meanwhile cannot take it). */
function reserveTcpPort(): { port: number; release(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let open = true;
  return { port: listener.addr.port, release: () => open && (open = false, listener.close()) };
}

function assert(ok: unknown, what: string): void {
  if (!ok) throw new Error(what);
}

const PAGE = `
import { WasmnetClient } from "/wasmnet-client.js";

const text = (bytes) => new TextDecoder().decode(bytes);
const within = (ms, what, promise) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(what + " timed out")), ms)),
]);

async function readExactly(reader, n) {
  const chunks = [];
  let got = 0;
  while (got < n) {
    const { value, done } = await within(20000, "read", reader.read());
    if (done) break;
    chunks.push(value);
    got += value.length;
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) (out.set(c, at), at += c.length);
  return out;
}

async function echoOnce(client, port, message) {
  const id = await within(10000, "connect", client.connect("127.0.0.1", port));
  const got = new Promise((resolve) => client.onData(id, (d) => resolve(text(d))));
  client.send(id, message);
  const answer = await within(10000, "echo " + message, got);
  await client.close(id);
  return answer;
}

/** Opens a raw session to \`wtUrl\` and returns the server's answer to the hello (length-prefixed JSON). */
async function rawHello(wtUrl, hash) {
  const wt = new WebTransport(wtUrl, { serverCertificateHashes: [{ algorithm: "sha-256", value: Uint8Array.from(atob(hash), (c) => c.charCodeAt(0)) }] });
  await wt.ready;
  const s = await wt.createBidirectionalStream();
  const hello = new TextEncoder().encode(JSON.stringify({ wasmnet: 1, v2: false }));
  const framed = new Uint8Array(4 + hello.length);
  new DataView(framed.buffer).setUint32(0, hello.length);
  framed.set(hello, 4);
  const w = s.writable.getWriter();
  await w.write(framed);
  const r = s.readable.getReader();
  let buf = new Uint8Array(0);
  while (buf.length < 4 || buf.length < 4 + new DataView(buf.buffer).getUint32(0)) {
    const { value, done } = await within(10000, "hello answer", r.read());
    if (done) break;
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
  }
  wt.close();
  return JSON.parse(new TextDecoder().decode(buf.subarray(4, 4 + new DataView(buf.buffer).getUint32(0))));
}

export default async ({ url, badUrl, fallbackUrl, originUrl, originWtUrl, hash, echoPort, eofPort, udpPort }) => {
  const out = {};
  // Origins limited: the page's origin gets a ticket at the well-known URL and its session is admitted;
  // a session without a ticket is refused with 403 before it exists.
  const allowed = new WasmnetClient(originUrl, { transport: "webtransport" });
  await within(15000, "origin ready", allowed.ready());
  out.originEcho = await echoOnce(allowed, echoPort, "origin checked");
  await allowed.disconnect();
  out.noTicket = await rawHello(originWtUrl, hash);

  const client = new WasmnetClient(url, { transport: "webtransport", flowControl: true });
  await within(15000, "ready", client.ready());
  out.transport = client.transport;

  // TCP echo.
  out.echo = await echoOnce(client, echoPort, "hello over webtransport");

  // 1 MiB through one stream socket, read back in order.
  const socket = client.openSocket("127.0.0.1", echoPort);
  const { readable, writable } = await within(10000, "open", socket.opened);
  const big = new Uint8Array(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
  const writer = writable.getWriter();
  const writing = (async () => { for (let o = 0; o < big.length; o += 50000) await writer.write(big.subarray(o, o + 50000)); })();
  const back = await readExactly(readable.getReader(), big.length);
  await writing;
  let same = back.length === big.length;
  for (let i = 0; same && i < big.length; i++) if (back[i] !== big[i]) same = false;
  out.mib = { length: back.length, inOrder: same };
  writer.releaseLock();
  await socket.close();

  // 200 sockets opened and closed one after another on this one session.
  let ok = 0;
  for (let i = 0; i < 200; i++) if ((await echoOnce(client, echoPort, "n" + i)) === "n" + i) ok++;
  out.many = { ok, ...client.webTransportStats };

  // Half-close: the peer reads end-of-stream after our bytes, answers, and closes.
  const half = await client.connect("127.0.0.1", eofPort);
  const halfData = [];
  const halfClosed = new Promise((resolve) => client.onClose(half, (e) => resolve(e ? e.kind : "clean")));
  client.onData(half, (d) => halfData.push(text(d)));
  client.send(half, "x".repeat(3000));
  out.shutdownSent = client.shutdown(half);
  out.halfClose = await within(10000, "half-close", halfClosed);
  out.halfAnswer = halfData.join("");

  // UDP echo: small datagrams go (and come back) as WebTransport datagrams.
  const before = { ...client.webTransportStats };
  const udp = await client.connectUdp("127.0.0.1", udpPort);
  const datagrams = [];
  client.onData(udp.id, (d) => datagrams.push(text(d)));
  for (const d of ["one", "two two", "three three three"]) client.send(udp.id, d);
  for (let i = 0; i < 500 && datagrams.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  out.udp = datagrams.sort();
  const after = client.webTransportStats;
  out.udpDatagrams = { sent: after.datagramsSent - before.datagramsSent, received: after.datagramsReceived - before.datagramsReceived };
  await client.close(udp.id);

  // A policy refusal: same event and code as on the WebSocket.
  out.denied = await client.connect("10.1.2.3", 80).then(() => "connected", (e) => ({ kind: e.kind, code: e.code }));
  await client.disconnect();

  // A bad token: refused before any session, with the HTTP status it would have had.
  const bad = new WasmnetClient(badUrl, { transport: "webtransport" });
  out.badToken = await within(15000, "bad token", bad.ready().then(() => "open", (e) => ({ kind: e.kind, msg: e.message })));

  // auto: WebTransport is advertised but its port is closed: the WebSocket is used, within the bound.
  const started = performance.now();
  const auto = new WasmnetClient(fallbackUrl, { transport: "auto", webTransportTimeoutMs: 2000 });
  await within(15000, "auto ready", auto.ready());
  out.autoTransport = auto.transport;
  out.autoWithinBound = performance.now() - started < 8000;
  out.autoEcho = await echoOnce(auto, echoPort, "fallback echo");
  await auto.disconnect();
  return out;
};
`;

Deno.test({
  name:
    "WebTransport from Chromium: echo, 1 MiB, 200 sockets, half-close, UDP datagrams, refusals, auto fallback",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const clientJs = await buildClient();
    const cert = await makeWebTransportCert();
    const secret = crypto.getRandomValues(new Uint8Array(32)).toHex();
    await Deno.writeTextFile(`${cert.dir}/secret`, secret);
    const key = await importHs256Key(new TextEncoder().encode(secret));
    const token = await signHs256({ exp: Math.floor(Date.now() / 1000) + 600 }, key);
    const page = reserveTcpPort();
    const pagePort = page.port;
    // This one makes its own certificate at start-up (no --webtransport-cert): Chromium takes it by its hash.
    const originServer = await spawnWebTransportServer(
      "generated",
      `[network]\ndeny = []\nallow = ["*"]\n[server]\nallowed_origins = ["http://127.0.0.1:${pagePort}"]\n`,
    );
    const server = await spawnWebTransportServer(
      cert,
      `[network]
deny = ["10.0.0.0/8"]
allow = ["*"]
bind_ports = "*"
[auth]
required = true
secret_file = "${cert.dir}/secret"
`,
      ["--admin", "127.0.0.1:0"], // a free port, printed after the WebTransport line
      /admin listening on http:\/\/127\.0\.0\.1:\d+/,
    );
    const adminPort = Number(/admin listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(server.banner)![1]);
    const echo = startTcpEchoServer();
    const eof = startEofCountingPeer();
    const udp = await startUdpPeer();
    // The fallback server: the WebSocket works, the advertised WebTransport port has nothing on it.
    const wsOnly = new Server({
      hostname: "127.0.0.1",
      port: 0,
      policy: Policy.fromConfig({ network: { deny: [], allow: ["*"] } }),
      log: silentLog,
    });
    const closedPort = await freeUdpPort();
    const fallbackHttp = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) =>
        new URL(req.url).pathname === "/.well-known/wasmnet"
          ? Response.json(
            {
              webtransport: {
                url: `https://127.0.0.1:${closedPort}/`,
                certificateHashes: [{ algorithm: "sha-256", value: cert.hash }],
              },
            },
            { headers: { "access-control-allow-origin": "*" } },
          )
          : wsOnly.handler(req, info),
    );
    try {
      const wk = await fetch(`http://127.0.0.1:${server.port}/.well-known/wasmnet`).then((r) => r.json());
      assertEquals(wk.webtransport.url, `https://127.0.0.1:${server.wtPort}/`, "advertised URL");
      assertEquals(
        wk.webtransport.certificateHashes,
        [{ algorithm: "sha-256", value: cert.hash }],
        "advertised hash",
      );
      page.release();
      // deno-lint-ignore no-explicit-any
      const { result } = await runInPage<any>({
        quic: true,
        port: pagePort,
        files: { "/wasmnet-client.js": clientJs },
        module: PAGE,
        timeoutMs: 240_000,
        args: {
          url: `${server.url}?token=${token}`,
          badUrl: `${server.url}?token=not-a-token`,
          fallbackUrl: `ws://127.0.0.1:${fallbackHttp.addr.port}/`,
          originUrl: originServer.url,
          originWtUrl: `https://127.0.0.1:${originServer.wtPort}/`,
          hash: originServer.hash,
          echoPort: echo.port,
          eofPort: eof.port,
          udpPort: udp.port,
        },
      });
      assertEquals(result.originEcho, "origin checked", "allowed origin, with its ticket");
      assertEquals(result.noTicket.ok, false, "no ticket: refused");
      assertEquals(result.noTicket.status, 403, "no ticket: 403");
      assertEquals(result.transport, "webtransport", "transport");
      assertEquals(result.echo, "hello over webtransport", "TCP echo");
      assertEquals(result.mib, { length: 1 << 20, inOrder: true }, "1 MiB in order");
      assertEquals(result.many.ok, 200, "200 sockets on one session");
      // Sequential sockets reuse one stream (the workaround for denoland/deno#36822): few streams opened.
      assert(result.many.streamsOpened <= 3, `streams reused (opened ${result.many.streamsOpened})`);
      assertEquals(result.shutdownSent, true, "shutdown sent (v2)");
      assertEquals([result.halfClose, result.halfAnswer], ["clean", "got 3000"], "half-close");
      assertEquals(result.udp, ["one", "three three three", "two two"], "UDP echo");
      assertEquals(result.udpDatagrams, { sent: 3, received: 3 }, "UDP as datagrams both ways");
      assertEquals(result.denied, { kind: "denied", code: "POLICY_DENIED" }, "policy refusal");
      assertEquals(result.badToken.kind, "disconnected", "bad token refused");
      assert(/401/.test(result.badToken.msg), `bad token: the status says 401 (${result.badToken.msg})`);
      assertEquals(result.autoTransport, "websocket", "auto fell back");
      assertEquals(result.autoWithinBound, true, "auto fell back within its bound");
      assertEquals(result.autoEcho, "fallback echo", "echo over the fallback");
      // The same metrics as the WebSocket: sessions counted under their front end, refusals by kind.
      const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text());
      const opened = /wasmnet_sessions_total\{[^}]*frontend="webtransport"[^}]*\} (\d+)/.exec(metrics);
      assert(
        opened && Number(opened[1]) >= 1,
        `webtransport sessions in /metrics:\n${metrics.slice(0, 2000)}`,
      );
      assert(
        /wasmnet_refusals_total\{reason="token"\} [1-9]/.test(metrics),
        "the bad token counted as a refusal",
      );
    } finally {
      page.release();
      await fallbackHttp.shutdown();
      await Promise.all([echo.close(), eof.close(), udp.close()]);
      await server.stop();
      await originServer.stop();
      await Deno.remove(cert.dir, { recursive: true });
    }
  },
});
