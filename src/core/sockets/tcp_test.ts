import assert from "node:assert/strict";
import { MIN_READ_BYTES, nextReadSize, READ_CHUNK_BYTES, TcpStream, WriteBudget } from "./tcp.ts";

Deno.test("nextReadSize: grows on full reads up to the cap, shrinks on tiny ones down to the floor", () => {
  const cases: [number, number, number][] = [
    [MIN_READ_BYTES, MIN_READ_BYTES, MIN_READ_BYTES * 2],
    [READ_CHUNK_BYTES, READ_CHUNK_BYTES, READ_CHUNK_BYTES],
    [64 * 1024, 30_000, 64 * 1024],
    [64 * 1024, 100, 32 * 1024],
    [MIN_READ_BYTES, 1, MIN_READ_BYTES],
  ];
  for (const [size, n, want] of cases) assert.equal(nextReadSize(size, n), want, `${size}/${n}`);
  assert.equal(nextReadSize(64 * 1024, 64 * 1024, 64 * 1024), 64 * 1024, "a lower cap holds (JSON sockets)");
});

Deno.test("TcpStream: headroom before each chunk, reads within readLimit, onWritten counts, small writes merge", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  listener.close();
  const chunks: Uint8Array[] = [];
  let written = 0;
  let limit = 3;
  let ended = false;
  const { promise: gotAll, resolve } = Promise.withResolvers<void>();
  const stream = new TcpStream(
    {
      onData: (bytes) => {
        chunks.push(bytes);
        limit = 1000;
        if (chunks.reduce((n, c) => n + c.length, 0) >= 10) resolve();
      },
      onEnd: () => (ended = true),
      onWritten: (n) => (written += n),
    },
    () => undefined,
    1024 * 1024,
    { headroom: 9, readLimit: () => limit },
  );
  stream.attach(server);
  await client.write(new TextEncoder().encode("0123456789"));
  await gotAll;
  assert.equal(chunks[0].length, 3, "first read stopped at the limit");
  for (const c of chunks) assert.equal(c.byteOffset, 9, "9 bytes of headroom in front");
  // Many small writes: all arrive, in order, counted by onWritten.
  for (let i = 0; i < 100; i++) assert.equal(stream.write(new Uint8Array([i])), undefined);
  const back = new Uint8Array(100);
  for (let at = 0; at < 100;) at += (await client.read(back.subarray(at)))!;
  assert.deepEqual([...back], Array.from({ length: 100 }, (_, i) => i));
  assert.equal(written, 100);
  stream.destroy();
  assert.ok(ended);
  client.close();
});

Deno.test("WriteBudget: streams sharing a budget are refused BUFFER_FULL past it; writing or ending gives it back", async () => {
  const budget = new WriteBudget(1000);
  const events = { onData: () => {}, onEnd: () => {} };
  // Not attached yet: writes wait in the queue, holding budget.
  const a = new TcpStream(events, () => undefined, 800, { budget });
  const b = new TcpStream(events, () => undefined, 800, { budget });
  assert.equal(a.write(new Uint8Array(600)), undefined);
  assert.equal(b.write(new Uint8Array(300)), undefined);
  assert.equal(budget.used, 900);
  const refused = b.write(new Uint8Array(200));
  assert.equal(refused?.code, "BUFFER_FULL", "the session's budget, though b's own bound (800) has room");
  assert.match(refused!.message, /session/);
  assert.equal(a.write(new Uint8Array(300))?.code, "BUFFER_FULL", "a's own bound (800) is checked too");
  assert.equal(budget.used, 900, "a refused write takes nothing");
  a.destroy();
  assert.equal(budget.used, 300, "dropped bytes are given back");

  // Written bytes are given back as they reach the kernel.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  b.attach(await listener.accept());
  listener.close();
  const got = new Uint8Array(300);
  for (let at = 0; at < 300;) at += (await client.read(got.subarray(at)))!;
  for (let i = 0; budget.used !== 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(budget.used, 0);
  assert.equal(b.write(new Uint8Array(700)), undefined, "room again");
  b.destroy();
  client.close();
});
