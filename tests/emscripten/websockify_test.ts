/**
 * End to end: the real server's `/tcp/HOST:PORT` endpoint with raw WebSocket clients, side by side with
 * Debian's `websockify` (the reference) where the behaviour should match: the `binary` subprotocol, raw
 * bytes both ways, the WebSocket closing when the target closes. Then what wasmnet adds: the policy.
 */

import assert from "node:assert/strict";
import { importHs256Key, signHs256 } from "../../src/auth/mod.ts";
import { Policy } from "../../src/policy/mod.ts";
import { startServer, startTcpEchoServer, startTcpServer } from "../helpers.ts";
import { startWebsockify } from "./reference.ts";

/** Opens a WebSocket like Emscripten's SOCKFS does (subprotocol `binary`, arraybuffer). */
function open(url: string, protocols: string[] = ["binary"]) {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const chunks: Uint8Array[] = [];
  let waiter: (() => void) | undefined;
  ws.onmessage = (e) => {
    chunks.push(new Uint8Array(e.data as ArrayBuffer));
    waiter?.();
  };
  const opened = new Promise<boolean>((resolve) => {
    ws.addEventListener("open", () => resolve(true));
    ws.addEventListener("error", () => resolve(false));
  });
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", (e) => resolve(e)));
  const received = () => chunks.reduce((n, c) => n + c.length, 0);
  return {
    ws,
    opened,
    closed,
    /** Resolves with the first `n` bytes received (all frames concatenated). */
    async read(n: number, ms = 5000): Promise<Uint8Array> {
      const deadline = Date.now() + ms;
      while (received() < n) {
        if (Date.now() > deadline) throw new Error(`only ${received()} of ${n} bytes arrived`);
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 50);
        });
      }
      const all = new Uint8Array(received());
      let at = 0;
      for (const c of chunks) all.set(c, (at += c.length) - c.length);
      return all.subarray(0, n);
    },
  };
}

/** The status line of a raw WebSocket upgrade request (to see refusals a WebSocket client cannot). */
async function upgradeStatus(port: number, path: string, protocol?: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
      ...(protocol ? [`Sec-WebSocket-Protocol: ${protocol}`] : []),
      "",
      "",
    ].join("\r\n");
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

Deno.test("websockify mode: same behaviour as Debian's websockify (binary subprotocol, echo, close on target close)", async () => {
  const echo = startTcpEchoServer();
  const bye = startTcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("bye"));
    conn.close();
  });
  const srv = await startServer(Policy.allowAll());
  const refEcho = await startWebsockify(echo.port);
  const refBye = await startWebsockify(bye.port);
  try {
    const targets = [
      {
        name: "wasmnet",
        echo: `${srv.url}tcp/127.0.0.1:${echo.port}`,
        bye: `${srv.url}tcp/127.0.0.1:${bye.port}`,
      },
      { name: "websockify", echo: refEcho.url, bye: refBye.url },
    ];
    for (const t of targets) {
      const c = open(t.echo);
      assert.equal(await c.opened, true, t.name);
      assert.equal(c.ws.protocol, "binary", `${t.name} answers the binary subprotocol`);
      const payload = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
      for (let i = 0; i < payload.length; i += 50_000) c.ws.send(payload.subarray(i, i + 50_000));
      assert.deepEqual(await c.read(payload.length), payload, `${t.name} echoes raw bytes`);
      c.ws.close();
      await c.closed;

      const b = open(t.bye);
      assert.equal(await b.opened, true);
      assert.equal(new TextDecoder().decode(await b.read(3)), "bye", `${t.name} delivers before closing`);
      const event = await b.closed;
      assert.ok(
        event.code === 1000 || event.code === 1005,
        `${t.name} closes when the target does (${event.code})`,
      );
    }
  } finally {
    await refEcho.stop();
    await refBye.stop();
    await srv.close();
    await echo.close();
    await bye.close();
  }
});

Deno.test("websockify mode: the policy decides, before the upgrade when it can", async () => {
  const denied = startTcpEchoServer();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusedPort = closed.addr.port;
  closed.close();
  const policy = Policy.fromConfig({
    network: { deny: [`127.0.0.1:${denied.port}`, "10.0.0.0/8"], allow: ["*"] },
  });
  const srv = await startServer(policy, {
    resolver: (name) =>
      name === "private.test" ? Promise.resolve(["10.1.1.1"]) : Promise.reject(new Error("no")),
  });
  try {
    // Denied by address: 403 before the upgrade (a browser reports a failed WebSocket, SOCKFS ECONNREFUSED).
    assert.match(await upgradeStatus(srv.port, `/tcp/127.0.0.1:${denied.port}`, "binary"), /^HTTP\/1\.1 403/);
    const c = open(`${srv.url}tcp/127.0.0.1:${denied.port}`);
    assert.equal(await c.opened, false);
    await c.closed;
    assert.equal(denied.accepted, 0, "never dialled");
    // Denied after the lookup: the WebSocket opens, then closes with 1008 and a reason that does not tell
    // the client which inside address the name has (issue 13; the decision log has it).
    const p = open(`${srv.url}tcp/private.test:80`);
    assert.equal(await p.opened, true);
    const pe = await p.closed;
    assert.equal(pe.code, 1008);
    assert.match(pe.reason, /private\.test resolves to an address this server may not connect to/);
    assert.doesNotMatch(pe.reason, /10\.1\.1\.1|10\.0\.0\.0/);
    // Nothing listens: 1011.
    const r = open(`${srv.url}tcp/127.0.0.1:${refusedPort}`);
    const re = await r.closed;
    assert.equal(re.code, 1011);
    assert.match(re.reason, /refused/i);
    // Malformed paths and subprotocols websockify never spoke are refused up front.
    assert.match(await upgradeStatus(srv.port, "/tcp/no-port"), /^HTTP\/1\.1 400/);
    assert.match(await upgradeStatus(srv.port, "/tcp/127.0.0.1:1", "base64"), /^HTTP\/1\.1 400/);
    const ops = srv.decisions.map((d) => `${d.op} ${d.target} ${d.decision}`);
    assert.ok(ops.includes(`websockify 127.0.0.1:${denied.port} deny`), ops.join("\n"));
    assert.ok(ops.includes("websockify private.test:80 deny"), ops.join("\n"));
  } finally {
    await srv.close();
    await denied.close();
  }
});

Deno.test("websockify mode: no subprotocol is fine, text frames close with 1003", async () => {
  const echo = startTcpEchoServer();
  const srv = await startServer(Policy.allowAll());
  try {
    const c = open(`${srv.url}tcp/127.0.0.1:${echo.port}`, []);
    assert.equal(await c.opened, true);
    assert.equal(c.ws.protocol, "");
    c.ws.send(new Uint8Array([1, 2, 3]));
    assert.deepEqual(await c.read(3), new Uint8Array([1, 2, 3]));
    c.ws.send("text");
    assert.equal((await c.closed).code, 1003);
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("websockify mode: socket_idle_timeout_secs closes a silent connection with 1011", async () => {
  const echo = startTcpEchoServer();
  const policy = Policy.fromConfig({ network: { allow: ["*"], deny: [], socket_idle_timeout_secs: 1 } });
  const srv = await startServer(policy);
  try {
    const c = open(`${srv.url}tcp/127.0.0.1:${echo.port}`);
    assert.equal(await c.opened, true);
    const event = await c.closed;
    assert.equal(event.code, 1011);
    assert.match(event.reason, /no traffic/);
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("wsproxy (/wisp/HOST:PORT): socket_idle_timeout_secs closes a silent connection with 1011", async () => {
  const echo = startTcpEchoServer();
  const policy = Policy.fromConfig({ network: { allow: ["*"], deny: [], socket_idle_timeout_secs: 1 } });
  const srv = await startServer(policy);
  try {
    const c = open(`${srv.url}wisp/127.0.0.1:${echo.port}`, []);
    assert.equal(await c.opened, true);
    const event = await c.closed;
    assert.equal(event.code, 1011);
    assert.match(event.reason, /no traffic/);
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("both Emscripten endpoints: [auth] required is enforced before the upgrade; ?token= lets a build in", async () => {
  const SECRET_ENV = "WASMNET_EMSCRIPTEN_TEST_SECRET";
  const secret = "an-emscripten-test-secret-of-more-than-32-bytes";
  Deno.env.set(SECRET_ENV, secret);
  const echo = startTcpEchoServer();
  const srv = await startServer(
    Policy.fromConfig({
      network: { deny: [], allow: ["*"] },
      auth: { required: true, secret_env: SECRET_ENV },
    }),
  );
  try {
    const key = await importHs256Key(new TextEncoder().encode(secret));
    const token = await signHs256({ exp: Math.floor(Date.now() / 1000) + 300 }, key);
    assert.match(await upgradeStatus(srv.port, `/tcp/127.0.0.1:${echo.port}`, "binary"), /^HTTP\/1\.1 401/);
    assert.match(await upgradeStatus(srv.port, "/posix/"), /^HTTP\/1\.1 401/);
    assert.match(await upgradeStatus(srv.port, `/posix/?token=${token}`), /^HTTP\/1\.1 101/);
    const c = open(`${srv.url}tcp/127.0.0.1:${echo.port}?token=${token}`);
    assert.equal(await c.opened, true);
    c.ws.send(new Uint8Array([4, 2]));
    assert.deepEqual(await c.read(2), new Uint8Array([4, 2]));
    c.ws.close();
    await c.closed;
  } finally {
    await srv.close();
    await echo.close();
    Deno.env.delete(SECRET_ENV);
  }
});
