import assert from "node:assert/strict";
import { InboundCredit } from "./credit.ts";

/** Accepts `n` packets of `size` bytes. */
function feed(c: InboundCredit, n: number, size = 10): void {
  for (let i = 0; i < n; i++) assert.ok(c.accept(size), `packet ${i} accepted`);
}

Deno.test("credit: nothing written, nothing renewed", () => {
  const c = new InboundCredit(8);
  feed(c, 8);
  c.update(80);
  assert.equal(c.buffered, 8);
  assert.equal(c.renewal(), undefined);
});

Deno.test("credit: renews every window/4 packets written, with window minus what is still buffered", () => {
  const c = new InboundCredit(8);
  feed(c, 8);
  c.update(70); // one packet written
  assert.equal(c.renewal(), undefined);
  c.update(60); // two written = 8/4
  assert.equal(c.buffered, 6);
  assert.equal(c.renewal(), 2);
  assert.equal(c.renewal(), undefined, "no second renewal without more writes");
  c.update(0);
  assert.equal(c.renewal(), undefined, "no renewal until the last grant's 2 packets have come");
  feed(c, 1);
  c.update(0);
  assert.equal(c.renewal(), undefined);
  feed(c, 1);
  c.update(0);
  assert.equal(c.renewal(), 8, "the last grant's packets all came and were written: the whole window");
});

Deno.test("credit: a packet only counts as written once all its bytes are", () => {
  const c = new InboundCredit(4);
  feed(c, 2, 100);
  c.update(101);
  assert.equal(c.written, 0);
  c.update(100);
  assert.equal(c.written, 1);
});

Deno.test("credit: more than 2 x window buffered is an overrun", () => {
  const c = new InboundCredit(4);
  feed(c, 8);
  assert.equal(c.accept(10), false);
  c.update(70); // one written
  assert.equal(c.accept(10), true);
});

Deno.test("credit: empty packets count and are written at once", () => {
  const c = new InboundCredit(4);
  feed(c, 4, 0);
  c.update(0);
  assert.equal(c.buffered, 0);
  assert.equal(c.renewal(), 4);
});

Deno.test("credit: a small grant is renewed as soon as everything is written (no stall)", () => {
  const c = new InboundCredit(8);
  feed(c, 8);
  c.update(20); // 6 written, 2 buffered
  assert.equal(c.renewal(), 6);
  feed(c, 6);
  c.update(60); // 2 more written (8 buffered -> 6... ) and nothing else
  c.update(0);
  assert.equal(c.buffered, 0);
  assert.equal(c.renewal(), 8);
  // No zero grant (buffer full): the renewal waits until a packet drains.
  const d = new InboundCredit(4);
  feed(d, 5);
  d.update(40); // 1 written, 4 buffered
  assert.equal(d.renewal(), undefined);
  d.update(0);
  assert.equal(d.renewal(), 4);
});

Deno.test("credit: no renewal while the byte queue is more than half full", () => {
  const c = new InboundCredit(4);
  feed(c, 4);
  c.update(0);
  assert.equal(c.renewal(false), undefined);
  assert.equal(c.renewal(true), 4);
});

Deno.test("credit: window must be positive", () => {
  assert.throws(() => new InboundCredit(0), RangeError);
});

/**
 * A wisp-js-like client against the credit: it always has data, sends whenever it has credit, and reads the
 * server's CONTINUEs only every `batchEvery` ticks, flushing up to each CONTINUE's value as it handles it
 * (wisp-js `continue_received`). Packets and CONTINUEs take `latency` ticks; the server writes one packet
 * every `writeEvery` ticks. Returns the packets written, or throws on an overrun.
 */
function simulate(
  window: number,
  ticks: number,
  latency: number,
  batchEvery: number,
  writeEvery: number,
): number {
  const c = new InboundCredit(window);
  let clientCredit = window;
  const toServer: number[] = []; // arrival ticks
  const toClient: { at: number; grant: number }[] = [];
  let queued = 0; // bytes not yet written (1 byte per packet)
  for (let t = 0; t < ticks; t++) {
    while (toServer.length && toServer[0] <= t) {
      toServer.shift();
      assert.ok(c.accept(1), `credit overrun at tick ${t}: ${c.buffered} packets buffered`);
      queued++;
    }
    if (queued > 0 && t % writeEvery === 0) queued--;
    c.update(queued);
    const grant = c.renewal();
    if (grant !== undefined) toClient.push({ at: t + latency, grant });
    if (t % batchEvery === 0) {
      while (toClient.length && toClient[0].at <= t) {
        clientCredit = toClient.shift()!.grant;
        for (; clientCredit > 0; clientCredit--) toServer.push(t + latency);
      }
    }
    for (; clientCredit > 0; clientCredit--) toServer.push(t + latency);
  }
  return c.written;
}

Deno.test("credit: a client handling several CONTINUEs at once stays within 2 x window (wisp-js upload)", () => {
  for (const latency of [1, 3, 10, 50]) {
    for (const batchEvery of [1, 7, 40, 100]) {
      for (const writeEvery of [1, 2, 3]) {
        const written = simulate(128, 20_000, latency, batchEvery, writeEvery);
        assert.ok(
          written > 20_000 / writeEvery / 4,
          `upload progressed (${written} packets, latency ${latency}, batch ${batchEvery}, write ${writeEvery})`,
        );
      }
    }
  }
});
