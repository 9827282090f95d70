import assert from "node:assert/strict";
import { upgradeToPort } from "../core/websocket.ts";
import { AcceptLoop, type ConnectionLimits, type Handler } from "./accept.ts";

const LIMITS: ConnectionLimits = {
  headerTimeoutMs: 2000,
  maxHandshakes: 100,
  maxHandshakesPerIp: 100,
  isTrustedProxy: () => false,
  sendTimeoutMs: 5000,
  readPauseBytes: 1 << 20,
  floodCloseMs: 5000,
};

/** An accept loop on a loopback port running `handler`; `stop` ends it. */
function serve(handler: Handler, limits: Partial<ConnectionLimits> = {}) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const controller = new AbortController();
  const loop = new AcceptLoop(listener, handler, () => ({ ...LIMITS, ...limits }), controller.signal);
  return {
    port: listener.addr.port,
    loop,
    stop: async () => {
      controller.abort();
      listener.close();
      await loop.done;
    },
  };
}

/** Sends `head` (lines joined by CRLF, blank line added) and returns everything the server sent until it closed. */
async function exchange(port: number, head: string[], extra = new Uint8Array(0)): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = new TextEncoder().encode(head.join("\r\n") + "\r\n\r\n");
  const all = new Uint8Array(bytes.length + extra.length);
  all.set(bytes);
  all.set(extra, bytes.length);
  for (let rest = all; rest.length > 0;) rest = rest.subarray(await conn.write(rest));
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    text += new TextDecoder("latin1").decode(buf.subarray(0, n));
    if (text.includes("\r\n\r\n") && !text.startsWith("HTTP/1.1 101")) break;
    if (text.startsWith("HTTP/1.1 101")) break;
  }
  conn.close();
  return text;
}

const UPGRADE = [
  "GET / HTTP/1.1",
  "Host: 127.0.0.1",
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Sec-WebSocket-Version: 13",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

Deno.test("accept: a session whose 101 cannot be written (connection gone) is closed, not leaked", async () => {
  // The handler upgrades, then takes longer than the header timeout (a slow shared-store admission): the
  // connection is closed under it, so the 101 write fails. The front end must still hear its close.
  const closed = Promise.withResolvers<void>();
  const server = serve(async (request) => {
    const response = upgradeToPort(request, () => ({ message() {}, close: () => closed.resolve() }));
    await new Promise((r) => setTimeout(r, 400));
    return response;
  }, { headerTimeoutMs: 100 });
  try {
    await exchange(server.port, UPGRADE);
    const timeout = new Promise<string>((r) => setTimeout(() => r("leaked"), 3000));
    assert.equal(await Promise.race([closed.promise.then(() => "closed"), timeout]), "closed");
  } finally {
    await server.stop();
  }
});

Deno.test("accept: an upgrade must say Connection: Upgrade; another version gets 426 naming version 13", async () => {
  let upgraded = 0;
  const server = serve((request) => {
    upgraded++;
    return upgradeToPort(request, () => ({ message() {}, close() {} }));
  });
  try {
    const without = UPGRADE.filter((l) => !l.startsWith("Connection"));
    assert.match(await exchange(server.port, [...without, "Connection: keep-alive"]), /^HTTP\/1\.1 400 /);
    // The token in a list, any case, over several lines: fine (RFC 9110 §7.6.1).
    const listed = await exchange(server.port, [...without, "Connection: keep-alive", "connection: UPGRADE"]);
    assert.match(listed, /^HTTP\/1\.1 101 /);
    const v8 = UPGRADE.map((l) => l.startsWith("Sec-WebSocket-Version") ? "Sec-WebSocket-Version: 8" : l);
    const answer = await exchange(server.port, v8);
    assert.match(answer, /^HTTP\/1\.1 426 /);
    assert.match(
      answer,
      /\r\nsec-websocket-version: 13\r\n/i,
      "RFC 6455 §4.4: the versions the server speaks",
    );
    assert.equal(upgraded, 3, "the handler ran for each (admission first), the upgrade refused two");
  } finally {
    await server.stop();
  }
});

Deno.test("accept: frames sent in the same write as the head are not lost", async () => {
  const got = Promise.withResolvers<string | Uint8Array>();
  const server = serve((request) => upgradeToPort(request, () => ({ message: got.resolve, close() {} })));
  try {
    // A masked text frame "hi" (mask 0) right after the blank line.
    const frame = new Uint8Array([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]);
    assert.match(await exchange(server.port, UPGRADE, frame), /^HTTP\/1\.1 101 /);
    assert.equal(await got.promise, "hi");
  } finally {
    await server.stop();
  }
});

Deno.test("accept: a method a Request cannot carry (CONNECT, TRACE) gets a 400, not a silent close", async () => {
  const server = serve(() => new Response("not reached", { status: 200 }));
  try {
    for (const method of ["CONNECT", "TRACE", "TRACK"]) {
      const answer = await exchange(server.port, [`${method} / HTTP/1.1`, "Host: 127.0.0.1"]);
      assert.match(answer, /^HTTP\/1\.1 400 /, method);
    }
  } finally {
    await server.stop();
  }
});

Deno.test("accept: the 101 is Deno's (RFC 6455 sample accept, the chosen protocol), no extension accepted", async () => {
  const server = serve((request) =>
    upgradeToPort(request, () => ({ message() {}, close() {} }), { protocol: "binary" })
  );
  try {
    const answer = await exchange(server.port, [
      ...UPGRADE,
      "Sec-WebSocket-Protocol: binary",
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ]);
    // What Deno.serve + Deno.upgradeWebSocket answer to the same request, less its Date header.
    assert.equal(
      answer,
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
        "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-protocol: binary\r\n\r\n",
    );
  } finally {
    await server.stop();
  }
});
