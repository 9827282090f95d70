import assert from "node:assert/strict";
import { answerCall, decodeAnswer, encodeAnswer, maxPayload } from "./bridge.ts";

Deno.test("bridge answers: values, byte results and bigints survive encoding", () => {
  const values: unknown[] = [
    0,
    28,
    null,
    "listening",
    { errno: 0, handle: 3, peer: { family: 4, address: "127.0.0.1", port: 9 } },
    { errno: 0, value: 123n },
    [{ index: 0, errno: 0, nbytes: 5, hup: false }],
  ];
  for (const v of values) assert.deepEqual(decodeAnswer(encodeAnswer(v)), v);
  const data = new Uint8Array([1, 2, 3, 250]);
  assert.deepEqual(decodeAnswer(encodeAnswer({ errno: 0, data })), { errno: 0, data });
  assert.equal(decodeAnswer(encodeAnswer(undefined)), null);
});

Deno.test("answerCall writes the answer and wakes the waiter; too large an answer becomes NOBUFS", async () => {
  const shared = new SharedArrayBuffer(8 + 4096 + 64);
  const state = new Int32Array(shared, 0, 2);
  await answerCall(
    shared,
    { wasmnetCall: true, op: "status", args: [1] },
    () => Promise.resolve({ errno: 0, status: 1 }),
  );
  assert.equal(Atomics.load(state, 0), 1);
  assert.deepEqual(decodeAnswer(new Uint8Array(shared, 8, Atomics.load(state, 1)).slice()), {
    errno: 0,
    status: 1,
  });
  await answerCall(
    shared,
    { wasmnetCall: true, op: "recv", args: [] },
    () => ({ errno: 0, data: new Uint8Array(5000) }),
  );
  assert.deepEqual(decodeAnswer(new Uint8Array(shared, 8, Atomics.load(state, 1)).slice()), { errno: 42 });
  assert.equal(maxPayload(8 + 4096 + 1024), 1024);
});
