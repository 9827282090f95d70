/**
 * The page's own WebTransport ceiling: a Deno WebTransport server with no TCP behind it (the counterpart of
 * `ceiling_server.ts` for the WebSocket), so the bench can tell what Deno 2.9.6's QUIC and the page can move
 * at all, apart from wasmnet. `deno run --unstable-net --allow-net --allow-read ... <tcp port> <cert> <key>`.
 *
 * The TCP port answers `/.well-known/wasmnet` with the session URL and certificate hash (as wasmnet does);
 * the QUIC listener is on a free UDP port. On each bidirectional stream the first line picks the work:
 * `D <n>` sends `n` bytes in 64 KiB writes, `U <n>` counts `n` bytes then sends `K`, `E` echoes. Streams are
 * never finished (Deno cannot send FIN, denoland/deno#36822); the stream limit is raised so the connects
 * workload can open hundreds on one session.
 *
 * @module
 */

import { certificateHash } from "../../src/frontends/webtransport/endpoint.ts";

const [tcpPort, certFile, keyFile] = Deno.args;
const cert = Deno.readTextFileSync(certFile), key = Deno.readTextFileSync(keyFile);
const hash = await certificateHash(cert);
const endpoint = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
const listener = endpoint.listen({
  cert,
  key,
  alpnProtocols: ["h3"],
  maxConcurrentBidirectionalStreams: 100_000,
});
const BLOCK = new Uint8Array(64 * 1024).fill(0x61);

Deno.serve({ hostname: "127.0.0.1", port: Number(tcpPort), onListen: () => {} }, () =>
  Response.json(
    {
      webtransport: {
        url: `https://127.0.0.1:${endpoint.addr.port}/`,
        certificateHashes: [{ algorithm: "sha-256", value: hash }],
      },
    },
    { headers: { "access-control-allow-origin": "*" } },
  ));

async function serveStream(stream: WebTransportBidirectionalStream): Promise<void> {
  const reader = stream.readable.getReader();
  const writer = stream.writable.getWriter();
  let head = new Uint8Array(0);
  let nl = -1;
  while (nl < 0) {
    const { value, done } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(head.length + value.length);
    joined.set(head);
    joined.set(value, head.length);
    head = joined;
    nl = head.indexOf(10);
  }
  const [mode, count] = new TextDecoder().decode(head.subarray(0, nl)).split(" ");
  const rest = head.subarray(nl + 1);
  const n = Number(count ?? 0);
  if (mode === "D") {
    for (let left = n; left > 0; left -= BLOCK.length) {
      await writer.ready;
      writer.write(left >= BLOCK.length ? BLOCK.slice() : BLOCK.slice(0, left)).catch(() => {});
    }
  } else if (mode === "U") {
    let got = rest.length;
    while (got < n) {
      const { value, done } = await reader.read();
      if (done) return;
      got += value.length;
    }
    await writer.write(new Uint8Array([0x4b]));
  } else {
    if (rest.length) await writer.write(rest.slice());
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      await writer.write(value);
    }
  }
}

for (;;) {
  // A client's failed or timed-out handshake rejects accept(); that ends the client, not the listener.
  const conn = await listener.accept().catch(() => null);
  if (conn === null) continue;
  (async () => {
    const wt = await Deno.upgradeWebTransport(conn);
    // A session that times out rejects `closed`; unhandled, that would end this process.
    wt.closed.catch(() => {});
    for await (const stream of wt.incomingBidirectionalStreams) serveStream(stream).catch(() => {});
  })().catch(() => {});
}
