/**
 * One IPv6 host commonly holds a whole /64, so per-address bounds must count the /64 as admission does
 * (src/http/admission.ts, clientKey): otherwise `max_handshakes_per_ip` bounds nothing for an IPv6 client,
 * which can take every one of the server's `max_handshakes` slots with slow heads from its own /64.
 * Linux only: needs `unshare -n` (root) for a namespace whose loopback holds one /64.
 */

import assert from "node:assert/strict";

const CHILD = new URL("./ipv6_prefix_child.ts", import.meta.url).pathname;

async function canUnshare(): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  try {
    return (await new Deno.Command("unshare", { args: ["-n", "true"], stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "max_handshakes_per_ip counts an IPv6 client's /64: a third slow head from the same /64 gets 429",
  ignore: !(await canUnshare()),
  fn: async () => {
    const addresses = Array.from({ length: 9 }, (_, i) => `ip -6 addr add fd00::${i + 1}/64 dev lo nodad`);
    const setup = ["ip link set lo up", ...addresses].join(" && ");
    const out = await new Deno.Command("unshare", {
      args: ["-n", "bash", "-c", `${setup} && exec "$0" run -A "$1"`, Deno.execPath(), CHILD],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `child failed: ${stdout}${new TextDecoder().decode(out.stderr)}`);
    const statuses = JSON.parse(stdout.trim().split("\n").pop()!);
    // Two slow heads are held (no answer yet); the third and fourth, other addresses of the same /64, are refused.
    assert.deepEqual(statuses, [0, 0, 429, 429]);
  },
});
