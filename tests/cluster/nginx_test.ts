/**
 * The nginx configuration docs/deployment.md publishes (docs/deploy/nginx.conf): `nginx -t` accepts it, and
 * it proxies sessions to a wasmnet replica with the browser's address in X-Forwarded-For (the per-IP cap
 * counts it) and data flowing both ways. nginx runs unprivileged from a temporary prefix, started and
 * stopped here.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnCli } from "../helpers.ts";
import { spawnOnFreePort } from "./redis_server.ts";
import { openMany, openSession, type RawSession, statuses } from "./sessions.ts";

const CONFIG = new URL("../../docs/deploy/nginx.conf", import.meta.url);

Deno.test({
  name: "nginx: the published config passes nginx -t and proxies sessions (X-Forwarded-For counted)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "wasmnet-nginx-" });
    await Deno.writeTextFile(
      `${dir}/policy.toml`,
      `[network]\ndeny = []\n[server]\nmax_sessions_per_ip = 1\ntrusted_proxies = ["127.0.0.1"]\n`,
    );
    const replica = await spawnCli(["--policy", `${dir}/policy.toml`, "--quiet"]);
    await Deno.writeTextFile(
      `${dir}/nginx.conf`,
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents { worker_connections 256; }\n` +
        `http {\n  access_log off;\n  client_body_temp_path ${dir}/tmp;\n  proxy_temp_path ${dir}/tmp;\n` +
        `  fastcgi_temp_path ${dir}/tmp;\n  uwsgi_temp_path ${dir}/tmp;\n  scgi_temp_path ${dir}/tmp;\n` +
        `  include ${dir}/site.conf;\n}\n`,
    );
    const args = ["-p", dir, "-c", `${dir}/nginx.conf`];
    const template = await Deno.readTextFile(CONFIG);
    const { port, child: nginx } = await spawnOnFreePort(async (port) => {
      const site = template
        .replace("${SERVERS}", `    server 127.0.0.1:${replica.port} max_fails=2 fail_timeout=10s;`)
        .replace("${LISTEN}", `127.0.0.1:${port}`);
      await Deno.writeTextFile(`${dir}/site.conf`, site);
      const test = await new Deno.Command("nginx", { args: [...args, "-t"], stderr: "piped" }).output();
      assert.ok(test.success, `nginx -t: ${new TextDecoder().decode(test.stderr)}`);
      return new Deno.Command("nginx", {
        args: [...args, "-g", "daemon off;"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    });
    const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const echoing = (async () => {
      for await (const conn of echo) conn.readable.pipeTo(conn.writable).catch(() => {});
    })().catch(() => {});
    const held: RawSession[] = [];
    try {
      const a = await openMany(port, "127.0.0.2", 2);
      held.push(...a);
      assert.deepEqual(statuses(a), [101, 429], "per-IP cap 1 counts the forwarded address");
      const b = await openSession(port, "127.0.0.3", `/tcp/127.0.0.1:${(echo.addr as Deno.NetAddr).port}`);
      held.push(b);
      assert.equal(b.status, 101, "another address gets its own session");
      // A Forwarded header the browser wrote itself must not name it (Forwarded wins over the
      // X-Forwarded-For nginx writes, so the published config removes it): still one address, one session.
      const spoofed = await Promise.all(
        ["198.51.100.7", "198.51.100.8"].map((ip) =>
          openSession(port, "127.0.0.4", "/", { Forwarded: `for=${ip}` })
        ),
      );
      held.push(...spoofed);
      assert.deepEqual(
        statuses(spoofed).sort(),
        [101, 429],
        "a client's own Forwarded header is not believed",
      );
      b.send(new TextEncoder().encode("through nginx"));
      await b.waitFor(13); // echoed back: a binary frame header and the 13 bytes
      assert.ok(b.received >= 13);
    } finally {
      held.forEach((s) => s.close());
      echo.close();
      await echoing;
      try {
        nginx.kill("SIGTERM");
      } catch {
        // gone
      }
      await nginx.status;
      await replica.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
