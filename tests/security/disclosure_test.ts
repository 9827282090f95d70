/**
 * Issue 13, finding 6: a refusal never tells the client what is inside. A name that resolves to
 * 10.20.30.40 is refused on every endpoint that reports reasons (`resolve`, `connect`, `connect_tls`,
 * `connect_udp`, `send_to`, the `/tcp/` close reason) without the address or the blocked range; the
 * decision log keeps both for the operator.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { startServer, TestClient } from "../helpers.ts";

const INSIDE = /10\.20\.30\.40|10\.0\.0\.0|\/8\b/;

Deno.test("refusals by a resolved address never name the address or its range; the log does", async () => {
  const srv = await startServer(Policy.defaults(), {
    resolver: (name) =>
      name === "inside.test" ? Promise.resolve(["10.20.30.40"]) : Promise.reject(new Error("no such name")),
  });
  const c = new TestClient(srv.url);
  try {
    await c.opened;
    c.json({ op: "resolve", id: 1, name: "inside.test" });
    c.json({ op: "connect", id: 2, addr: "inside.test", port: 80 });
    c.json({ op: "connect_tls", id: 3, addr: "inside.test", port: 443 });
    c.json({ op: "connect_udp", id: 4, addr: "inside.test", port: 53 });
    for (const id of [1, 2, 3, 4]) {
      const ev = await c.next((m) => m.id === id && (m.ev === "denied" || m.ev === "error"));
      const text = JSON.stringify(ev);
      assert.match(text, /inside\.test/, `the client hears which of its names was refused: ${text}`);
      assert.doesNotMatch(text, INSIDE, `id ${id} discloses: ${text}`);
    }
    const logged = srv.decisions.filter((d) => d.target.startsWith("inside.test") && d.decision === "deny");
    assert.ok(logged.length >= 4, JSON.stringify(srv.decisions));
    for (const d of logged) assert.match(d.reason ?? "", /10\.20\.30\.40.*10\.0\.0\.0\/8/);
    // Everything the session got, binary included, is free of the address.
    for (const m of c.messages) {
      const text = m instanceof Uint8Array ? new TextDecoder().decode(m) : JSON.stringify(m);
      assert.doesNotMatch(text, INSIDE);
    }
  } finally {
    await c.close();
    await srv.close();
  }
});
