/**
 * The `wasmnet-server` command as a user runs it: a real subprocess, real flags, real signals.
 */

import assert from "node:assert/strict";
import { spawnCli, startTcpEchoServer, TestClient } from "./helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Runs the CLI to completion and returns its exit code and output. */
async function run(args: string[], denoFlags = ["--allow-net", "--allow-read", "--allow-env"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags, `${ROOT}cli.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts the server as a subprocess and waits for its banner ("listening on" and "policy:" lines). */
function spawnServer(args: string[], denoFlags?: string[], entry?: string) {
  return spawnCli(args, { denoFlags, entry, waitFor: /listening on (ws:\/\/\S+)[\s\S]*policy: .*\n/ });
}

Deno.test("--help and --version exit 0", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: wasmnet-server/);
  assert.match(help.stdout, /--no-policy/);
  const version = await run(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^wasmnet-server \d+\.\d+\.\d+/);
});

Deno.test("usage errors exit 2 with a message", async () => {
  for (
    const [args, msg] of [
      [["--bogus"], /bogus/],
      [["--port", "70000"], /--port must be 0-65535/],
      [["--port", "abc"], /--port/],
      [["--policy", "x.toml", "--no-policy"], /cannot be used together/],
      [["stray"], /stray|positional/i],
    ] as const
  ) {
    const r = await run([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});

Deno.test("a bad policy file stops startup with a message naming the file, key and rule", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = `${dir}/bad.toml`;
    await Deno.writeTextFile(bad, '[network]\ndeny = ["10.0.0.0/33"]\n');
    const r = await run(["--policy", bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.toml/);
    assert.match(r.stderr, /network\.deny/);
    assert.match(r.stderr, /10\.0\.0\.0\/33/);
    await Deno.writeTextFile(bad, "[network]\nmax_connectionz = 5\n");
    const unknown = await run(["--policy", bad]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /max_connectionz/);
    await Deno.writeTextFile(bad, `[tls]\nca_files = ["${dir}/no-such-ca.pem"]\n`);
    const badCa = await run(["--policy", bad]);
    assert.equal(badCa.code, 1, "a bad tls.ca_files entry stops startup");
    assert.match(badCa.stderr, /no-such-ca\.pem/);
    const missing = await run(["--policy", `${dir}/nope.toml`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.toml/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the server starts, prints where it listens and its policy, serves, and stops on SIGTERM", async () => {
  const echo = startTcpEchoServer();
  // --drain-timeout 0: SIGTERM closes open sessions at once (tests/ops/drain_test.ts covers the drain).
  const srv = await spawnServer(["--no-policy", "--drain-timeout", "0"]);
  try {
    assert.match(srv.banner, /policy: --no-policy/);
    const c = new TestClient(srv.url);
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 1);
    srv.child.kill("SIGTERM");
    const closed = await c.closed;
    assert.equal(closed.code, 1001);
    const status = await srv.child.status;
    assert.equal(status.code, 0);
    const { stdout } = await srv.output();
    assert.match(stdout, /shut down/);
    assert.match(stdout, /"decision":"allow"/, "decisions are logged as JSON lines");
  } finally {
    await echo.close();
  }
});

Deno.test("mod.ts run as the main module is the CLI (as `deno run jsr:@wasmnet/server` does)", async () => {
  const srv = await spawnServer([], ["--allow-net", "--allow-read", "--allow-env"], "mod.ts");
  assert.match(srv.banner, /policy: built-in default/);
  srv.child.kill("SIGINT");
  assert.equal((await srv.child.status).code, 0);
  await srv.output();
});

Deno.test("a refusal by Deno's permissions reaches the client as denied, and the server stays up", async () => {
  const echo = startTcpEchoServer();
  // The server may listen, but --deny-net forbids the echo server's address:port.
  const srv = await spawnServer(["--no-policy"], [
    "--allow-net",
    `--deny-net=127.0.0.1:${echo.port}`,
    "--allow-read",
    "--allow-env",
  ]);
  try {
    const c = new TestClient(srv.url);
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    const denied = await c.event("denied", 1);
    assert.equal(denied.code, "PERMISSION_DENIED");
    assert.match(denied.msg as string, /permission/);
    // The session goes on.
    c.json({ op: "bind", id: 2, addr: "127.0.0.1", port: 0 });
    await c.event("listening", 2);
    await c.close();
  } finally {
    srv.child.kill("SIGTERM");
    await srv.child.status;
    await srv.output();
    await echo.close();
  }
});
