import assert from "node:assert/strict";
import { SendBufferGate, type WebSocketPort } from "./websocket.ts";

function fakePort(bufferedAmount: number): WebSocketPort & { bufferedAmount: number } {
  return { bufferedAmount, send() {}, close() {} };
}

Deno.test("SendBufferGate: no wait within the bound; a waiter is released only at half the bound", async () => {
  const port = fakePort(100);
  const gate = new SendBufferGate(port, 100, 1);
  assert.equal(gate.wait(), undefined, "at the bound there is room, and nothing is allocated");
  port.bufferedAmount = 101;
  assert.equal(gate.hasRoom, false);
  let released = false;
  const waiting = gate.wait()!.then(() => (released = true));
  port.bufferedAmount = 60; // drained, but not below half
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(released, false);
  port.bufferedAmount = 50;
  await waiting;
  assert.equal(released, true);
  gate.close();
});

Deno.test("SendBufferGate: close() releases every waiter and later waits do not block", async () => {
  const port = fakePort(1_000);
  const gate = new SendBufferGate(port, 10, 1);
  const a = gate.wait()!;
  const b = gate.wait()!;
  gate.close();
  await Promise.all([a, b]);
  assert.equal(gate.wait(), undefined);
});
