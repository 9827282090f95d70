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

/** A masked client frame: `b0` is FIN/opcode as sent, the mask is random. */
function frame(b0: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const ext = len < 126 ? [] : len < 65536 ? [len >> 8, len & 0xff] : [0, 0, 0, 0, ...be32(len)];
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const head = [b0, 0x80 | (len < 126 ? len : len < 65536 ? 126 : 127), ...ext, ...mask];
  const out = new Uint8Array(head.length + len);
  out.set(head);
  for (let i = 0; i < len; i++) out[head.length + i] = payload[i] ^ mask[i & 3];
  return out;
}
function be32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let rest = bytes; rest.length > 0;) rest = rest.subarray(await conn.write(rest));
}

Deno.test("RawWebSocket: fragments of every size (empty, one byte, unaligned) reassemble, pings between", async () => {
  const { ws, client, closed } = await pair({ maxMessageBytes: 100_000 });
  const got: (string | Uint8Array)[] = [];
  const arrived = Promise.withResolvers<void>();
  ws.onmessage = (data) => (got.push(data), got.length === 3 && arrived.resolve());
  const data = new Uint8Array(70_001).map((_, i) => (i * 7919) >> 3);
  const sizes = [0, 1, 3, 0, 5, 126, 65_536, 0, 1, 4333]; // sums to 70,001
  const parts: Uint8Array[] = [];
  let at = 0;
  sizes.forEach((size, i) => {
    const b0 = (i === sizes.length - 1 ? 0x80 : 0) | (i === 0 ? 0x2 : 0x0);
    parts.push(frame(b0, data.subarray(at, at + size)));
    if (i === 4) parts.push(frame(0x89, new Uint8Array([7]))); // a ping mid-message
    at += size;
  });
  parts.push(frame(0x81, new TextEncoder().encode("whole"))); // then an unfragmented text message
  parts.push(frame(0x01, new TextEncoder().encode("hé")), frame(0x80, new Uint8Array(0))); // and a split one
  for (const p of parts) await writeAll(client, p);
  await arrived.promise;
  assert.deepEqual(got[0], data);
  assert.equal(got[1], "whole");
  assert.equal(got[2], "hé");
  client.close();
  assert.equal(await closed, 1006);
});

Deno.test("RawWebSocket: the message bound holds across fragments (1009 at the fragment that passes it)", async () => {
  const { ws, client, closed } = await pair({ maxMessageBytes: 1000 });
  ws.onmessage = () => assert.fail("nothing is delivered");
  await writeAll(client, frame(0x02, new Uint8Array(600)));
  await writeAll(client, frame(0x00, new Uint8Array(0)));
  await writeAll(client, frame(0x00, new Uint8Array(401)));
  const buf = new Uint8Array(256);
  const n = (await client.read(buf))!;
  assert.equal(buf[0], 0x88, "a close frame");
  assert.equal((buf[2] << 8) | buf[3], 1009, `close payload ${buf.subarray(0, n)}`);
  client.close();
  assert.equal(await closed, 1009);
});

/** Reads the first close frame the server sends: its code and reason. */
async function closeFrom(client: Deno.Conn): Promise<{ code: number; reason: string }> {
  let got = new Uint8Array(0);
  const buf = new Uint8Array(512);
  for (;;) {
    while (got.length >= 2 && got.length >= 2 + (got[1] & 0x7f)) {
      const len = got[1] & 0x7f;
      if ((got[0] & 0x0f) === 0x8) {
        return {
          code: (got[2] << 8) | got[3],
          reason: new TextDecoder().decode(got.subarray(4, 2 + len)),
        };
      }
      got = got.slice(2 + len);
    }
    const n = await client.read(buf);
    if (n === null) throw new Error("closed without a close frame");
    got = new Uint8Array([...got, ...buf.subarray(0, n)]);
  }
}

Deno.test("RawWebSocket: a close frame with an invalid code or a reason that is not UTF-8 is a protocol error", async () => {
  const cases: [string, Uint8Array, number][] = [
    ["code 999", new Uint8Array([0x03, 0xe7]), 1002],
    ["code 1005 (must not be sent)", new Uint8Array([0x03, 0xed]), 1002],
    ["code 5000", new Uint8Array([0x13, 0x88]), 1002],
    ["one byte", new Uint8Array([0x03]), 1002],
    ["reason not UTF-8", new Uint8Array([0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd]), 1007],
    ["good: 1000 with a reason", new Uint8Array([0x03, 0xe8, 0x68, 0xc3, 0xa9]), 1000],
    ["good: 4000 is echoed", new Uint8Array([0x0f, 0xa0]), 4000],
    ["good: empty", new Uint8Array(0), 1000],
  ];
  for (const [what, payload, expected] of cases) {
    const { client, closed } = await pair();
    await writeAll(client, frame(0x88, payload));
    assert.equal((await closeFrom(client)).code, expected, what);
    client.close();
    await closed;
  }
});

Deno.test("RawWebSocket: a text message keeps a leading BOM (U+FEFF is content, as Deno's WebSocket has it)", async () => {
  const { ws, client, closed } = await pair();
  const got = Promise.withResolvers<string | Uint8Array>();
  ws.onmessage = got.resolve;
  await writeAll(client, frame(0x81, new TextEncoder().encode("\ufeff{}")));
  assert.equal(await got.promise, "\ufeff{}");
  client.close();
  await closed;
});

Deno.test("RawWebSocket: a client silent in the middle of a frame is dropped after twice the keepalive (no slowloris mid-frame)", async () => {
  const { client, closed } = await pair({ keepaliveMs: 300 });
  const whole = frame(0x82, new Uint8Array(1000));
  await writeAll(client, whole.subarray(0, 20)); // the header and a few payload bytes, then nothing
  assert.equal(await closed, 1006, "dropped without a close handshake");
  client.close();
});
