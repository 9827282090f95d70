import assert from "node:assert/strict";
import { RawWebSocket } from "./raw_websocket.ts";

/** A RawWebSocket on one end of a loopback connection; the test holds the other (the "client"). */
async function pair(options: Partial<ConstructorParameters<typeof RawWebSocket>[2]> = {}) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const ws = new RawWebSocket(server, new Uint8Array(0), {
    maxMessageBytes: 1024,
    readPauseBytes: 1 << 20,
    floodCloseMs: 10_000,
    sendTimeoutMs: 60_000,
    ...options,
  });
  const closed = new Promise<number>((resolve) => (ws.onclose = resolve));
  ws.start();
  return { ws, client, closed };
}

Deno.test("RawWebSocket keepalive: a silent client is pinged, then dropped when it stays silent", async () => {
  const { client, closed } = await pair({ keepaliveMs: 300 });
  const buf = new Uint8Array(16);
  const n = await client.read(buf); // the ping, after about 300-800 ms of silence
  assert.deepEqual([...buf.subarray(0, n!)], [0x89, 0x00], "an empty ping");
  assert.equal(await closed, 1006, "dropped without a close handshake");
  client.close();
});

Deno.test("RawWebSocket: send copies (callers reuse buffers); server frames are unmasked", async () => {
  const { ws, client, closed } = await pair();
  const data = new Uint8Array([1, 2, 3]);
  ws.send(data);
  data.fill(9);
  ws.send("hé");
  const buf = new Uint8Array(64);
  let got: number[] = [];
  while (got.length < 10) got = [...got, ...buf.subarray(0, (await client.read(buf))!)];
  assert.deepEqual(got, [0x82, 3, 1, 2, 3, 0x81, 3, 0x68, 0xc3, 0xa9]);
  client.close();
  assert.equal(await closed, 1006);
});
