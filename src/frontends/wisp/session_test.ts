import assert from "node:assert/strict";
import { Policy } from "../../policy/mod.ts";
import type { WebSocketPort } from "../../core/websocket.ts";
import { decodePacket, encodePacket } from "./packets.ts";
import { WispSession } from "./session.ts";

/** A WebSocket stand-in whose send buffer level the test sets. */
class FakePort implements WebSocketPort {
  dataBytes = 0;
  packets: string[] = [];
  bufferedAmount = 0;
  send(message: string | Uint8Array): void {
    const d = decodePacket(message as Uint8Array);
    if (!d.ok) throw new Error(d.problem);
    if (d.packet.type === "data") this.dataBytes += d.packet.data.length;
    else this.packets.push(d.packet.type);
  }
  close(): void {}
}

Deno.test("wisp session: a full WebSocket buffer stops reading the target; reading resumes when it drains", async () => {
  const total = 8 * 1024 * 1024;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      const bytes = new Uint8Array(total);
      for (let at = 0; at < total;) at += await conn.write(bytes.subarray(at));
    } catch {
      // the session closed first (the test failed)
    } finally {
      conn.close();
    }
  })();
  const port = new FakePort();
  port.bufferedAmount = 10 * 1024 * 1024; // the browser is not reading
  const session = new WispSession(port, { policy: Policy.allowAll(), clientIp: "test", version: 1 });
  try {
    session.start();
    session.receive(
      encodePacket({
        type: "connect",
        streamId: 1,
        streamType: 1,
        port: listener.addr.port,
        host: "127.0.0.1",
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(port.dataBytes, 0, "nothing is read while the WebSocket buffer is over its bound");
    port.bufferedAmount = 0;
    const deadline = Date.now() + 10_000;
    while (port.dataBytes < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(port.dataBytes, total);
  } finally {
    session.close();
    listener.close();
    await served;
  }
});
