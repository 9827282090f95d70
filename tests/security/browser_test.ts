/**
 * Admission as a real browser meets it (headless Chromium, tests/browser/harness.ts): a token carried as the
 * `wasmnet.token.<jwt>` subprotocol opens a session (Chromium insists on getting an offered protocol back),
 * a badly signed one does not, and a page from an origin not in `allowed_origins` is refused.
 */

import assert from "node:assert/strict";
import { importHs256Key, signHs256 } from "../../src/auth/mod.ts";
import { Policy } from "../../src/policy/mod.ts";
import { runInPage } from "../browser/harness.ts";
import { startServer, startTcpEchoServer } from "../helpers.ts";

const SECRET_ENV = "WASMNET_BROWSER_TEST_SECRET";
const SECRET = "browser-admission-test-secret-0123456789";

Deno.test("browser: token subprotocol accepted, bad token and foreign origin refused", async () => {
  Deno.env.set(SECRET_ENV, SECRET);
  const echo = startTcpEchoServer();
  const open = await startServer(
    Policy.fromConfig({
      network: { deny: [], allow: ["127.0.0.1"] },
      auth: { required: true, secret_env: SECRET_ENV },
    }),
  );
  const strict = await startServer(
    Policy.fromConfig({ server: { allowed_origins: ["https://app.example.com"] } }),
  );
  try {
    const key = await importHs256Key(new TextEncoder().encode(SECRET));
    const good = await signHs256({ sub: "page", exp: Math.floor(Date.now() / 1000) + 120 }, key);
    const otherKey = await importHs256Key(new TextEncoder().encode("not-the-server-secret-0123456789abcdef"));
    const bad = await signHs256({ sub: "page", exp: Math.floor(Date.now() / 1000) + 120 }, otherKey);
    const { result } = await runInPage<Record<string, unknown>>({
      args: { open: open.url, strict: strict.url, good, bad, echoPort: echo.port },
      module: `
        const attempt = (url, protocols, first) => new Promise((resolve) => {
          const ws = new WebSocket(url, protocols);
          const out = { opened: false };
          ws.onopen = () => { out.opened = true; out.protocol = ws.protocol; if (first) ws.send(first); else ws.close(); };
          ws.onmessage = (e) => { out.answer = JSON.parse(e.data); ws.close(); };
          ws.onclose = (e) => { out.code = e.code; resolve(out); };
        });
        export default async ({ open, strict, good, bad, echoPort }) => {
          const connect = JSON.stringify({ op: "connect", id: 1, addr: "127.0.0.1", port: echoPort });
          return {
            good: await attempt(open, ["wasmnet.token." + good], connect),
            bad: await attempt(open, ["wasmnet.token." + bad]),
            none: await attempt(open, []),
            foreign: await attempt(strict, []),
            origin: location.origin,
          };
        };`,
    });
    const r = result as Record<string, Record<string, unknown>>;
    assert.equal(r.good.opened, true, JSON.stringify(r));
    assert.equal(r.good.protocol, `wasmnet.token.${good}`);
    assert.deepEqual(r.good.answer, { ev: "connected", id: 1 });
    assert.equal(r.bad.opened, false);
    assert.equal(r.none.opened, false);
    assert.equal(r.foreign.opened, false);
    const refusals = open.decisions.filter((d) => d.op === "session").map((d) => d.rule);
    assert.deepEqual(refusals, ["auth (bad_signature)", "auth (missing)"]);
    const origin = strict.decisions.find((d) => d.op === "session");
    assert.equal(origin?.rule, "server.allowed_origins");
    assert.match(String(origin?.reason), new RegExp(String(r.origin).replaceAll(".", "\\.")));
  } finally {
    await open.close();
    await strict.close();
    await echo.close();
    Deno.env.delete(SECRET_ENV);
  }
});
