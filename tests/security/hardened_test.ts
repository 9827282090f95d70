/**
 * The hardened deployment of docs/security.md, run for real: `cli.ts` under Deno's permission flags
 * (`--deny-net` private ranges, `--allow-read` only the policy file, `--allow-env` only the secret's
 * variable) with a policy that requires tokens. Even a policy that allows everything cannot reach a denied
 * range: the runtime refuses, the client gets `denied` PERMISSION_DENIED, and the log says which layer.
 */

import assert from "node:assert/strict";
import { importHs256Key, signHs256 } from "../../src/auth/mod.ts";
import { TestClient } from "../helpers.ts";
import { handshakeStatus } from "./raw_ws.ts";

/** The private ranges of the documented `--deny-net` (loopback left out: this test talks to the server over it). */
const DENY_NET = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,100.64.0.0/10";
const SECRET = "hardened-deployment-test-secret-0123456789";

Deno.test("hardened deployment: tokens required, and Deno's --deny-net holds even where the policy allows", async () => {
  const dir = await Deno.makeTempDir();
  const policyPath = `${dir}/policy.toml`;
  await Deno.writeTextFile(
    policyPath,
    `[network]\ndeny = []\nallow = ["*"]\nconnection_timeout_secs = 2\n\n[auth]\nrequired = true\nsecret_env = "WASMNET_SECRET"\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      `--deny-net=${DENY_NET}`,
      `--allow-read=${policyPath}`,
      "--allow-env=WASMNET_SECRET",
      new URL("../../cli.ts", import.meta.url).pathname,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--policy",
      policyPath,
    ],
    env: { WASMNET_SECRET: SECRET },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const readUntil = async (re: RegExp) => {
    const end = Date.now() + 15_000;
    while (!re.test(stdout)) {
      assert.ok(Date.now() < end, `no ${re} in: ${stdout}`);
      const { value, done } = await out.read();
      if (done) throw new Error(`server exited: ${stdout}`);
      stdout += value;
    }
    return re.exec(stdout)!;
  };
  try {
    const port = Number((await readUntil(/listening on ws:\/\/127\.0\.0\.1:(\d+)\//))[1]);
    assert.equal(await handshakeStatus(port, "/"), 401, "no token, no session");
    const key = await importHs256Key(new TextEncoder().encode(SECRET));
    const token = await signHs256({ sub: "ops", exp: Math.floor(Date.now() / 1000) + 60 }, key);
    const c = new TestClient(`ws://127.0.0.1:${port}/?token=${token}`);
    try {
      await c.opened;
      c.json({ op: "connect", id: 1, addr: "10.1.2.3", port: 80 });
      const denied = await c.event("denied", 1);
      assert.equal(denied.code, "PERMISSION_DENIED");
      // --allow-net was given: the message names the sandbox that refused, not Deno's "run again with".
      assert.match(denied.msg as string, /--deny-net/);
      assert.doesNotMatch(denied.msg as string, /run again/);
      c.json({ op: "connect", id: 2, addr: "169.254.169.254", port: 80 });
      assert.equal((await c.event("denied", 2)).code, "PERMISSION_DENIED");
      // Names still resolve under these flags (no --allow-sys or extra --allow-read needed).
      c.json({ op: "connect", id: 3, addr: "localhost", port: 1 });
      assert.equal((await c.event("error", 3)).code, "CONNECT_FAILED");
    } finally {
      await c.close();
    }
    await readUntil(/"rule":"deno --deny-net\/--allow-net"/);
    const lines = stdout.split("\n").filter((l) => l.startsWith("{"));
    const policyAllowed = lines.map((l) => JSON.parse(l)).find((r) =>
      r.target === "10.1.2.3:80" && r.decision === "allow"
    );
    assert.ok(policyAllowed, "the policy allowed it; the runtime refused it");
    assert.ok(
      !stdout.includes(SECRET) && !stdout.includes(token.split(".")[2]),
      "no secret or token in the log",
    );
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await out.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a required secret that is not there stops the server at startup, naming where it looked", async () => {
  const dir = await Deno.makeTempDir();
  const policyPath = `${dir}/policy.toml`;
  await Deno.writeTextFile(policyPath, `[auth]\nrequired = true\nsecret_env = "WASMNET_ABSENT_SECRET"\n`);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        `--allow-read=${policyPath}`,
        "--allow-env=WASMNET_ABSENT_SECRET",
        new URL("../../cli.ts", import.meta.url).pathname,
        "--port",
        "0",
        "--policy",
        policyPath,
      ],
      env: { WASMNET_ABSENT_SECRET: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    assert.match(
      new TextDecoder().decode(out.stderr),
      /environment variable WASMNET_ABSENT_SECRET is not set/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
