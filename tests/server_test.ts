/**
 * End to end: the real server, real TCP peers on loopback, a raw WebSocket client speaking the protocol
 * exactly as docs/protocol.md describes it.
 */

import assert from "node:assert/strict";
import { Policy } from "../src/policy/mod.ts";
import { SERVER_ID_BASE } from "@wasmnet/protocol";
import { decodeBinaryEvent, encodeBinaryRequest } from "@wasmnet/protocol";
import {
  b64,
  startEofCountingPeer,
  startServer,
  startTcpEchoServer,
  startTcpServer,
  TestClient,
  unb64,
} from "./helpers.ts";

/** Runs `body` with a server, an echo peer and a connected client, and stops them all. */
async function withSession(
  body: (
    c: TestClient,
    echo: { port: number },
    srv: Awaited<ReturnType<typeof startServer>>,
  ) => Promise<void>,
  policy = Policy.allowAll(),
) {
  const srv = await startServer(policy);
  const echo = startTcpEchoServer();
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    await body(c, echo, srv);
  } finally {
    await c.close();
    await echo.close();
    await srv.close();
  }
}

Deno.test("connect, send, data, close over JSON", async () => {
  await withSession(async (c, echo) => {
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    assert.deepEqual(await c.event("connected", 1), { ev: "connected", id: 1 });
    c.json({ op: "send", id: 1, data: b64("hello wasmnet") });
    const data = await c.event("data", 1);
    assert.equal(unb64(data.data), "hello wasmnet");
    c.json({ op: "close", id: 1 });
    assert.deepEqual(await c.event("closed", 1), { ev: "closed", id: 1 });
  });
});

Deno.test("1 MiB arrives intact and in order", async () => {
  await withSession(async (c, echo) => {
    const total = 1024 * 1024;
    const sent = new Uint8Array(total);
    for (let i = 0; i < total; i++) sent[i] = (i * 31 + (i >> 8)) & 0xff;
    c.json({ op: "connect", id: 7, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 7);
    for (let off = 0; off < total; off += 60_000) {
      c.json({ op: "send", id: 7, data: b64(sent.subarray(off, Math.min(total, off + 60_000))) });
    }
    const got = new Uint8Array(total);
    let n = 0;
    while (n < total) {
      const d = Uint8Array.fromBase64((await c.event("data", 7)).data as string);
      got.set(d, n);
      n += d.length;
    }
    assert.equal(n, total);
    assert.deepEqual(got, sent);
  });
});

Deno.test("data sent before connected is queued and written once connected", async () => {
  await withSession(async (c, echo) => {
    c.json({ op: "connect", id: 2, addr: "127.0.0.1", port: echo.port });
    c.json({ op: "send", id: 2, data: b64("early ") });
    c.json({ op: "send", id: 2, data: b64("bytes") });
    await c.event("connected", 2);
    let text = "";
    while (text.length < "early bytes".length) text += unb64((await c.event("data", 2)).data);
    assert.equal(text, "early bytes");
  });
});

Deno.test("connect, send and close pipelined: the bytes are written before the socket closes", async () => {
  const received = Promise.withResolvers<string>();
  const peer = startTcpServer(async (conn) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of conn.readable) chunks.push(chunk);
    received.resolve(new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c]))));
  });
  await withSession(async (c) => {
    c.json({ op: "connect", id: 3, addr: "127.0.0.1", port: peer.port });
    c.json({ op: "send", id: 3, data: b64("all of it") });
    c.json({ op: "close", id: 3 });
    await c.event("connected", 3);
    await c.event("closed", 3);
    assert.equal(await received.promise, "all of it");
  });
  await peer.close();
});

Deno.test("a remote close is reported as closed, after the data the peer sent", async () => {
  const peer = startTcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("bye"));
    conn.close();
  });
  await withSession(async (c) => {
    c.json({ op: "connect", id: 4, addr: "127.0.0.1", port: peer.port });
    await c.event("connected", 4);
    assert.equal(unb64((await c.event("data", 4)).data), "bye");
    await c.event("closed", 4);
    // The id is free again: reuse it.
    c.json({ op: "send", id: 4, data: b64("x") });
    const err = await c.event("error", 4);
    assert.equal(err.code, "UNKNOWN_ID");
  });
  await peer.close();
});

Deno.test("shutdown (both framings): the peer reads end-of-stream, its answer still arrives, then closed", async () => {
  const peer = startEofCountingPeer();
  await withSession(async (c) => {
    // JSON: what was sent before the shutdown is written first; a send after it is refused.
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: peer.port });
    await c.event("connected", 1);
    c.json({ op: "send", id: 1, data: b64("hello") });
    c.json({ op: "shutdown", id: 1 });
    c.json({ op: "send", id: 1, data: b64("late") });
    const refused = await c.event("error", 1);
    assert.equal(refused.code, "SEND_FAILED");
    assert.match(String(refused.msg), /shut down/);
    assert.equal(unb64((await c.event("data", 1)).data), "got 5");
    await c.event("closed", 1);
    // Binary, shut down right after the connect was asked for (before it completed).
    c.raw(encodeBinaryRequest({ op: "connect", id: 2, addr: "127.0.0.1", port: peer.port }));
    c.raw(encodeBinaryRequest({ op: "send", id: 2, data: new Uint8Array(3000) }));
    c.raw(encodeBinaryRequest({ op: "shutdown", id: 2 }));
    const data = decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x82));
    assert.deepEqual(data.ev === "data" && new TextDecoder().decode(data.data), "got 3000");
    assert.deepEqual(decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x85)), { ev: "closed", id: 2 });
    // Not a TCP socket, or no socket at all.
    c.json({ op: "bind", id: 3, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 3);
    c.json({ op: "shutdown", id: 3 });
    assert.equal((await c.event("error", 3)).code, "BAD_REQUEST");
    c.json({ op: "shutdown", id: 99 });
    assert.equal((await c.event("error", 99)).code, "UNKNOWN_ID");
  });
  await peer.close();
});

Deno.test("bind, accept with data both ways; closing the listener keeps accepted connections", async () => {
  await withSession(async (c) => {
    c.json({ op: "bind", id: 10, addr: "127.0.0.1", port: 0 });
    const listening = await c.event("listening", 10);
    const port = listening.port as number;
    assert.ok(port > 0);
    c.json({ op: "listen", id: 10, backlog: 16 }); // compat no-op: no event, no error
    const outside = await Deno.connect({ hostname: "127.0.0.1", port });
    const accepted = await c.event("accepted", 10);
    const connId = accepted.conn_id as number;
    assert.ok(connId >= SERVER_ID_BASE, "server-chosen ids come from the reserved range");
    assert.match(accepted.remote as string, /^127\.0\.0\.1:\d+$/);
    await outside.write(new TextEncoder().encode("ping"));
    assert.equal(unb64((await c.event("data", connId)).data), "ping");
    c.json({ op: "close", id: 10 });
    await c.event("closed", 10);
    c.json({ op: "send", id: connId, data: b64("pong") });
    const buf = new Uint8Array(16);
    const n = await outside.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "pong");
    // The listener is gone: a new connection is refused.
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
    outside.close();
    await c.event("closed", connId);
    assert.equal(c.messages.filter((m) => !(m instanceof Uint8Array) && m.ev === "error").length, 0);
  });
});

Deno.test("binary framing: connect, data, close, and mixing with JSON in one session", async () => {
  await withSession(async (c, echo) => {
    c.raw(encodeBinaryRequest({ op: "connect", id: 5, addr: "127.0.0.1", port: echo.port }));
    assert.deepEqual(decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x81)), { ev: "connected", id: 5 });
    c.raw(encodeBinaryRequest({ op: "send", id: 5, data: new Uint8Array([1, 2, 3, 250]) }));
    const data = decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x82));
    assert.deepEqual(data, { ev: "data", id: 5, data: new Uint8Array([1, 2, 3, 250]) });
    // A JSON request on the same session is answered in JSON.
    c.json({ op: "connect", id: 6, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 6);
    c.raw(encodeBinaryRequest({ op: "close", id: 5 }));
    assert.deepEqual(decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x85)), { ev: "closed", id: 5 });
    // Binary bind: listening carries the real port.
    c.raw(encodeBinaryRequest({ op: "bind", id: 8, addr: "127.0.0.1", port: 0 }));
    const listening = decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x83));
    assert.equal(listening.ev, "listening");
    assert.ok(listening.ev === "listening" && listening.port > 0);
  });
});

Deno.test("policy outcomes: allowed, denied by a rule, denied by default, each logged with its rule", async () => {
  const policy = Policy.fromConfig({ network: { deny: ["127.0.0.2/32", "*"], allow: ["127.0.0.1"] } });
  await withSession(async (c, echo, srv) => {
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 1);
    c.json({ op: "connect", id: 2, addr: "127.0.0.2", port: echo.port });
    const byRule = await c.event("denied", 2);
    assert.equal(byRule.code, "POLICY_DENIED");
    c.json({ op: "connect", id: 3, addr: "127.0.0.3", port: echo.port });
    const byDefault = await c.event("denied", 3);
    assert.equal(byDefault.code, "POLICY_DENIED");
    const rules = srv.decisions.filter((d) => d.op === "connect").map((d) => [d.decision, d.rule]);
    assert.equal(rules.length, 3);
    assert.equal(rules[0][0], "allow");
    assert.match(rules[1][1], /127\.0\.0\.2\/32/);
    assert.equal(rules[2][0], "deny");
    assert.doesNotMatch(rules[2][1], /127\.0\.0\.2/);
  }, policy);
});

Deno.test("the default policy refuses loopback, and a refused id can be reused", async () => {
  await withSession(async (c, echo) => {
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    assert.equal((await c.event("denied", 1)).code, "POLICY_DENIED");
    c.json({ op: "connect", id: 1, addr: "localhost", port: echo.port });
    assert.equal((await c.event("denied", 1)).code, "POLICY_DENIED");
    assert.equal(echo.port > 0, true);
  }, Policy.defaults());
});

Deno.test("a hostname is resolved once and the connection goes to the vetted address", async () => {
  let lookups = 0;
  const resolver = () => Promise.resolve(++lookups === 1 ? ["127.0.0.1"] : ["127.0.0.2"]);
  const srv = await startServer(Policy.fromConfig({ network: { deny: ["127.0.0.2/32"], allow: ["*"] } }), {
    resolver,
  });
  const echo = startTcpEchoServer();
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "rebind.test", port: echo.port });
    await c.event("connected", 1);
    assert.equal(lookups, 1);
    assert.equal(echo.accepted, 1);
    const d = srv.decisions.find((r) => r.op === "connect")!;
    assert.deepEqual(d.resolved, ["127.0.0.1"]);
    c.json({ op: "connect", id: 2, addr: "rebind.test", port: echo.port });
    assert.equal((await c.event("denied", 2)).code, "POLICY_DENIED");
  } finally {
    await c.close();
    await echo.close();
    await srv.close();
  }
});

Deno.test("connect timeout: a peer that never completes the handshake", async () => {
  // A listener with a backlog of 0 that never accepts: after the first connection fills the backlog,
  // further SYNs are dropped and connects hang.
  const py = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,time\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen(0);print(s.getsockname()[1],flush=True);time.sleep(60)",
    ],
    stdout: "piped",
  }).spawn();
  const reader = py.stdout.getReader();
  const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  const filler = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await withSession(async (c) => {
      c.json({ op: "connect", id: 1, addr: "127.0.0.1", port });
      const started = Date.now();
      const err = await c.event("error", 1, 10_000);
      assert.equal(err.code, "CONNECT_TIMEOUT");
      assert.ok(Date.now() - started >= 900, "the timeout is connection_timeout_secs, not immediate");
      // A close while the connect is in flight, with nothing sent: the dial is cancelled at once.
      c.json({ op: "connect", id: 2, addr: "127.0.0.1", port });
      c.json({ op: "close", id: 2 });
      await c.event("closed", 2);
      await new Promise((r) => setTimeout(r, 1200)); // past the connect timeout
      assert.equal(
        c.messages.filter((m) => !(m instanceof Uint8Array) && m.id === 2).length,
        0,
        "no error after closed",
      );
    }, Policy.fromConfig({ network: { deny: [], allow: ["*"], connection_timeout_secs: 1 } }));
  } finally {
    filler.close();
    py.kill();
    await py.status;
    await py.stdout.cancel().catch(() => {});
  }
});

Deno.test("connection refused is an error with CONNECT_FAILED", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  await withSession(async (c) => {
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port });
    const err = await c.event("error", 1);
    assert.equal(err.code, "CONNECT_FAILED");
    assert.match(err.msg as string, /127\.0\.0\.1/);
  });
});

Deno.test("max_connections counts sockets and listeners per session", async () => {
  await withSession(async (c, echo) => {
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    c.json({ op: "bind", id: 2, addr: "127.0.0.1", port: 0 });
    await c.event("connected", 1);
    await c.event("listening", 2);
    c.json({ op: "connect", id: 3, addr: "127.0.0.1", port: echo.port });
    assert.equal((await c.event("error", 3)).code, "LIMIT_EXCEEDED");
    c.json({ op: "close", id: 1 });
    await c.event("closed", 1);
    c.json({ op: "connect", id: 3, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 3);
  }, Policy.fromConfig({ network: { deny: [], allow: ["*"], max_connections: 2 } }));
});

Deno.test("bind_ports: a port outside the range is denied; port 0 gets one inside it", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const free = probe.addr.port;
  probe.close();
  await withSession(
    async (c) => {
      c.json({ op: "bind", id: 1, addr: "127.0.0.1", port: free === 65000 ? 65001 : 65000 });
      assert.equal((await c.event("denied", 1)).code, "POLICY_DENIED");
      c.json({ op: "bind", id: 2, addr: "127.0.0.1", port: 0 });
      assert.equal((await c.event("listening", 2)).port, free);
    },
    Policy.fromConfig({
      network: { deny: [], allow: ["*"], bind_ports: String(free), bind_addrs: ["127.0.0.1"] },
    }),
  );
});

Deno.test("malformed messages each get an error with a clear msg, and the session goes on", async () => {
  await withSession(async (c, echo) => {
    const cases: [string | Uint8Array, RegExp, string][] = [
      ["not json", /not valid JSON/, "BAD_REQUEST"],
      ["[1,2]", /JSON object/, "BAD_REQUEST"],
      ['{"id":1}', /"op"/, "BAD_REQUEST"],
      ['{"op":"connect","id":-1,"addr":"x","port":1}', /"id"/, "BAD_REQUEST"],
      ['{"op":"connect","id":"1","addr":"x","port":1}', /"id"/, "BAD_REQUEST"],
      ['{"op":"connect","id":1,"port":1}', /"addr"/, "BAD_REQUEST"],
      ['{"op":"connect","id":1,"addr":"x","port":70000}', /"port"/, "BAD_REQUEST"],
      ['{"op":"send","id":1,"data":"***"}', /base64/, "BAD_REQUEST"],
      ['{"op":"send","id":1,"data":5}', /base64/, "BAD_REQUEST"],
      ['{"op":"explode","id":1}', /unknown op/, "UNKNOWN_OP"],
      ['{"op":"send","id":99,"data":""}', /no socket with id 99/, "UNKNOWN_ID"],
      ['{"op":"close","id":99}', /no socket with id 99/, "UNKNOWN_ID"],
      [`{"op":"connect","id":${SERVER_ID_BASE},"addr":"127.0.0.1","port":1}`, /reserved/, "BAD_REQUEST"],
      [new Uint8Array([1, 0, 0]), /shorter than the 9-byte header/, "BAD_REQUEST"],
      [new Uint8Array([0x7f, 0, 0, 0, 0, 0, 0, 0, 1]), /unknown binary request type 0x7f/, "UNKNOWN_OP"],
      [new Uint8Array([0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0]), /port/, "BAD_REQUEST"],
      [
        new Uint8Array([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 80, 0x41]),
        /2\^53/,
        "BAD_REQUEST",
      ],
    ];
    for (const [message, msg, code] of cases) {
      c.raw(message);
      if (typeof message === "string") {
        const err = await c.event("error");
        assert.match(err.msg as string, msg, `for ${message}`);
        assert.equal(err.code, code, `for ${message}`);
      } else {
        const err = decodeBinaryEvent(await c.nextBinary((m) => m[0] === 0x86));
        assert.ok(err.ev === "error");
        assert.match(err.msg, msg);
      }
    }
    // A duplicate id: the first socket is unharmed.
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 1);
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    assert.equal((await c.event("error", 1)).code, "DUPLICATE_ID");
    c.json({ op: "send", id: 1, data: b64("still here") });
    assert.equal(unb64((await c.event("data", 1)).data), "still here");
  });
});

Deno.test("graceful shutdown closes sessions with 1001 and their sockets", async () => {
  const srv = await startServer();
  const gotEof = Promise.withResolvers<void>();
  const peer = startTcpServer(async (conn) => {
    for await (const _ of conn.readable) { /* until EOF */ }
    gotEof.resolve();
  });
  const c = new TestClient(srv.url);
  await c.opened;
  c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: peer.port });
  await c.event("connected", 1);
  await srv.close();
  const ev = await c.closed;
  assert.equal(ev.code, 1001);
  await gotEof.promise; // the TCP socket was closed by the server
  await peer.close();
});

Deno.test("a plain HTTP request gets 426 with a pointer to the protocol", async () => {
  const srv = await startServer();
  try {
    const res = await fetch(srv.url.replace("ws:", "http:"));
    assert.equal(res.status, 426);
    assert.match(await res.text(), /WebSocket/);
  } finally {
    await srv.close();
  }
});
