/**
 * tools/setup.sh waits for the package manager's lock instead of failing while another install runs
 * (tools/apt_wait.sh), against a stand-in `apt-get` on PATH, so no real package is touched.
 */

import assert from "node:assert/strict";

const APT_WAIT = new URL("../../tools/apt_wait.sh", import.meta.url).pathname;

/** Runs `apt_wait update` with a fake apt-get that fails `failures` times with `failure`, then succeeds. */
async function runAptWait(failure: string, failures: number, env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-apt-" });
  try {
    await Deno.writeTextFile(
      `${dir}/apt-get`,
      `#!/usr/bin/env bash
n=$(cat "${dir}/calls" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "${dir}/calls"
echo "args: $*"
if [ "$n" -le ${failures} ]; then echo "${failure}" >&2; exit 100; fi
echo "Reading package lists... Done"
`,
    );
    await Deno.chmod(`${dir}/apt-get`, 0o755);
    const out = await new Deno.Command("bash", {
      args: ["-c", `. "${APT_WAIT}" && apt_wait update -q`],
      env: { PATH: `${dir}:${Deno.env.get("PATH")}`, SUDO: "", APT_WAIT_STEP: "0", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const calls = Number(await Deno.readTextFile(`${dir}/calls`));
    return { code: out.code, calls, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const LOCKED = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)";

Deno.test("setup: a held apt lock is waited for, then the install goes on", async () => {
  const r = await runAptWait(LOCKED, 2);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.calls, 3);
  assert.match(r.stderr, /another install holds the package manager's lock; waiting/);
  assert.match(r.stderr, /args: -o DPkg::Lock::Timeout=600 update -q/); // dpkg's own lock: apt waits
  assert.match(r.stderr, /Reading package lists/);
});

Deno.test("setup: any other apt failure is returned at once, with apt's exit code", async () => {
  const r = await runAptWait("E: Unable to locate package nosuchpackage", 5);
  assert.equal(r.code, 100);
  assert.equal(r.calls, 1);
  assert.doesNotMatch(r.stderr, /waiting/);
});

Deno.test("setup: a lock held past APT_WAIT_SECS gives up with a message", async () => {
  const r = await runAptWait(LOCKED, 99, { APT_WAIT_SECS: "0" });
  assert.equal(r.code, 100);
  assert.equal(r.calls, 1);
  assert.match(r.stderr, /still held after 0s; giving up/);
});
