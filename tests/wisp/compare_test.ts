/**
 * The same wisp-js client against wasmnet's Wisp endpoint and against the wisp-js server (the reference
 * implementation), through one measuring function the benchmark reuses.
 */

import assert from "node:assert/strict";
import { startTcpEchoServer } from "../helpers.ts";
import { startWispJsServer, startWispServer } from "./servers.ts";
import { wispEchoThroughput } from "./wisp_client.ts";

Deno.test("compare: one wisp-js client, two servers (wasmnet and wisp-js), 8 MiB echo each, both intact", async () => {
  const echo = startTcpEchoServer();
  const ours = await startWispServer();
  const reference = await startWispJsServer({ motd: "reference" });
  try {
    for (const [name, url] of [["wasmnet", ours.wispUrl], ["wisp-js", reference.wispUrl]]) {
      const r = await wispEchoThroughput(url, echo.port, 8 * 1024 * 1024);
      assert.ok(r.intact, `${name}: echo intact`);
      assert.equal(r.bytes, 8 * 1024 * 1024);
      console.log(`${name}: ${r.mibPerSec.toFixed(1)} MiB/s round trip`);
    }
  } finally {
    await reference.close();
    await ours.close();
    await echo.close();
  }
});
