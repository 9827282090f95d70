/**
 * The decision log as an operator reads it: one JSON line per decision to connect, bind or refuse, with
 * session, client IP, target, resolved addresses, decision and rule, and never a payload byte.
 */

import assert from "node:assert/strict";
import { jsonLineLog } from "../../src/core/log.ts";
import { Policy } from "../../src/policy/mod.ts";
import { b64, startServer, startTcpEchoServer, TestClient, unb64 } from "../helpers.ts";

Deno.test("every connect, bind and refusal is one JSON line with the fields an operator needs, and no payload", async () => {
  const lines: string[] = [];
  const echo = startTcpEchoServer();
  const srv = await startServer(
    Policy.fromConfig({
      network: { deny: ["10.0.0.0/8"], allow: ["*"] },
      server: { allowed_origins: ["https://ok.example"] },
    }),
    { log: jsonLineLog((l) => lines.push(l)), resolver: () => Promise.resolve(["127.0.0.1"]) },
  );
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "echo.example", port: echo.port });
    await c.event("connected", 1);
    c.json({ op: "send", id: 1, data: b64("TOP-SECRET-PAYLOAD") });
    assert.equal(unb64((await c.event("data", 1)).data), "TOP-SECRET-PAYLOAD");
    c.json({ op: "connect", id: 2, addr: "10.9.8.7", port: 22 });
    await c.event("denied", 2);
    c.json({ op: "bind", id: 3, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 3);
    const refused = await fetch(srv.url.replace("ws:", "http:"), {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        origin: "https://evil.example",
        "sec-websocket-key": "x",
        "sec-websocket-version": "13",
      },
    });
    await refused.body?.cancel();
    assert.equal(refused.status, 403);
  } finally {
    await c.close();
    await srv.close();
    await echo.close();
  }
  const records = lines.map((l) => JSON.parse(l));
  assert.equal(records.length, 4, lines.join("\n"));
  const [allow, deny, bind, origin] = records;
  assert.deepEqual(
    { ...allow, time: undefined, session: undefined },
    {
      time: undefined,
      session: undefined,
      client: "127.0.0.1",
      op: "connect",
      target: `echo.example:${echo.port}`,
      resolved: ["127.0.0.1"],
      decision: "allow",
      rule: 'network.allow[0] "*"',
    },
  );
  assert.match(allow.session, /^\w+$/);
  assert.ok(!Number.isNaN(Date.parse(allow.time)));
  assert.equal(deny.decision, "deny");
  assert.equal(deny.target, "10.9.8.7:22");
  assert.match(deny.rule, /network\.deny\[0\] "10\.0\.0\.0\/8"/);
  assert.equal(deny.session, allow.session);
  assert.equal(bind.op, "bind");
  assert.equal(bind.decision, "allow");
  assert.equal(origin.op, "session");
  assert.equal(origin.rule, "server.allowed_origins");
  assert.ok(
    !lines.join("\n").includes("TOP-SECRET") && !lines.join("\n").includes(b64("TOP-SECRET-PAYLOAD")),
  );
});
