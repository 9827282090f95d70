import assert from "node:assert/strict";
import { spawnCli } from "../helpers.ts";
import { openSession } from "./sessions.ts";

Deno.test({
  name: "decision and access lines carry the replica ([cluster] name)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wasmnet-replica-" });
    await Deno.writeTextFile(
      `${dir}/policy.toml`,
      `[server]\nmax_sessions_per_ip = 1\n[cluster]\nname = "edge-7"\n`,
    );
    const server = await spawnCli(["--policy", `${dir}/policy.toml`]);
    try {
      const first = await openSession(server.port, "127.0.0.2");
      assert.equal(first.status, 101);
      assert.equal((await openSession(server.port, "127.0.0.2")).status, 429);
      first.close();
      await first.closed;
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
    const lines = (await server.output()).stdout.split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    );
    const refusal = lines.find((l) => l.rule === "server.max_sessions_per_ip");
    assert.equal(refusal?.replica, "edge-7", "decision line");
    const access = lines.find((l) => l.event === "access");
    assert.equal(access?.replica, "edge-7", `access line: ${JSON.stringify(access)}`);
  },
});
