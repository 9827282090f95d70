/**
 * The client against the real wasmnet server and real TCP peers on loopback, in both framings.
 */

import { Policy } from "../../mod.ts";
import {
  startEofCountingPeer,
  startServer,
  startTcpEchoServer,
  startTcpServer,
  type TestServer,
} from "../../tests/helpers.ts";
import { WasmnetClient, type WasmnetClientOptions, WasmnetError } from "../mod.ts";

function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new Error(message);
}
function assertEquals<T>(actual: T, expected: T, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}
async function assertRejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects a socket's bytes until `n` have arrived. */
function collect(client: WasmnetClient, id: number, n: number, ms = 5000): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got} of ${n} bytes within ${ms} ms`)), ms);
    client.onData(id, (data) => {
      chunks.push(data);
      got += data.length;
      if (got >= n) {
        clearTimeout(timer);
        const out = new Uint8Array(got);
        let o = 0;
        for (const c of chunks) (out.set(c, o), o += c.length);
        resolve(out);
      }
    });
  });
}

/** Runs `fn` with a fresh server, echo peer and client (in the given framing), and stops all of them. */
async function withSetup(
  options: WasmnetClientOptions,
  fn: (ctx: { server: TestServer; echoPort: number; client: WasmnetClient }) => Promise<void>,
  policy?: Policy,
): Promise<void> {
  const server = await startServer(policy);
  const echo = startTcpEchoServer();
  const client = new WasmnetClient(server.url, options);
  try {
    await client.ready();
    await fn({ server, echoPort: echo.port, client });
  } finally {
    await client.disconnect();
    await echo.close();
    await server.close();
  }
}

for (const binary of [false, true]) {
  const framing = binary ? "binary" : "json";

  Deno.test(`client (${framing}): connect, send string and bytes, echo arrives, close`, async () => {
    await withSetup({ binary }, async ({ client, echoPort }) => {
      assertEquals(client.binary, binary);
      const id = await client.connect("127.0.0.1", echoPort);
      const closed = new Promise<WasmnetError | undefined>((r) => client.onClose(id, r));
      const got = collect(client, id, 11);
      assert(client.send(id, "hello "), "send returned false");
      client.send(id, new Uint8Array([119, 111]));
      client.send(id, new Uint8Array([114, 108, 100]).buffer);
      assertEquals(text(await got), "hello world");
      await client.close(id);
      assertEquals(await closed, undefined, "close callback error");
      assertEquals(client.send(id, "x"), false, "send after close");
    });
  });

  Deno.test(`client (${framing}): all 256 byte values survive the round trip`, async () => {
    await withSetup({ binary }, async ({ client, echoPort }) => {
      const id = await client.connect("127.0.0.1", echoPort);
      const bytes = new Uint8Array(256 * 64).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
      const got = collect(client, id, bytes.length);
      client.send(id, bytes);
      assertEquals([...await got], [...bytes]);
      await client.close(id);
    });
  });

  Deno.test(`client (${framing}): bind, accept, echo to a real TCP peer`, async () => {
    await withSetup({ binary }, async ({ client }) => {
      const listener = await client.bind("127.0.0.1", 0);
      assert(listener.port > 0, "no port");
      client.listen(listener.id, 16); // compat no-op; must not break anything
      const remotes: string[] = [];
      client.onAccept(listener.id, (connId, remote) => {
        remotes.push(remote);
        client.onData(connId, (data) => client.send(connId, data));
      });
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
      try {
        await conn.write(new TextEncoder().encode("ping"));
        const buf = new Uint8Array(4);
        let n = 0;
        while (n < 4) n += (await conn.read(buf.subarray(n))) ?? 0;
        assertEquals(text(buf), "ping");
        assertEquals(remotes, [`127.0.0.1:${(conn.localAddr as Deno.NetAddr).port}`]);
      } finally {
        conn.close();
      }
      await client.close(listener.id);
    });
  });

  for (const flowControl of [false, true]) {
    Deno.test(`client (${framing}${flowControl ? ", v2" : ""}): openListener hands out accepted connections as stream sockets`, async () => {
      await withSetup({ binary, flowControl }, async ({ client }) => {
        const listener = await client.openListener("127.0.0.1", 0);
        assert(listener.port > 0, "no port");
        // A server program: echo every accepted connection through its streams, upper-cased.
        const served = (async () => {
          for await (const socket of listener) {
            const { readable, writable, remoteAddress, remotePort } = await socket.opened;
            assertEquals(remoteAddress, "127.0.0.1");
            assert(remotePort > 0, "no remote port");
            void readable.pipeThrough(
              new TransformStream<Uint8Array, Uint8Array>({
                transform: (chunk, c) => c.enqueue(new TextEncoder().encode(text(chunk).toUpperCase())),
              }),
            ).pipeTo(writable).catch(() => {});
          }
        })();
        for (const word of ["ping", "pong"]) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
          await conn.write(new TextEncoder().encode(word));
          const buf = new Uint8Array(4);
          let n = 0;
          while (n < 4) n += (await conn.read(buf.subarray(n))) ?? 0;
          assertEquals(text(buf), word.toUpperCase());
          conn.close();
        }
        // 1 MiB from a peer arrives whole through an accepted socket (flow control renews its window).
        const big = new Uint8Array(1 << 20).map((_, i) => 97 + (i % 26));
        const second = await client.openListener("127.0.0.1", 0);
        const peer = await Deno.connect({ hostname: "127.0.0.1", port: second.port });
        const socket = await second.accept();
        const writing = peer.write(big).then(() => peer.closeWrite());
        let got = 0;
        for await (const chunk of socket.readable) got += chunk.byteLength;
        await writing;
        assertEquals(got, big.length);
        peer.close();
        await second.close();
        await second.closed;
        await listener.close();
        await served; // the iteration ends when the listener closes
        await listener.closed;
      });
    });
  }

  Deno.test(`client (${framing}): half-close, with v2: closing the writable ends the peer's input, the answer still arrives`, async () => {
    const peer = startEofCountingPeer();
    try {
      await withSetup({ binary, flowControl: true }, async ({ client }) => {
        // Streams: more than the first window (64 KiB) is sent, so the shutdown must wait for credit.
        const socket = client.openSocket("127.0.0.1", peer.port);
        const { readable, writable } = await socket.opened;
        const writer = writable.getWriter();
        await writer.write(new Uint8Array(300_000));
        await writer.close();
        let answer = "";
        for await (const chunk of readable) answer += text(chunk);
        assertEquals(answer, "got 300000");
        await socket.closed;
        // Callbacks: shutdown() says it was sent; send() after it is refused.
        const id = await client.connect("127.0.0.1", peer.port);
        const reply = collect(client, id, "got 2".length);
        assert(client.send(id, "hi"));
        assert(client.shutdown(id), "shutdown sent");
        assert(!client.send(id, "late"), "no sends after shutdown");
        assertEquals(text(await reply), "got 2");
      });
      // Without v2 the client cannot know the server has half-close: shutdown() sends nothing.
      await withSetup({ binary }, async ({ client, echoPort }) => {
        const id = await client.connect("127.0.0.1", echoPort);
        assert(!client.shutdown(id), "no half-close on the original protocol");
        await client.close(id);
      });
    } finally {
      await peer.close();
    }
  });

  for (const flowControl of [false, true]) {
    Deno.test(`client (${framing}${flowControl ? ", v2" : ""}): a policy denial rejects connect with kind "denied"`, async () => {
      const policy = Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } });
      await withSetup({ binary, flowControl }, async ({ client, echoPort }) => {
        const error = await assertRejects(client.connect("127.0.0.2", echoPort));
        assert(error instanceof WasmnetError, `not a WasmnetError: ${error}`);
        assertEquals(error.kind, "denied");
        assert(error.denied);
        assert(/denied/.test(error.message), error.message);
        assert(error.serverMessage && error.message.includes(error.serverMessage), error.message);
        // JSON always carries the code; binary only with v2 (the original's binary layout has no room).
        if (!binary || flowControl) assertEquals(error.code, "POLICY_DENIED");
        else assertEquals(error.code, undefined);
        // The client stays usable after a denial.
        const id = await client.connect("127.0.0.1", echoPort);
        await client.close(id);
      }, policy);
    });
  }
}

Deno.test('client: a refused connection rejects with kind "failed" and the server\'s message', async () => {
  await withSetup({}, async ({ client }) => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const error = await assertRejects(client.connect("127.0.0.1", port));
    assert(error instanceof WasmnetError, `not a WasmnetError: ${error}`);
    assertEquals(error.kind, "failed");
    assert(error.message.includes(`127.0.0.1:${port}`), error.message);
    assert(error.serverMessage, "no server message");
  });
});

Deno.test("client: bytes that arrive before onData are held and delivered in order", async () => {
  const server = await startServer();
  const greeter = startTcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("hello, "));
    await conn.write(new TextEncoder().encode("late reader"));
    conn.close();
  });
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const id = await client.connect("127.0.0.1", greeter.port);
    await delay(300); // everything, including the peer's close, arrives with no handler set
    let closedAfter = "";
    let received = "";
    const closed = new Promise<void>((resolve) =>
      client.onClose(id, () => {
        closedAfter = received;
        resolve();
      })
    );
    client.onData(id, (data) => received += text(data));
    await closed;
    await delay(10);
    assertEquals(received, "hello, late reader");
    assert(closedAfter === received || closedAfter === "", "close callback ran between data chunks");
  } finally {
    await client.disconnect();
    await greeter.close();
    await server.close();
  }
});

Deno.test("client: ready() rejects with a reason when the server cannot be reached", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const client = new WasmnetClient(`ws://127.0.0.1:${port}/`);
  const error = await assertRejects(client.ready());
  assert(error instanceof WasmnetError, `not a WasmnetError: ${error}`);
  assertEquals(error.kind, "disconnected");
  assert(error.message.includes(`127.0.0.1:${port}`), error.message);
  const connectError = await assertRejects(client.connect("127.0.0.1", 1));
  assert(connectError instanceof WasmnetError && connectError.kind === "disconnected");
  await client.disconnect();
});

Deno.test("client: a dropped WebSocket rejects pending promises and closes every socket", async () => {
  await withSetup({}, async ({ client, echoPort }) => {
    const id = await client.connect("127.0.0.1", echoPort);
    const listener = await client.bind("127.0.0.1", 0);
    const closes = [id, listener.id].map((i) =>
      new Promise<WasmnetError | undefined>((r) => client.onClose(i, r))
    );
    const pending = assertRejects(client.connect("127.0.0.1", echoPort)); // in flight when the socket drops
    const socket = client.openSocket("127.0.0.1", echoPort);
    await client.disconnect();
    for (const error of await Promise.all(closes)) assertEquals(error?.kind, "disconnected");
    const pendingError = await pending;
    assert(
      pendingError instanceof WasmnetError && pendingError.kind === "disconnected",
      String(pendingError),
    );
    assert((await assertRejects(socket.closed)) instanceof WasmnetError);
    assert((await assertRejects(socket.opened)) instanceof WasmnetError);
    assertEquals(client.connected, false);
    assertEquals(client.send(id, "x"), false);
    // onClose on a socket that is already gone still runs.
    await new Promise<unknown>((r) => client.onClose(id, r));
  });
});

Deno.test("client: server shutdown closes sockets with a disconnected error", async () => {
  const server = await startServer();
  const echo = startTcpEchoServer();
  const client = new WasmnetClient(server.url);
  try {
    await client.ready();
    const id = await client.connect("127.0.0.1", echo.port);
    const closed = new Promise<WasmnetError | undefined>((r) => client.onClose(id, r));
    await server.close();
    assertEquals((await closed)?.kind, "disconnected");
  } finally {
    await client.disconnect();
    await echo.close();
    await server.close();
  }
});

Deno.test("client: requests made before ready() are queued until the WebSocket opens", async () => {
  await withSetup({}, async ({ server, echoPort }) => {
    const early = new WasmnetClient(server.url);
    try {
      const id = await early.connect("127.0.0.1", echoPort);
      const got = collect(early, id, 2);
      early.send(id, "ok");
      assertEquals(text(await got), "ok");
    } finally {
      await early.disconnect();
    }
  });
});

Deno.test("client: a constructor can be passed where there is no global WebSocket", async () => {
  await withSetup({}, async ({ server }) => {
    let made = 0;
    class CountingWebSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        made++;
      }
    }
    const other = new WasmnetClient(server.url, { WebSocket: CountingWebSocket });
    await other.ready();
    await other.disconnect();
    assertEquals(made, 1);
  });
});

for (const binary of [false, true]) {
  Deno.test(`socket streams (${binary ? "binary" : "json"}): 4 MiB through an echo peer intact`, async () => {
    await withSetup({ binary }, async ({ client, echoPort }) => {
      const socket = client.openSocket("127.0.0.1", echoPort, { sendBufferLimit: 256 * 1024 });
      const info = await socket.opened;
      assertEquals(info.remotePort, echoPort);
      const size = 4 << 20;
      const writing = (async () => {
        const writer = socket.writable.getWriter();
        for (let off = 0; off < size; off += 64 * 1024) {
          const chunk = new Uint8Array(64 * 1024);
          for (let i = 0; i < chunk.length; i++) chunk[i] = ((off + i) * 31 + ((off + i) >> 11)) & 0xff;
          await writer.ready;
          await writer.write(chunk);
        }
        await writer.close();
      })();
      let got = 0;
      let bad = -1;
      for await (const chunk of socket.readable) {
        for (let i = 0; i < chunk.length && bad < 0; i++) {
          const n = got + i;
          if (chunk[i] !== ((n * 31 + (n >> 11)) & 0xff)) bad = n;
        }
        got += chunk.length;
        if (got >= size) break; // leaves the loop: cancels the readable, and with the writable closed, closes
      }
      await writing;
      assertEquals(bad, -1, "first wrong byte at");
      assertEquals(got, size);
      await socket.closed;
    });
  });
}

Deno.test("socket streams: a denied open rejects opened and closed, and errors both streams", async () => {
  const policy = Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } });
  await withSetup({}, async ({ client, echoPort }) => {
    const socket = client.openSocket("127.0.0.2", echoPort);
    const error = await assertRejects(socket.opened);
    assert(error instanceof WasmnetError && error.kind === "denied", String(error));
    assertEquals(await assertRejects(socket.closed), error);
    assertEquals(await assertRejects(socket.readable.getReader().read()), error);
  }, policy);
});

Deno.test("socket streams: the peer closing ends the readable after its data, and closed resolves", async () => {
  const server = await startServer();
  const greeter = startTcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("bye"));
    conn.close();
  });
  const client = new WasmnetClient(server.url);
  try {
    const socket = client.openSocket("127.0.0.1", greeter.port);
    await socket.opened;
    let all = "";
    for await (const chunk of socket.readable) all += text(chunk);
    assertEquals(all, "bye");
    await socket.closed;
    const error = await assertRejects(socket.writable.getWriter().write(new Uint8Array(1)));
    assert(error instanceof WasmnetError && error.kind === "closed", String(error));
  } finally {
    await client.disconnect();
    await greeter.close();
    await server.close();
  }
});

Deno.test("socket streams: a slow reader leaves bytes queued, not lost; socket.close() resolves", async () => {
  const server = await startServer();
  const size = 1 << 20;
  const blaster = startTcpServer(async (conn) => {
    await conn.write(new Uint8Array(size).fill(7));
    await conn.closeWrite().catch(() => {});
    await conn.read(new Uint8Array(1)).catch(() => null);
  });
  const client = new WasmnetClient(server.url, { binary: true });
  try {
    const socket = client.openSocket("127.0.0.1", blaster.port, { readableHighWaterMark: 16 * 1024 });
    await socket.opened;
    await delay(300); // the reader is idle; the stream only buffers about its high-water mark
    const reader = socket.readable.getReader();
    let got = 0;
    while (got < size) {
      const { value, done } = await reader.read();
      if (done) break;
      assert(value.every((b) => b === 7), "wrong byte");
      got += value.length;
    }
    assertEquals(got, size);
    reader.releaseLock();
    await socket.close();
  } finally {
    await client.disconnect();
    await blaster.close();
    await server.close();
  }
});

Deno.test("socket streams: close() before the socket opened settles everything", async () => {
  await withSetup({}, async ({ client, echoPort }) => {
    const socket = client.openSocket("127.0.0.1", echoPort);
    const opened = assertRejects(socket.opened);
    await socket.close();
    const error = await opened;
    assert(error instanceof WasmnetError && error.kind === "closed", String(error));
    // The client is still usable and the id was released by the server's answer.
    const id = await client.connect("127.0.0.1", echoPort);
    await client.close(id);
  });
});

for (const binary of [false, true]) {
  Deno.test(`client (${binary ? "binary" : "json"}): one 3 MiB send is split below the server's message limit`, async () => {
    await withSetup({ binary }, async ({ client, echoPort }) => {
      const id = await client.connect("127.0.0.1", echoPort);
      const bytes = new Uint8Array(3 << 20).map((_, i) => (i * 13 + (i >> 16)) & 0xff);
      const got = collect(client, id, bytes.length, 15_000);
      assert(client.send(id, bytes), "send returned false");
      const back = await got;
      assert(back.length === bytes.length && back.every((b, i) => b === bytes[i]), "echo differs");
      assert(client.connected, "the server dropped the WebSocket");
      await client.close(id);
    });
  });
}
