/**
 * Run by `webtransport_handshake_test.ts` with `--unstable-net`. `<port> <sha-256 base64> vanish`: opens a
 * WebTransport session and exits without closing it or saying hello (the server's side then times out).
 * `<port> <sha-256 base64>`: fails one QUIC handshake on purpose (an ALPN the server does not speak), then
 * opens a real session and prints the server's answer to the hello, as JSON.
 *
 * @module
 */

import { decodeHelloAnswer, encodeHello, frame, FrameReader } from "@wasmnet/protocol/webtransport";

const [port, hash] = [Number(Deno.args[0]), Deno.args[1]];
const options = { serverCertificateHashes: [{ algorithm: "sha-256", value: Uint8Array.fromBase64(hash) }] };
if (Deno.args[2] === "vanish") {
  await new WebTransport(`https://127.0.0.1:${port}/`, options).ready;
  Deno.exit(0);
}
// `deno check` of the repository runs without the unstable types; this file runs with --unstable-net.
const quic = Deno as unknown as {
  connectQuic(
    options: { hostname: string; port: number; alpnProtocols: string[] },
  ): Promise<{ close(): void }>;
};
const refused = await quic.connectQuic({ hostname: "127.0.0.1", port, alpnProtocols: ["not-h3"] })
  .then((c) => (c.close(), "connected"), (e: Error) => `failed: ${e.name}`);
const wt = new WebTransport(`https://127.0.0.1:${port}/`, options);
await wt.ready;
const stream = await wt.createBidirectionalStream();
const writer = stream.writable.getWriter();
await writer.write(frame(encodeHello({ wasmnet: 1, v2: false })));
const reader = stream.readable.getReader();
const frames = new FrameReader(4096);
let messages: Uint8Array[] = [];
while (messages.length === 0) {
  const { value, done } = await reader.read();
  if (done) break;
  messages = frames.push(value);
}
console.log(JSON.stringify({ refused, answer: messages[0] ? decodeHelloAnswer(messages[0]) : null }));
wt.close();
Deno.exit(0);
