/**
 * The session against a fake port: protocol behaviour that needs no network (decoding, ids, limits,
 * policy refusals, framing of answers).
 */

import assert from "node:assert/strict";
import { Policy } from "../../policy/mod.ts";
import { decodeBinaryEvent, encodeBinaryRequest } from "@wasmnet/protocol";
import { Session } from "./session.ts";
import type { WebSocketPort } from "../../core/websocket.ts";
import type { DecisionRecord } from "../../core/log.ts";

class FakePort implements WebSocketPort {
  sent: (string | Uint8Array)[] = [];
  closedWith: number | undefined;
  bufferedAmount = 0;
  send(message: string | Uint8Array) {
    this.sent.push(message);
  }
  close(code?: number) {
    this.closedWith = code;
  }
  /** JSON events sent so far. */
  get events(): Record<string, unknown>[] {
    return this.sent.filter((m) => typeof m === "string").map((m) => JSON.parse(m as string));
  }
}

function session(policy = Policy.allowAll(), log?: (r: DecisionRecord) => void) {
  const port = new FakePort();
  const s = new Session(port, {
    policy,
    serverHost: "127.0.0.1",
    clientIp: "192.0.2.7",
    log,
    resolver: () => Promise.resolve([]),
  });
  return { port, s };
}

Deno.test("every malformed message is answered with one error, and the session stays open", () => {
  const { port, s } = session();
  const bad = ["{", '{"op":"send","id":1,"data":"%%"}', '{"op":"nope","id":2}', '{"op":"close","id":3}'];
  for (const m of bad) s.receive(m);
  s.receive(new Uint8Array([0x04, 1]));
  assert.equal(port.events.length, 4);
  assert.deepEqual(port.events.map((e) => e.code), [
    "BAD_REQUEST",
    "BAD_REQUEST",
    "UNKNOWN_OP",
    "UNKNOWN_ID",
  ]);
  assert.deepEqual(port.events.map((e) => e.id), [0, 1, 2, 3]);
  const binaryAnswer = port.sent.at(-1) as Uint8Array;
  assert.ok(binaryAnswer instanceof Uint8Array, "a binary request is answered in binary");
  assert.equal(decodeBinaryEvent(binaryAnswer).ev, "error");
  assert.equal(s.closed, false);
  assert.equal(port.closedWith, undefined);
  s.close();
});

Deno.test("a policy refusal is `denied`, logged with the rule, and holds no socket", () => {
  const records: DecisionRecord[] = [];
  const { port, s } = session(Policy.defaults(), (r) => records.push(r));
  s.receive(JSON.stringify({ op: "connect", id: 1, addr: "10.1.2.3", port: 80 }));
  assert.equal(s.socketCount, 1, "held while the decision is made");
  return new Promise<void>((resolve) =>
    setTimeout(() => {
      assert.deepEqual(port.events[0].ev, "denied");
      assert.equal(port.events[0].code, "POLICY_DENIED");
      assert.equal(s.socketCount, 0);
      assert.equal(records.length, 1);
      assert.equal(records[0].decision, "deny");
      assert.equal(records[0].client, "192.0.2.7");
      assert.match(records[0].rule, /10\.0\.0\.0\/8/);
      s.close();
      resolve();
    }, 10)
  );
});

Deno.test("ids in the server's range are refused; listen and send check the socket kind", () => {
  const { port, s } = session();
  s.receive(encodeBinaryRequest({ op: "connect", id: 2 ** 53 - 1, addr: "127.0.0.1", port: 1 }));
  assert.match(decodeBinaryEvent(port.sent[0] as Uint8Array).ev, /error/);
  s.receive(JSON.stringify({ op: "listen", id: 5 }));
  assert.equal(port.events.at(-1)!.code, "UNKNOWN_ID");
  s.close();
});

Deno.test("after close(), the session sends nothing more", () => {
  const { port, s } = session();
  s.close();
  s.receive("{");
  assert.equal(port.sent.length, 0);
  s.shutdown();
  assert.equal(port.closedWith, 1001);
});

Deno.test("v1: the session's write budget is shared by its sockets; passing it drops only that socket with BUFFER_FULL", async () => {
  const port = new FakePort();
  const s = new Session(port, {
    policy: Policy.allowAll(),
    serverHost: "127.0.0.1",
    clientIp: "192.0.2.7",
    // A lookup that never answers: the connects stay in flight, so sent bytes wait in the write queues.
    resolver: () => new Promise(() => {}),
    maxQueuedWriteBytes: 80_000,
    maxSessionQueuedWriteBytes: 100_000,
  });
  const chunk = new Uint8Array(60_000).toBase64();
  s.receive('{"op":"connect","id":1,"addr":"pending.test","port":80}');
  s.receive('{"op":"connect","id":2,"addr":"pending.test","port":80}');
  s.receive(`{"op":"send","id":1,"data":"${chunk}"}`);
  assert.equal(port.events.length, 0, "60,000 bytes fit both bounds");
  s.receive(`{"op":"send","id":2,"data":"${chunk}"}`);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(port.events.map((e) => [e.ev, e.id, e.code]), [
    ["error", 2, "BUFFER_FULL"],
    ["closed", 2, undefined],
  ]);
  assert.match(String(port.events[0].msg), /session/);
  assert.equal(s.socketCount, 1, "socket 1 and its queued bytes are untouched");
  assert.equal(s.socketStats(1)?.queuedBytes, 60_000);
  s.close();
});
