/**
 * Policy reload on SIGHUP with a session open: a valid file takes effect for the next decision of that
 * session (opened before the reload) without cutting its open socket; an invalid file is refused with the
 * same error start-up prints, the old policy stays, and the failure is logged and counted. Settings that
 * cannot change live are named.
 */

import assert from "node:assert/strict";
import { b64, startTcpEchoServer, TestClient, unb64 } from "../helpers.ts";
import { scrape, seriesValue, spawnWithAdmin, until } from "./ops_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function policy(allowPort: number, extra = ""): string {
  return `[network]\ndeny = []\nallow = ["127.0.0.1:${allowPort}"]\n[admin]\nlisten = "0"\n${extra}`;
}

Deno.test("reload: SIGHUP applies a valid file to an open session, refuses an invalid one and keeps the old", async () => {
  const dir = await Deno.makeTempDir();
  const a = startTcpEchoServer(), b = startTcpEchoServer();
  const path = `${dir}/policy.toml`;
  await Deno.writeTextFile(path, policy(a.port));
  const srv = await spawnWithAdmin(["--policy", path]);
  const reloads = async (result: string) =>
    seriesValue(await scrape(srv.admin), "wasmnet_policy_reloads_total", { result });
  try {
    const c = new TestClient(srv.url);
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: a.port });
    await c.event("connected", 1);
    c.json({ op: "connect", id: 2, addr: "127.0.0.1", port: b.port });
    await c.event("denied", 2);

    // Valid: now only b; [dns] changes too, which needs a restart and must be named.
    await Deno.writeTextFile(path, policy(b.port, "[dns]\ntimeout_ms = 1234\n"));
    srv.child.kill("SIGHUP");
    await until(async () => (await reloads("ok")) === 1, 5000, "a successful reload");
    c.json({ op: "connect", id: 3, addr: "127.0.0.1", port: b.port });
    await c.event("connected", 3);
    c.json({ op: "connect", id: 4, addr: "127.0.0.1", port: a.port });
    await c.event("denied", 4);
    c.json({ op: "send", id: 1, data: b64("socket 1 survived") }); // opened under the old policy, not cut
    assert.equal(unb64((await c.event("data", 1)).data), "socket 1 survived");

    // Invalid: refused, old policy (b allowed) stays.
    await Deno.writeTextFile(path, '[network]\nallow = ["10.0.0.0/33"]\n');
    srv.child.kill("SIGHUP");
    await until(async () => (await reloads("error")) === 1, 5000, "a failed reload");
    c.json({ op: "connect", id: 5, addr: "127.0.0.1", port: b.port });
    await c.event("connected", 5);
    await c.close();

    const startup = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-env", `${ROOT}cli.ts`, "--policy", path],
      stdout: "null",
      stderr: "piped",
    }).output();
    const startupError = new TextDecoder().decode(startup.stderr).trim().replace(/^wasmnet-server: /, "");
    assert.equal(startup.code, 1);
    await srv.stop();
    const { stdout, stderr } = await srv.output();
    const failed = stderr.split("\n").find((l) => l.includes('"policy_reload_failed"'));
    assert.ok(failed, stderr);
    assert.equal(JSON.parse(failed).error, startupError, "the same precise error as at start-up");
    assert.match(stdout, /"event":"policy_reloaded"/);
    assert.match(stderr, /"event":"reload_not_live","settings":\["dns.timeout_ms"\]/);
  } finally {
    await srv.stop();
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});
