/**
 * Flow control end to end through the client's streams API: a page that stops reading its ReadableStream
 * stops the bytes at the server (counted server-side, in bytes), and resumes when it reads again.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSessionServer, startTcpEchoServer, startTcpServer } from "../../tests/helpers.ts";
import { WasmnetClient } from "../mod.ts";
import { DEFAULT_RECEIVE_WINDOW, PROTOCOL_V2 } from "../src/flow.ts";

const MiB = 1024 * 1024;

async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const binary of [true, false]) {
  Deno.test(`client v2 (${binary ? "binary" : "JSON"}): a reader that stops stops the data at the server`, async () => {
    const total = 32 * MiB;
    const server = startSessionServer();
    const source = startTcpServer(async (conn) => {
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      for (let left = total; left > 0;) {
        left -= await conn.write(chunk.subarray(0, Math.min(chunk.length, left)));
      }
    });
    const client = new WasmnetClient(server.url, { binary, flowControl: true });
    try {
      await client.ready();
      const socket = client.openSocket("127.0.0.1", source.port, { readableHighWaterMark: 256 * 1024 });
      await socket.opened;
      const session = server.sessions[0];
      const reader = socket.readable.getReader();
      let read = 0;
      while (read < 100 * 1024) read += (await reader.read()).value!.length;

      // The page stops reading. The server spends what was granted and stops.
      await until(() => session.socketStats(socket.id)?.credit === 0, "the server's credit to run out");
      const sent = session.socketStats(socket.id)!.sentBytes;
      // Granted = read + what sits in the readable (its high-water mark, passed by at most one chunk of up
      // to 256 KiB, the server's largest read) + the window.
      const bound = read + 256 * 1024 + 256 * 1024 + DEFAULT_RECEIVE_WINDOW;
      assert.ok(sent <= bound, `server sent ${sent} bytes to a page that read ${read} (bound ${bound})`);
      assert.ok(sent < total / 4, "most of the data is still at the source");

      // Reading again resumes it to the end, every byte intact.
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        assert.ok(value.every((b) => b === 0x61));
        read += value.length;
        if (read >= total) break;
      }
      assert.equal(read, total);
      await socket.close();
    } finally {
      await client.disconnect();
      await source.close();
      await server.close();
    }
  });
}

Deno.test("client v2: uploads stay within the server's window and arrive whole; v2 is negotiated", async () => {
  const server = startSessionServer();
  const echo = startTcpEchoServer();
  const client = new WasmnetClient(server.url, { binary: true, flowControl: true });
  try {
    await client.ready();
    const socket = client.openSocket("127.0.0.1", echo.port);
    await socket.opened;
    const session = server.sessions[0];
    const total = 8 * MiB;
    const writer = socket.writable.getWriter();
    const reading = (async () => {
      let got = 0;
      const reader = socket.readable.getReader();
      while (got < total) got += (await reader.read()).value!.length;
      return got;
    })();
    const chunk = new Uint8Array(256 * 1024).fill(0x62);
    for (let sent = 0; sent < total; sent += chunk.length) {
      await writer.write(chunk);
      assert.ok(session.socketStats(socket.id)!.queuedBytes <= 4 * MiB);
    }
    assert.equal(await reading, total);
    await socket.close();
  } finally {
    await client.disconnect();
    await echo.close();
    await server.close();
  }
  assert.equal(PROTOCOL_V2, "wasmnet.v2");
});
