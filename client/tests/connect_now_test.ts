/**
 * Connect without waiting, against the real server and real TCP peers on loopback: bytes sent before
 * `connected` (even before the WebSocket is open) arrive in order; a refusal or a denial reaches the program
 * as the error of its first operation; v2 sends past the initial window wait for credit and arrive; and
 * binary sends built in one reused frame buffer arrive intact however fast they follow each other.
 */

import assert from "node:assert/strict";
import { Policy } from "../../mod.ts";
import { startServer, startTcpEchoServer } from "../../tests/helpers.ts";
import { WasmnetClient, WasmnetError } from "../mod.ts";

/** A port nothing listens on (bound, then closed). */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** Resolves with the first `n` bytes a socket receives (callback API). */
function collect(client: WasmnetClient, id: number, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  return new Promise((resolve, reject) => {
    client.onClose(id, (e) => reject(e ?? new Error(`closed after ${got} of ${n} bytes`)));
    client.onData(id, (data) => {
      out.set(data.subarray(0, n - got), got);
      got += Math.min(data.length, n - got);
      if (got === n) resolve(out);
    });
  });
}

/** `n` bytes where byte i is `(i * 7 + seed) & 0xff`, so any reordering or overwrite shows. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

async function withServer(
  fn: (url: string, echoPort: number) => Promise<void>,
  policy?: Policy,
): Promise<void> {
  const server = await startServer(policy);
  const echo = startTcpEchoServer();
  try {
    await fn(server.url, echo.port);
  } finally {
    await echo.close();
    await server.close();
  }
}

for (const options of [{ binary: false }, { binary: true }, { binary: true, flowControl: true }]) {
  const name = options.binary ? (options.flowControl ? "binary v2" : "binary") : "JSON";

  Deno.test(`connectNow (${name}): bytes sent at once, before the WebSocket opens and after, arrive in order`, async () => {
    await withServer(async (url, echoPort) => {
      const client = new WasmnetClient(url, options);
      try {
        // Before the WebSocket is open: connect and bytes wait in the client's outbox, in order.
        const early = client.connectNow("127.0.0.1", echoPort);
        assert.ok(client.send(early, "before open"));
        assert.equal(new TextDecoder().decode(await collect(client, early, 11)), "before open");
        // Open: the send goes in the same synchronous turn as the connect, so before any `connected`.
        const id = client.connectNow("127.0.0.1", echoPort);
        assert.ok(client.send(id, "first "));
        assert.ok(client.send(id, "bytes"));
        assert.equal(new TextDecoder().decode(await collect(client, id, 11)), "first bytes");
      } finally {
        await client.disconnect();
      }
    });
  });

  Deno.test(`connectNow (${name}): a refused connect is the error of the first operation`, async () => {
    await withServer(async (url) => {
      const client = new WasmnetClient(url, options);
      try {
        await client.ready();
        const id = client.connectNow("127.0.0.1", closedPort());
        assert.ok(client.send(id, "lost"), "the send is accepted before the refusal is known");
        const error = await new Promise<WasmnetError | undefined>((r) => client.onClose(id, r));
        assert.ok(error instanceof WasmnetError, `close error: ${error}`);
        assert.equal(error.kind, "failed");
        assert.equal(client.send(id, "after"), false, "sends fail once the refusal is known");
      } finally {
        await client.disconnect();
      }
    });
  });

  Deno.test(`connectNow (${name}): a policy denial reaches onClose with kind "denied"`, async () => {
    const policy = Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } });
    await withServer(async (url, echoPort) => {
      const client = new WasmnetClient(url, options);
      try {
        await client.ready();
        const id = client.connectNow("127.0.0.2", echoPort);
        client.send(id, "x");
        const error = await new Promise<WasmnetError | undefined>((r) => client.onClose(id, r));
        assert.equal(error?.kind, "denied");
      } finally {
        await client.disconnect();
      }
    }, policy);
  });

  Deno.test(`openSocket (${name}): writes before opened arrive; a refusal rejects the first read, write or close`, async () => {
    await withServer(async (url, echoPort) => {
      const client = new WasmnetClient(url, options);
      try {
        await client.ready();
        const socket = client.openSocket("127.0.0.1", echoPort);
        const writer = socket.writable.getWriter();
        const wrote = writer.write(new TextEncoder().encode("no waiting")); // before `opened`
        const reader = socket.readable.getReader();
        let text = "";
        while (text.length < 10) text += new TextDecoder().decode((await reader.read()).value);
        assert.equal(text, "no waiting");
        await wrote;
        await socket.close();

        const refused = client.openSocket("127.0.0.1", closedPort());
        const w = refused.writable.getWriter();
        w.write(new Uint8Array([1])).catch(() => {}); // may resolve (sent) or reject, by timing
        const readError = await refused.readable.getReader().read().then(() => undefined, (e) => e);
        assert.ok(readError instanceof WasmnetError, `read: ${readError}`);
        assert.equal(readError.kind, "failed");
        await assert.rejects(w.write(new Uint8Array([2])), WasmnetError);
        await assert.rejects(refused.opened, WasmnetError);
      } finally {
        await client.disconnect();
      }
    });
  });

  Deno.test(`client (${name}): back-to-back sends of distinct chunks arrive intact (one reused frame buffer)`, async () => {
    await withServer(async (url, echoPort) => {
      const client = new WasmnetClient(url, options);
      try {
        await client.ready();
        const id = client.connectNow("127.0.0.1", echoPort);
        // Sizes vary so the frame is written over at different lengths; nothing waits between sends.
        const chunks = Array.from({ length: 64 }, (_, i) => pattern(1 + (i * 9973) % 70_000, i));
        const total = chunks.reduce((a, c) => a + c.length, 0);
        const echoed = collect(client, id, total);
        for (const chunk of chunks) assert.ok(client.send(id, chunk));
        const got = await echoed;
        let at = 0;
        for (const [i, chunk] of chunks.entries()) {
          assert.deepEqual(got.subarray(at, at + chunk.length), chunk, `chunk ${i} changed on the way`);
          at += chunk.length;
        }
      } finally {
        await client.disconnect();
      }
    });
  });
}

Deno.test("connectNow (binary v2): sends past the initial 64 KiB window wait for credit, then all arrive", async () => {
  await withServer(async (url, echoPort) => {
    const client = new WasmnetClient(url, { binary: true, flowControl: true });
    try {
      await client.ready();
      const id = client.connectNow("127.0.0.1", echoPort);
      const data = pattern(1024 * 1024, 3);
      const echoed = collect(client, id, data.length);
      assert.ok(client.send(id, data));
      assert.ok(
        client.bufferedAmount(id) >= data.length - 64 * 1024,
        "the rest waits for the server's credit",
      );
      data.fill(0); // the caller's buffer is free once send returns: what waits was copied
      assert.deepEqual(await echoed, pattern(1024 * 1024, 3));
    } finally {
      await client.disconnect();
    }
  });
});

/** A WebSocket whose `send` keeps the buffer it was given and sends it later (as a queueing one may). */
class DeferredSendWebSocket extends WebSocket {
  override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    queueMicrotask(() => super.send(data));
  }
}

Deno.test("client (binary): with a WebSocket passed in, frames are not reused unless asked, since its send may keep them", async () => {
  await withServer(async (url, echoPort) => {
    const run = async (reuseSendBuffer?: boolean) => {
      const client = new WasmnetClient(url, {
        binary: true,
        WebSocket: DeferredSendWebSocket,
        reuseSendBuffer,
      });
      try {
        await client.ready();
        const id = client.connectNow("127.0.0.1", echoPort);
        const chunks = [pattern(1000, 1), pattern(1000, 2)];
        const echoed = collect(client, id, 2000);
        for (const chunk of chunks) client.send(id, chunk);
        const got = await echoed;
        return got.subarray(0, 1000).every((b, i) => b === chunks[0][i]);
      } finally {
        await client.disconnect();
      }
    };
    assert.equal(await run(), true, "the default copies each frame for a passed-in WebSocket");
    assert.equal(
      await run(true),
      false,
      "forced reuse with a send that keeps buffers overwrites the first frame",
    );
  });
});
