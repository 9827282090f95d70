/**
 * UDP, DNS and TLS from a real page: the npm bundle of the client in headless Chromium resolves a name,
 * exchanges datagrams with a UDP echo server on loopback (callbacks and datagram streams), and fetches
 * over `connect_tls` (callbacks and streams) from a local TLS server whose certificate is signed by a CA
 * the test makes (and trusted through the policy's `[tls]`).
 */

import { buildClient } from "../../client/build.ts";
import { Policy } from "../../src/policy/mod.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { startServer } from "../helpers.ts";
import { makeTestPki, startTlsServer, startUdpPeer } from "../network_helpers.ts";
import { runInPage } from "./harness.ts";

function assertEquals<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const PAGE = `
import { WasmnetClient, WasmnetError } from "/wasmnet-client.js";

const text = (bytes) => new TextDecoder().decode(bytes);
const within = (ms, what, promise) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(what + " timed out")), ms)),
]);

async function run(url, binary, { udpPort, otherPort, tlsPort, badTlsPort }) {
  const out = {};
  const client = new WasmnetClient(url, { binary });
  await client.ready();
  try {
    // DNS: the answer is what the policy allows; a blocked-only name is denied.
    out.resolved = await client.resolve("echo.test");
    out.resolvedBlocked = await client.resolve("inside.test").then(() => "resolved", (e) => ({ kind: e.kind, code: e.code }));

    // UDP: datagrams to the echo server come back one for one; send_to answers come with their source.
    const udp = await client.connectUdp(out.resolved[0], udpPort);
    out.udpPort = udp.port;
    const datagrams = [];
    const froms = [];
    client.onData(udp.id, (d) => datagrams.push(text(d)));
    client.onDataFrom(udp.id, (d, addr, port) => froms.push({ data: text(d), addr, port }));
    for (const d of ["one", "two two", "three three three"]) client.send(udp.id, d);
    client.sendTo(udp.id, "127.0.0.1", otherPort, "to the other one");
    for (let i = 0; i < 500 && (datagrams.length < 3 || froms.length < 1); i++) await new Promise((r) => setTimeout(r, 10));
    out.datagrams = datagrams.sort();
    out.froms = froms;
    await client.close(udp.id);

    // The stream form: one chunk is one datagram, with its source.
    const dsock = client.openDatagramSocket("echo.test", udpPort);
    const { readable: dgrams, writable: dgramOut } = await dsock.opened;
    const dw = dgramOut.getWriter();
    await dw.write("streamed datagram");
    await dw.write({ data: "streamed elsewhere", remoteAddress: "127.0.0.1", remotePort: otherPort });
    const dr = dgrams.getReader();
    const streamed = [];
    while (streamed.length < 2) {
      const { value } = await within(10000, "datagram stream", dr.read());
      streamed.push({ data: text(value.data), addr: value.remoteAddress, port: value.remotePort });
    }
    out.streamedDatagrams = streamed.sort((a, b) => a.data.localeCompare(b.data));
    dr.releaseLock();
    dw.releaseLock();
    await dsock.close();

    // TLS: the server does the handshake (name checked against the test CA); the page sees plaintext.
    const id = await client.connectTls("tls.test", tlsPort);
    const chunks = [];
    const closed = new Promise((resolve) => client.onClose(id, (e) => resolve(e ? e.kind : "clean")));
    client.onData(id, (d) => chunks.push(text(d)));
    client.send(id, "GET / HTTP/1.0\\r\\nHost: tls.test\\r\\n\\r\\n");
    out.tlsClose = await within(10000, "TLS response", closed);
    out.tlsResponse = chunks.join("");

    // The stream form of TLS.
    const socket = client.openSocket("tls.test", tlsPort, { tls: true });
    const { readable, writable } = await socket.opened;
    const writer = writable.getWriter();
    await writer.write(new TextEncoder().encode("GET /stream HTTP/1.0\\r\\n\\r\\n"));
    let body = "";
    for await (const chunk of readable) body += text(chunk);
    out.tlsStream = body;

    // A certificate for another name is refused by the server: the page gets an error, never plaintext.
    out.badCert = await client.connectTls("tls.test", badTlsPort).then(
      () => "connected",
      (e) => ({ isWasmnetError: e instanceof WasmnetError, kind: e.kind, code: e.code }),
    );
  } finally {
    await client.disconnect();
  }
  return out;
}

export default async ({ url, ports }) => ({
  json: await run(url, false, ports),
  binary: await run(url, true, ports),
});
`;

Deno.test("browser: a page resolves, exchanges UDP datagrams and fetches over connect_tls", async () => {
  const bundle = await buildClient();
  const pki = await makeTestPki();
  const udp = await startUdpPeer();
  const other = await startUdpPeer();
  const respond = async (conn: Deno.TlsConn) => {
    const buf = new Uint8Array(4096);
    const n = (await conn.read(buf)) ?? 0;
    const path = new TextDecoder().decode(buf.subarray(0, n)).split(" ")[1];
    await conn.write(new TextEncoder().encode(`HTTP/1.0 200 OK\r\n\r\nhello over TLS at ${path}`));
  };
  const tls = startTlsServer(pki.good, respond);
  const badTls = startTlsServer(pki.wrongName, respond);
  const table: Record<string, string[]> = {
    "echo.test": ["127.0.0.1"],
    "tls.test": ["127.0.0.1"],
    "inside.test": ["10.0.0.1"],
  };
  const resolver: Resolver = (name) =>
    table[name] ? Promise.resolve([...table[name]]) : Promise.reject(new Error(`${name}: not found`));
  const policy = Policy.fromConfig({
    network: { deny: ["10.0.0.0/8"], allow: ["*"] },
    tls: { ca_files: [pki.caFile] },
  });
  const server = await startServer(policy, { resolver });
  try {
    const ports = { udpPort: udp.port, otherPort: other.port, tlsPort: tls.port, badTlsPort: badTls.port };
    const { result, consoleErrors, pageErrors } = await runInPage<Record<string, Record<string, unknown>>>({
      files: { "/wasmnet-client.js": bundle },
      module: PAGE,
      args: { url: server.url, ports },
    });
    for (const framing of ["json", "binary"]) {
      const r = result[framing];
      assertEquals(r.resolved, ["127.0.0.1"], `${framing}: resolve`);
      // Binary error events carry only a message (the original's layout); JSON ones also carry the code.
      const code = (c: string) => (framing === "json" ? { code: c } : {});
      assertEquals(
        r.resolvedBlocked,
        { kind: "denied", ...code("POLICY_DENIED") },
        `${framing}: blocked name`,
      );
      assertEquals(r.datagrams, ["one", "three three three", "two two"], `${framing}: UDP echo`);
      assertEquals(
        r.froms,
        [{ data: "to the other one", addr: "127.0.0.1", port: other.port }],
        `${framing}: data_from`,
      );
      if (!(Number(r.udpPort) > 0)) throw new Error(`${framing}: udp_bound port ${r.udpPort}`);
      assertEquals(r.streamedDatagrams, [
        { data: "streamed datagram", addr: "echo.test", port: udp.port },
        { data: "streamed elsewhere", addr: "127.0.0.1", port: other.port },
      ], `${framing}: datagram streams`);
      assertEquals(r.tlsResponse, "HTTP/1.0 200 OK\r\n\r\nhello over TLS at /", `${framing}: TLS fetch`);
      assertEquals(r.tlsClose, "clean", `${framing}: TLS close`);
      assertEquals(r.tlsStream, "HTTP/1.0 200 OK\r\n\r\nhello over TLS at /stream", `${framing}: TLS stream`);
      assertEquals(
        r.badCert,
        { isWasmnetError: true, kind: "failed", ...code("TLS_FAILED") },
        `${framing}: wrong-name certificate`,
      );
    }
    assertEquals(udp.received.length, 8, "datagrams that reached the UDP echo server");
    assertEquals(pageErrors, [], "page errors");
    assertEquals(consoleErrors, [], "console errors");
  } finally {
    await server.close();
    await tls.close();
    await badTls.close();
    await udp.close();
    await other.close();
    await pki.remove();
  }
});
