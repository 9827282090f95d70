import assert from "node:assert/strict";
import { INITIAL_WINDOW, MAX_CREDIT, ReceiveWindow, SendCredit } from "./flow.ts";

Deno.test("SendCredit: starts at the initial window, spends, waits when spent, wakes on grant", async () => {
  const c = new SendCredit();
  assert.equal(c.available, INITIAL_WINDOW);
  assert.equal(c.wait(), undefined);
  c.spend(INITIAL_WINDOW);
  assert.equal(c.available, 0);
  const waiting = c.wait();
  assert.ok(waiting instanceof Promise);
  let woke = false;
  waiting.then(() => (woke = true));
  await Promise.resolve();
  assert.equal(woke, false);
  assert.equal(c.grant(100), true);
  await waiting;
  assert.equal(woke, true);
  assert.equal(c.available, 100);
  assert.throws(() => c.spend(101), RangeError);
});

Deno.test("SendCredit: refuses grants past MAX_CREDIT, cancel wakes waiters", async () => {
  const c = new SendCredit(0);
  assert.equal(c.grant(MAX_CREDIT + 1), false);
  assert.equal(c.available, 0);
  const waiting = c.wait()!;
  c.cancel();
  await waiting;
  assert.equal(c.available, 0);
});

Deno.test("ReceiveWindow: opening grant, violations, batched renewals keep the invariant", () => {
  const w = new ReceiveWindow(1024 * 1024);
  assert.equal(w.opening(), 1024 * 1024 - INITIAL_WINDOW);
  assert.equal(w.peerCredit, 1024 * 1024);
  assert.equal(w.receive(1024 * 1024 + 1), false, "past the window is refused");
  assert.equal(w.receive(300_000), true);
  let buffered = 300_000;
  // Consumption below a quarter window is not granted yet; at a quarter it all is.
  assert.equal(w.consumed(200_000), 0);
  buffered -= 200_000;
  assert.equal(w.consumed(100_000), 300_000);
  buffered -= 100_000;
  assert.equal(w.peerCredit + buffered, 1024 * 1024);
  // Window never below the implicit initial credit.
  assert.equal(new ReceiveWindow(10).window, INITIAL_WINDOW);
  assert.equal(new ReceiveWindow(10).opening(), 0);
});

Deno.test("ReceiveWindow: table of receive/consume sequences never lets peer credit + buffer pass the window", () => {
  const window = 256 * 1024;
  const steps: [number, number][] = [[65536, 0], [0, 65536], [100_000, 50_000], [150_000, 200_000], [5, 5]];
  const w = new ReceiveWindow(window);
  w.opening();
  let buffered = 0;
  for (const [recv, cons] of steps) {
    const allowed = recv <= w.peerCredit;
    assert.equal(w.receive(recv), allowed);
    if (allowed) buffered += recv;
    w.consumed(cons);
    buffered -= cons;
    assert.ok(w.peerCredit + buffered <= window, `invariant after ${recv}/${cons}`);
  }
});
