/**
 * The client's transport choice where the runtime has no WebTransport (Deno without `--unstable-net`, as in
 * `deno task test`): `auto` uses the WebSocket at once; `webtransport` fails `ready()` with a clear error,
 * and `/.well-known/wasmnet` of a server without WebTransport says so.
 */

import { WasmnetClient } from "../../client/mod.ts";
import { startServer, startTcpEchoServer } from "../helpers.ts";

Deno.test("transport auto without WebTransport in the runtime: the WebSocket, at once", async () => {
  if ("WebTransport" in globalThis) throw new Error("this test needs a runtime without WebTransport");
  const server = await startServer();
  const echo = startTcpEchoServer();
  try {
    const doc = await fetch(`http://127.0.0.1:${server.port}/.well-known/wasmnet`).then((r) => r.json());
    if (doc.webtransport !== null) throw new Error(`well-known: ${JSON.stringify(doc)}`);
    const client = new WasmnetClient(server.url, { transport: "auto" });
    await client.ready();
    if (client.transport !== "websocket") throw new Error(`transport ${client.transport}`);
    if (client.webTransportStats !== undefined) throw new Error("no WebTransport stats over the WebSocket");
    const id = await client.connect("127.0.0.1", echo.port);
    const got = new Promise<string>((resolve) =>
      client.onData(id, (d) => resolve(new TextDecoder().decode(d)))
    );
    client.send(id, "auto hello");
    if ((await got) !== "auto hello") throw new Error("echo");
    await client.disconnect();

    const forced = new WasmnetClient(server.url, { transport: "webtransport" });
    const error = await forced.ready().then(() => null, (e) => e as Error);
    if (!error || !/WebTransport/.test(error.message)) throw new Error(`webtransport: ${error?.message}`);
    await forced.disconnect();
  } finally {
    await echo.close();
    await server.close();
  }
});
