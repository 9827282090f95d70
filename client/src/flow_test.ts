import assert from "node:assert/strict";
import { ClientFlow, DEFAULT_MAX_RECEIVE_WINDOW, DEFAULT_RECEIVE_WINDOW, INITIAL_WINDOW } from "./flow.ts";

const MiB = 1024 * 1024;

/** A flow on a fake clock with a known round trip. */
function flowAt(rttMs: number | undefined, options: { window?: number; maxWindow?: number } = {}) {
  let now = 0;
  const flow = new ClientFlow({ ...options, rttMs: () => rttMs, now: () => now });
  return { flow, tick: (ms: number) => (now += ms) };
}

/**
 * A sender limited by the window: it delivers the whole window in every round trip (in 16 chunks), and the
 * page consumes each chunk at once. Returns the total granted.
 */
function windowLimited(f: ReturnType<typeof flowAt>, rttMs: number, rounds: number): number {
  let granted = 0;
  for (let r = 0; r < rounds; r++) {
    const chunk = f.flow.window / 16;
    for (let i = 0; i < 16; i++) {
      f.tick(rttMs / 16);
      granted += f.flow.consumed(chunk);
    }
  }
  return granted;
}

Deno.test("ClientFlow: a window that limits the rate grows fourfold per round trip, never past maxWindow", () => {
  const f = flowAt(80);
  assert.equal(f.flow.window, DEFAULT_RECEIVE_WINDOW);
  windowLimited(f, 80, 2);
  assert.equal(f.flow.window, 4 * MiB, "grown after one round trip's worth filled the window");
  windowLimited(f, 80, 20);
  assert.equal(f.flow.window, DEFAULT_MAX_RECEIVE_WINDOW, "capped at the default max (8 MiB)");
  const capped = flowAt(80, { window: 256 * 1024, maxWindow: 3 * MiB });
  windowLimited(capped, 80, 20);
  assert.equal(capped.flow.window, 3 * MiB, "capped at the given max");
});

Deno.test("ClientFlow: the extra window is granted at once, on top of what was consumed", () => {
  const f = flowAt(10);
  let granted = f.flow.opening(), consumed = 0;
  for (let i = 0; i < 64 && f.flow.window === DEFAULT_RECEIVE_WINDOW; i++) {
    f.tick(1);
    granted += f.flow.consumed(128 * 1024); // 1.25 MiB per round trip: more than 3/4 of the window
    consumed += 128 * 1024;
  }
  assert.equal(f.flow.window, 4 * MiB);
  // What the server may have in flight is the new window: all consumed bytes are back, plus the growth.
  assert.equal(INITIAL_WINDOW + granted - consumed, 4 * MiB);
});

Deno.test("ClientFlow: a reader slower than the window never grows it, however long it reads", () => {
  const f = flowAt(80);
  // 100 KiB per round trip against a 1 MiB window: the reader, not the window, sets the rate.
  for (let i = 0; i < 1000; i++) {
    f.tick(80);
    f.flow.consumed(100 * 1024);
  }
  assert.equal(f.flow.window, DEFAULT_RECEIVE_WINDOW);
  // Bursts: 1 MiB read at once every 2 s is still 40 KiB per round trip.
  for (let i = 0; i < 20; i++) {
    f.tick(2000);
    f.flow.consumed(MiB);
  }
  assert.equal(f.flow.window, DEFAULT_RECEIVE_WINDOW);
});

Deno.test("ClientFlow: no round-trip estimate yet, no growth", () => {
  const f = flowAt(undefined);
  windowLimited(f, 80, 20);
  assert.equal(f.flow.window, DEFAULT_RECEIVE_WINDOW);
});

Deno.test("ClientFlow: what waits for credit is a copy, so the caller may reuse its buffer", () => {
  const flow = new ClientFlow();
  const data = new Uint8Array(INITIAL_WINDOW + 10).fill(7);
  const now = flow.take(data);
  assert.equal(now.reduce((a, c) => a + c.length, 0), INITIAL_WINDOW);
  data.fill(0);
  const later = flow.granted(100);
  assert.equal(later.length, 1);
  assert.deepEqual(later[0], new Uint8Array(10).fill(7));
});
