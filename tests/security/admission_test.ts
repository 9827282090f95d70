/**
 * Who may open a session, end to end: origins (403), tokens (401; good ones narrow the session), and the
 * session caps (503 global, 429 per client IP), all answered before the upgrade; plus: no secret and no
 * token ever reaches the log.
 */

import assert from "node:assert/strict";
import { importHs256Key, signHs256, TOKEN_PROTOCOL_PREFIX } from "../../src/auth/mod.ts";
import { Policy } from "../../src/policy/mod.ts";
import { b64, startServer, startTcpEchoServer, TestClient, unb64 } from "../helpers.ts";
import { handshakeStatus, rawHandshake } from "./raw_ws.ts";

const SECRET_ENV = "WASMNET_SECURITY_TEST_SECRET";
const SECRET = "this-is-a-test-secret-of-more-than-32-bytes";

async function token(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  const key = await importHs256Key(new TextEncoder().encode(secret));
  return signHs256({ exp: Math.floor(Date.now() / 1000) + 300, ...claims }, key);
}

async function withAuthServer(
  body: (srv: Awaited<ReturnType<typeof startServer>>) => Promise<void>,
  network: Record<string, unknown> = { deny: [], allow: ["*"] },
  required = true,
) {
  Deno.env.set(SECRET_ENV, SECRET);
  const srv = await startServer(
    Policy.fromConfig({ network, auth: { required, secret_env: SECRET_ENV } }),
  );
  try {
    await body(srv);
  } finally {
    await srv.close();
    Deno.env.delete(SECRET_ENV);
  }
}

Deno.test("origins: a listed origin and no origin are let in, another origin gets 403 before the upgrade", async () => {
  const srv = await startServer(
    Policy.fromConfig({ server: { allowed_origins: ["https://app.example.com"] } }),
  );
  try {
    assert.equal(await handshakeStatus(srv.port, "/", { Origin: "https://app.example.com" }), 101);
    assert.equal(await handshakeStatus(srv.port, "/", { Origin: "https://evil.example.net" }), 403);
    assert.equal(await handshakeStatus(srv.port, "/", { Origin: "null" }), 403);
    assert.equal(await handshakeStatus(srv.port, "/wisp/", { Origin: "https://evil.example.net" }), 403);
    assert.equal(await handshakeStatus(srv.port, "/"), 101, "no Origin: not a browser, allowed by default");
    const refused = srv.decisions.filter((d) => d.op === "session");
    assert.equal(refused.length, 3);
    assert.ok(refused.every((d) => d.decision === "deny" && d.rule === "server.allowed_origins"));
  } finally {
    await srv.close();
  }
  const strict = await startServer(Policy.fromConfig({ server: { require_origin: true } }));
  try {
    assert.equal(await handshakeStatus(strict.port, "/"), 403);
    assert.equal(await handshakeStatus(strict.port, "/", { Origin: "https://any.example" }), 101);
  } finally {
    await strict.close();
  }
});

Deno.test("tokens: good in the URL or as a subprotocol; bad signature, expired, malformed, missing get 401", async () => {
  await withAuthServer(async (srv) => {
    const good = await token({ sub: "alice" });
    const viaQuery = new TestClient(`${srv.url}?token=${good}`);
    await viaQuery.opened;
    await viaQuery.close();
    const viaProtocol = new TestClient(srv.url, [`${TOKEN_PROTOCOL_PREFIX}${good}`]);
    await viaProtocol.opened;
    assert.equal(
      viaProtocol.ws.protocol,
      `${TOKEN_PROTOCOL_PREFIX}${good}`,
      "the handshake answers the offered protocol",
    );
    await viaProtocol.close();
    const withOther = new TestClient(srv.url, ["wasmnet", `${TOKEN_PROTOCOL_PREFIX}${good}`]);
    await withOther.opened;
    assert.notEqual(withOther.ws.protocol, "", "some offered protocol is answered");
    await withOther.close();

    const badSig = await token({ sub: "mallory" }, "a-different-secret-that-is-long-enough!!");
    const expired = await token({ exp: Math.floor(Date.now() / 1000) - 600 });
    const noExp = (await token({})).length > 0 ? await signNoExp() : "";
    assert.equal(await handshakeStatus(srv.port, `/?token=${badSig}`), 401);
    assert.equal(await handshakeStatus(srv.port, `/?token=${expired}`), 401);
    assert.equal(await handshakeStatus(srv.port, `/?token=${noExp}`), 401);
    assert.equal(await handshakeStatus(srv.port, `/?token=not.a.jwt`), 401);
    assert.equal(await handshakeStatus(srv.port, "/"), 401);
    assert.equal(
      await handshakeStatus(srv.port, "/", { "Sec-WebSocket-Protocol": `${TOKEN_PROTOCOL_PREFIX}${badSig}` }),
      401,
    );
    assert.equal(
      await handshakeStatus(srv.port, `/wisp/?token=${expired}`),
      401,
      "every endpoint is guarded",
    );
    // Two tokens (URL and subprotocol): both must be valid; a good one does not cover an expired one.
    assert.equal(
      await handshakeStatus(srv.port, `/?token=${good}`, {
        "Sec-WebSocket-Protocol": `${TOKEN_PROTOCOL_PREFIX}${expired}`,
      }),
      401,
    );
    assert.equal(
      await handshakeStatus(srv.port, `/?token=${expired}`, {
        "Sec-WebSocket-Protocol": `${TOKEN_PROTOCOL_PREFIX}${good}`,
      }),
      401,
    );
    assert.equal(
      await handshakeStatus(srv.port, `/?token=${good}`, {
        "Sec-WebSocket-Protocol": `${TOKEN_PROTOCOL_PREFIX}${good}`,
      }),
      101,
    );
    const tampered = good.split(".");
    tampered[1] = b64(JSON.stringify({ sub: "alice", exp: 9999999999, wasmnet: {} })).replaceAll("=", "");
    assert.equal(await handshakeStatus(srv.port, `/?token=${tampered.join(".")}`), 401);

    const reasons = srv.decisions.filter((d) => d.op === "session").map((d) => d.rule);
    assert.ok(
      reasons.includes("auth (bad_signature)") && reasons.includes("auth (expired)") &&
        reasons.includes("auth (missing)"),
    );
    const logged = JSON.stringify(srv.decisions);
    assert.ok(!logged.includes(SECRET), "the secret is never logged");
    for (const t of [good, badSig, expired]) {
      assert.ok(!logged.includes(t.split(".")[2]), "tokens are never logged");
    }
  });
});

async function signNoExp(): Promise<string> {
  const key = await importHs256Key(new TextEncoder().encode(SECRET));
  return signHs256({ sub: "forever" }, key);
}

Deno.test("token claims narrow the session: targets and max_connections; never widen the policy", async () => {
  const echo = startTcpEchoServer();
  const other = startTcpEchoServer("127.0.0.2");
  try {
    await withAuthServer(
      async (srv) => {
        const t = await token({ wasmnet: { targets: ["127.0.0.1"], max_connections: 2 } });
        const c = new TestClient(`${srv.url}?token=${t}`);
        try {
          await c.opened;
          c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
          await c.event("connected", 1);
          c.json({ op: "send", id: 1, data: b64("narrow") });
          assert.equal(unb64((await c.event("data", 1)).data), "narrow");
          c.json({ op: "connect", id: 2, addr: "127.0.0.2", port: other.port });
          const denied = await c.event("denied", 2);
          assert.equal(denied.code, "POLICY_DENIED");
          assert.match(denied.msg as string, /token/);
          c.json({ op: "connect", id: 3, addr: "127.0.0.1", port: echo.port });
          await c.event("connected", 3);
          c.json({ op: "connect", id: 4, addr: "127.0.0.1", port: echo.port });
          assert.equal((await c.event("error", 4)).code, "LIMIT_EXCEEDED");
          const d = srv.decisions.find((r) => r.op === "connect" && r.decision === "deny")!;
          assert.equal(d.rule, "token.targets");
        } finally {
          await c.close();
        }
      },
      { deny: [], allow: ["*"] },
      true,
    );

    await withAuthServer(
      async (srv) => {
        const plain = new TestClient(srv.url);
        const widen = new TestClient(
          `${srv.url}?token=${await token({ wasmnet: { targets: ["127.0.0.0/8"], max_connections: 500 } })}`,
        );
        try {
          await plain.opened;
          plain.json({ op: "connect", id: 1, addr: "127.0.0.2", port: other.port });
          await plain.event("connected", 1);
          await widen.opened;
          // The policy denies 127.0.0.0/8; a token naming it does not widen anything.
          widen.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
          const denied = await widen.event("denied", 1);
          assert.match(String(srv.decisions.at(-1)?.rule), /network\.deny\[0\]/);
          assert.equal(denied.code, "POLICY_DENIED");
        } finally {
          await plain.close();
          await widen.close();
        }
      },
      { deny: ["127.0.0.1"], allow: ["*"] },
      false,
    );
  } finally {
    await echo.close();
    await other.close();
  }
});

Deno.test("session caps: the server's max_sessions (503) and max_sessions_per_ip (429), released when sessions end", async () => {
  const srv = await startServer(Policy.fromConfig({ server: { max_sessions: 2, max_sessions_per_ip: 2 } }));
  try {
    const a = new TestClient(srv.url);
    const b = new TestClient(srv.url);
    await a.opened;
    await b.opened;
    assert.equal(await handshakeStatus(srv.port), 503);
    await a.close();
    await waitFor(() => srv.server.sessionCount === 1);
    const c = new TestClient(srv.url);
    await c.opened;
    assert.equal(await handshakeStatus(srv.port, "/wisp/"), 503);
    await b.close();
    await c.close();
    await waitFor(() => srv.server.sessionCount === 0);
    // Refused and failed upgrades hold no slot: two new sessions fit again.
    const d = new TestClient(srv.url);
    const e = new TestClient(srv.url);
    await d.opened;
    await e.opened;
    await d.close();
    await e.close();
  } finally {
    await srv.close();
  }
  const perIp = await startServer(
    Policy.fromConfig({ server: { max_sessions: 100, max_sessions_per_ip: 1 } }),
  );
  try {
    const a = new TestClient(perIp.url);
    await a.opened;
    const h = await rawHandshake(perIp.port);
    h.conn.close();
    assert.equal(h.status, 429);
    assert.match(h.headers.toLowerCase(), /retry-after/);
    assert.equal(perIp.decisions.at(-1)?.rule, "server.max_sessions_per_ip");
    await a.close();
    await waitFor(() => perIp.server.sessionCount === 0);
    const b = new TestClient(perIp.url);
    await b.opened;
    await b.close();
  } finally {
    await perIp.close();
  }
});

/** Polls `cond` every 10 ms for up to 3 s. */
export async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("trusted_proxies: behind a trusted proxy, per-IP caps and the log count X-Forwarded-For; otherwise the peer", async () => {
  const behindProxy = await startServer(
    Policy.fromConfig({ server: { max_sessions_per_ip: 1, trusted_proxies: ["127.0.0.1"] } }),
  );
  try {
    const a = await rawHandshake(behindProxy.port, "/", { "X-Forwarded-For": "198.51.100.1" });
    const b = await rawHandshake(behindProxy.port, "/", { "X-Forwarded-For": "198.51.100.2" });
    assert.deepEqual([a.status, b.status], [101, 101], "two browsers behind one proxy are two clients");
    const again = await rawHandshake(behindProxy.port, "/", { "X-Forwarded-For": "6.6.6.6, 198.51.100.1" });
    assert.equal(again.status, 429, "the same browser again, whatever it wrote itself");
    assert.equal(behindProxy.decisions.at(-1)?.client, "198.51.100.1");
    const viaForwarded = await rawHandshake(behindProxy.port, "/", { Forwarded: 'for="198.51.100.2:5555"' });
    assert.equal(viaForwarded.status, 429, "RFC 7239 Forwarded names the same second browser");
    assert.equal(behindProxy.decisions.at(-1)?.client, "198.51.100.2");
    for (const h of [a, b, again, viaForwarded]) h.conn.close();
  } finally {
    await behindProxy.close();
  }
  const untrusted = await startServer(Policy.fromConfig({ server: { max_sessions_per_ip: 1 } }));
  try {
    const a = await rawHandshake(untrusted.port, "/", { "X-Forwarded-For": "198.51.100.1" });
    const b = await rawHandshake(untrusted.port, "/", { "X-Forwarded-For": "198.51.100.2" });
    assert.deepEqual([a.status, b.status], [101, 429], "without trusted_proxies the header is ignored");
    assert.equal(untrusted.decisions.at(-1)?.client, "127.0.0.1");
    for (const h of [a, b]) h.conn.close();
  } finally {
    await untrusted.close();
  }
});
