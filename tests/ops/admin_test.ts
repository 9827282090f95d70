/**
 * The admin listener: off unless asked, loopback when only a port is given, every path and method, the
 * bearer token on the paths that carry data (and not on health checks), `/readyz` with a readiness check.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { parseListenAddress } from "../../src/policy/config.ts";
import { Server } from "../../src/server.ts";
import { promtoolCheck, startOpsServer } from "./ops_helpers.ts";

const TOKEN = "a-test-admin-token-of-at-least-32-bytes";

async function get(url: string, headers: Record<string, string> = {}, method = "GET") {
  const res = await fetch(url, { headers, method });
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") ?? "" };
}

Deno.test("admin: off unless asked", async () => {
  const ac = new AbortController();
  const running = await Server.builder().host("127.0.0.1").port(0).log(() => {}).build().serve({
    signal: ac.signal,
  });
  assert.equal(running.admin, undefined);
  ac.abort();
  await running.finished;
});

Deno.test("admin: a bare port means loopback; HOST:PORT and [v6]:PORT as written", () => {
  assert.deepEqual(parseListenAddress("9090"), { hostname: "127.0.0.1", port: 9090 });
  assert.deepEqual(parseListenAddress("0.0.0.0:9090"), { hostname: "0.0.0.0", port: 9090 });
  assert.deepEqual(parseListenAddress("[::1]:9090"), { hostname: "::1", port: 9090 });
  for (const bad of ["", "host:", ":9090", "99999", "a b:1", "[::1]", "1.2.3.4:70000"]) {
    assert.equal(parseListenAddress(bad), null, bad);
  }
  assert.throws(() => Policy.fromToml('[admin]\nlisten = "nope:x"\n', "p.toml"), /admin\.listen/);
  assert.throws(
    () => Policy.fromToml('[admin]\ntoken_env = "A"\ntoken_file = "/x"\n', "p.toml"),
    /either admin.token_env or admin.token_file/,
  );
});

Deno.test("admin: every path, with the token where data is served", async () => {
  const srv = await startOpsServer(Policy.allowAll(), { token: TOKEN });
  try {
    assert.equal((await get(`${srv.admin}/healthz`)).status, 200, "health checks need no token");
    assert.equal((await get(`${srv.admin}/readyz`)).body, "ready\n");
    const page = await get(`${srv.admin}/status`);
    assert.equal(page.status, 200);
    assert.match(page.type, /text\/html/);
    assert.match(page.body, /<title>wasmnet status<\/title>/);

    for (const path of ["/metrics", "/status.json"]) {
      assert.equal((await get(`${srv.admin}${path}`)).status, 401, `${path} without a token`);
      assert.equal((await get(`${srv.admin}${path}`, { authorization: "Bearer wrong" })).status, 401);
      assert.equal(
        (await get(`${srv.admin}${path}`, { authorization: `Bearer ${TOKEN}x` })).status,
        401,
        "a longer token is not the token",
      );
    }
    const metrics = await get(`${srv.admin}/metrics`, { authorization: `Bearer ${TOKEN}` });
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /text\/plain; version=0\.0\.4/);
    assert.match(metrics.body, /^wasmnet_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
    assert.match(metrics.body, /^process_resident_memory_bytes \d+$/m);
    assert.match(metrics.body, /^wasmnet_event_loop_delay_seconds_count \d+$/m);
    assert.doesNotMatch(metrics.body, /nodejs_/, "no default Node.js metrics");
    const checked = await promtoolCheck(metrics.body);
    assert.equal(checked.code, 0, checked.output);
    const status = JSON.parse(
      (await get(`${srv.admin}/status.json`, { authorization: `Bearer ${TOKEN}` })).body,
    );
    assert.equal(status.totals.sessions_open, 0);
    assert.equal(status.draining, false);

    assert.equal((await get(`${srv.admin}/nope`)).status, 404);
    assert.equal((await get(`${srv.admin}/metrics`, {}, "POST")).status, 405);
  } finally {
    await srv.close();
  }
});

Deno.test("admin: /readyz is 503 while a readiness check fails, and while draining", async () => {
  const srv = await startOpsServer();
  try {
    let storeUp = false;
    srv.server.addReadinessCheck("store", () => (storeUp ? null : "unreachable"));
    const down = await get(`${srv.admin}/readyz`);
    assert.equal(down.status, 503);
    assert.equal(down.body, "not ready: store: unreachable\n");
    storeUp = true;
    assert.equal((await get(`${srv.admin}/readyz`)).status, 200);
    await srv.server.drain(0);
    const draining = await get(`${srv.admin}/readyz`);
    assert.equal(draining.status, 503);
    assert.equal(draining.body, "not ready: draining\n");
    assert.equal((await get(`${srv.admin}/healthz`)).status, 200, "alive while draining");
  } finally {
    await srv.close();
  }
});
