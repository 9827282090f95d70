/**
 * A real Prometheus (Debian's `prometheus`), started here on a free loopback port with a generated config
 * and a 1 s scrape interval, scrapes the admin listener (with its bearer token, as an operator's scrape
 * config would); after a scripted session its query API returns the expected series and values.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { startEchoOncePeer, wasmnetJson } from "./frontends.ts";
import { startOpsServer, until } from "./ops_helpers.ts";

const TOKEN = "prometheus-scrapes-with-this-token-0123456789";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts Prometheus scraping `target` (host:port) every second; stop() kills it and removes its data. */
async function startPrometheus(target: string, tokenFile: string) {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-prom-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "scrape_configs:",
      "  - job_name: wasmnet",
      "    authorization:",
      `      credentials_file: ${tokenFile}`,
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const api = `http://127.0.0.1:${port}/api/v1`;
  return {
    api,
    async query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
      const res = await fetch(`${api}/query?query=${encodeURIComponent(expr)}`).catch(() => null);
      if (!res || !res.ok) {
        await res?.body?.cancel();
        return [];
      }
      return (await res.json()).data.result;
    },
    async targetHealth(): Promise<string | undefined> {
      const res = await fetch(`${api}/targets`).catch(() => null);
      if (!res || !res.ok) return (await res?.body?.cancel(), undefined);
      return (await res.json()).data.activeTargets[0]?.health;
    },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await stderr;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("prometheus: a real Prometheus scrapes the admin listener and its query API has the session's series", async () => {
  const tokenDir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${tokenDir}/token`, TOKEN);
  const srv = await startOpsServer(
    Policy.fromConfig({ network: { deny: [], allow: ["127.0.0.1"] } }),
    { token: TOKEN },
  );
  const peer = startEchoOncePeer();
  const prom = await startPrometheus(new URL(srv.admin).host, `${tokenDir}/token`);
  try {
    await until(async () => (await prom.targetHealth()) === "up", 30_000, "Prometheus to scrape the target");
    const done = await wasmnetJson(srv.ws, peer.port);
    await until(() => srv.access.length === 1);
    const ended = Date.now() / 1000;
    const value = async (expr: string) => {
      const r = await prom.query(expr);
      return r.length === 1 ? Number(r[0].value[1]) : undefined;
    };
    const sessions = 'wasmnet_sessions_total{job="wasmnet",frontend="wasmnet",framing="json"}';
    // Wait for a scrape taken after the session ended: from then on every series holds its final count.
    await until(
      async () => ((await value('timestamp(up{job="wasmnet"})')) ?? 0) > ended + 0.1,
      15_000,
      "a scrape",
    );
    assert.equal(await value(sessions), 1);
    assert.equal(await value('wasmnet_websocket_bytes_total{frontend="wasmnet",direction="up"}'), done.up);
    assert.equal(
      await value('wasmnet_websocket_bytes_total{frontend="wasmnet",direction="down"}'),
      done.down,
    );
    assert.equal(
      await value(
        'wasmnet_decisions_total{op="connect",outcome="allow",rule="network.allow[0] \\"127.0.0.1\\""}',
      ),
      1,
    );
    assert.equal(await value('wasmnet_sessions_open{frontend="wasmnet",framing="json"}'), 0);
    assert.ok((await value("process_resident_memory_bytes"))! > 0);
    assert.equal((await prom.query("wasmnet_build_info")).length, 1);
    assert.ok((await prom.query("wasmnet_event_loop_delay_seconds_bucket")).length > 0);
    assert.equal(await value('up{job="wasmnet"}'), 1);
  } finally {
    await prom.stop();
    await peer.close();
    await srv.close();
    await Deno.remove(tokenDir, { recursive: true });
  }
});
