import assert from "node:assert/strict";
import { OPT_RECV_TIMEOUT, SocketCore, SockStatus } from "./core.ts";
import { Errno } from "./errno.ts";
import { FakeClient } from "./fake_client_test_helper.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b?: Uint8Array) => new TextDecoder().decode(b);

async function connected(core: SocketCore, fake: FakeClient, id = 7): Promise<number> {
  const h = core.open(4).handle!;
  const done = core.connect(h, "127.0.0.1", 80, true) as Promise<number>;
  fake.connects.at(-1)!.resolve(id);
  assert.equal(await done, 0);
  return h;
}

Deno.test("core: connect without waiting is INPROGRESS, then writable; states along the way", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake);
  const h = core.open(4).handle!;
  assert.equal(core.connect(h, "example.com", 80, false), Errno.INVAL, "names are not addresses");
  assert.equal(core.connect(h, "::1", 80, false), Errno.AFNOSUPPORT);
  assert.equal(core.connect(h, "127.0.0.1", 80, false), Errno.INPROGRESS);
  assert.equal(core.connect(h, "127.0.0.1", 80, false), Errno.ALREADY);
  assert.equal(core.status(h).status, SockStatus.OPENING);
  assert.deepEqual(core.ready([{ handle: h, interest: "write" }]), []);
  assert.deepEqual(core.send(h, bytes("x"), false), { errno: Errno.AGAIN });
  const wait = core.poll([{ handle: h, interest: "write" }], null);
  fake.connects[0].resolve(9);
  assert.equal((await wait).length, 1);
  assert.equal(core.status(h).status, SockStatus.OPENED);
  assert.equal(core.connect(h, "127.0.0.1", 80, false), Errno.ISCONN);
  assert.deepEqual(core.peerAddress(h), { errno: 0, addr: { family: 4, address: "127.0.0.1", port: 80 } });
  assert.deepEqual(core.send(h, bytes("hi"), false), { errno: 0, n: 2 });
  assert.equal(text(fake.sent[0][1]), "hi");
  assert.equal(fake.sent[0][0], 9);
});

Deno.test("core: a refused or denied connect gives the mapped errno and a FAILED status", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake);
  const a = core.open(4).handle!;
  const pa = core.connect(a, "127.0.0.1", 1, true);
  fake.connects[0].reject({ kind: "failed", code: "CONNECT_FAILED" });
  assert.equal(await pa, Errno.CONNREFUSED);
  assert.equal(core.status(a).status, SockStatus.FAILED);
  const b = core.open(4).handle!;
  const pb = core.connect(b, "10.0.0.1", 22, true);
  fake.connects[1].reject({ kind: "denied", code: "POLICY_DENIED" });
  assert.equal(await pb, Errno.ACCES);
});

Deno.test("core: recv returns buffered bytes, honours peek, AGAIN when empty, empty at end of stream", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake);
  const h = await connected(core, fake);
  assert.deepEqual(core.recv(h, 10, false, false), { errno: Errno.AGAIN });
  fake.dataHandlers.get(7)!(bytes("hello "));
  fake.dataHandlers.get(7)!(bytes("world"));
  assert.deepEqual(core.ready([{ handle: h, interest: "read" }]), [{
    index: 0,
    errno: 0,
    nbytes: 11,
    hup: false,
  }]);
  assert.equal(text((core.recv(h, 8, true, false) as { data: Uint8Array }).data), "hello wo");
  assert.equal(text((core.recv(h, 8, false, false) as { data: Uint8Array }).data), "hello wo");
  const waiting = core.recv(h, 100, false, true) as { data: Uint8Array };
  assert.equal(text(waiting.data), "rld");
  const later = core.recv(h, 100, false, true) as Promise<{ errno: number; data?: Uint8Array }>;
  fake.closeHandlers.get(7)!();
  assert.deepEqual(await later, { errno: 0, data: new Uint8Array(0) });
  assert.deepEqual(core.send(h, bytes("x"), false), { errno: Errno.PIPE });
  assert.equal(core.status(h).status, SockStatus.CLOSED);
});

Deno.test("core: the receive buffer is bounded; overflowing it fails the socket with NOBUFS and closes it", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake, { maxBuffered: 10 });
  const h = await connected(core, fake);
  fake.dataHandlers.get(7)!(new Uint8Array(8));
  assert.deepEqual(core.ready([{ handle: h, interest: "read" }])[0].nbytes, 8);
  fake.dataHandlers.get(7)!(new Uint8Array(8));
  assert.deepEqual(core.recv(h, 100, false, false), { errno: Errno.NOBUFS });
  assert.deepEqual(fake.closed, [7]);
});

Deno.test("core: a receive timeout ends a blocking recv with AGAIN", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake);
  const h = await connected(core, fake);
  core.setOption(h, OPT_RECV_TIMEOUT, 20_000_000n);
  const t0 = Date.now();
  assert.deepEqual(await core.recv(h, 10, false, true), { errno: Errno.AGAIN });
  assert.ok(Date.now() - t0 >= 15);
});

Deno.test("core: bind, listen, accept; the backlog bounds queued connections", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake);
  const h = core.open(4).handle!;
  assert.equal(core.bind(h, "::1", 0), Errno.AFNOSUPPORT);
  assert.equal(core.bind(h, "127.0.0.1", 0), 0);
  assert.equal(core.bind(h, "127.0.0.1", 0), Errno.INVAL);
  assert.equal(await core.listen(h, 2), 0);
  assert.deepEqual(core.localAddress(h), { errno: 0, addr: { family: 4, address: "127.0.0.1", port: 4321 } });
  assert.deepEqual(await core.accept(h, false), { errno: Errno.AGAIN });
  const accept = fake.acceptHandlers.get(100)!;
  const waiting = core.accept(h, true);
  accept(201, "127.0.0.1:5001");
  const first = await waiting;
  assert.equal(first.errno, 0);
  assert.deepEqual(first.peer, { family: 4, address: "127.0.0.1", port: 5001 });
  accept(202, "127.0.0.1:5002");
  accept(203, "[::1]:5003");
  accept(204, "127.0.0.1:5004");
  assert.deepEqual(fake.closed, [204], "past the backlog of 2, connections are refused");
  assert.deepEqual(core.acceptNow(h).peer?.port, 5002);
  assert.deepEqual(core.acceptNow(h).peer, { family: 6, address: "::1", port: 5003 });
  const child = first.handle!;
  fake.dataHandlers.get(201)!(bytes("ping"));
  assert.equal(text((core.recv(child, 10, false, false) as { data: Uint8Array }).data), "ping");
});

Deno.test("core: a bind the server refuses is reported by listen", async () => {
  const fake = new FakeClient();
  fake.bindResult = Object.assign(new Error("in use"), { kind: "failed", code: "BIND_FAILED" });
  const core = new SocketCore(fake);
  const h = core.open(4).handle!;
  core.bind(h, "127.0.0.1", 80);
  assert.equal(await core.listen(h), Errno.ADDRINUSE);
  assert.equal(core.state(h), "bound");
});

Deno.test("core: shutdown, close while connecting, resolve, socket limit", async () => {
  const fake = new FakeClient();
  fake.names["db.internal"] = ["10.0.0.5", "junk"];
  const core = new SocketCore(fake, { maxSockets: 2 });
  const h = await connected(core, fake);
  assert.equal(core.shutdown(h, 0), Errno.INVAL);
  assert.equal(core.shutdown(h, 2), 0);
  assert.deepEqual(core.send(h, bytes("x"), false), { errno: Errno.PIPE });
  assert.equal(core.shutdown(h, 1), 0);
  assert.deepEqual(core.recv(h, 4, false, true), { errno: 0, data: new Uint8Array(0) });
  const c = core.open(4).handle!;
  assert.equal(core.open(4).errno, Errno.MFILE);
  core.connect(c, "127.0.0.1", 80, false);
  assert.equal(core.close(c), 0);
  fake.connects.at(-1)!.resolve(55);
  await Promise.resolve();
  assert.ok(fake.closed.includes(55), "a connection finishing after close is closed at once");
  assert.equal(core.close(c), Errno.BADF);
  assert.deepEqual(await core.resolve("db.internal"), { errno: 0, addrs: ["10.0.0.5"] });
  assert.deepEqual(await core.resolve("nowhere"), { errno: Errno.NOENT });
  assert.deepEqual(await core.resolve("::1"), { errno: 0, addrs: ["::1"] });
});

Deno.test("core: poll with a timeout and nothing ready returns empty", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake);
  const h = await connected(core, fake);
  assert.deepEqual(await core.poll([{ handle: h, interest: "read" }], 10), []);
  assert.deepEqual(await core.poll([{ handle: 999, interest: "read" }], 10), [{
    index: 0,
    errno: Errno.BADF,
    nbytes: 0,
    hup: false,
  }]);
});

Deno.test("core: UDP opens towards the first destination, queues early datagrams, receives with sources", async () => {
  const fake = new FakeClient();
  const core = new SocketCore(fake, { maxBuffered: 12 });
  const h = core.open(4, "dgram").handle!;
  assert.deepEqual(core.send(h, bytes("x"), false), { errno: Errno.DESTADDRREQ });
  assert.deepEqual(core.sendTo(h, bytes("early"), "127.0.0.1", 53, false), { errno: 0, n: 5 });
  assert.deepEqual(core.sendTo(h, bytes("later"), "127.0.0.2", 53, false), { errno: 0, n: 5 });
  assert.equal(fake.udpOpens.length, 1);
  fake.udpOpens[0].resolve({ id: 70, port: 40000 });
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(fake.sent.map(([id, d]) => [id, text(d)]), [[70, "early"]], "to the target: plain send");
  assert.deepEqual(fake.sentTo.map(([id, a, p, d]) => [id, a, p, text(d)]), [[70, "127.0.0.2", 53, "later"]]);
  assert.equal(core.localAddress(h).addr?.port, 40000);
  fake.dataHandlers.get(70)!(bytes("answer"));
  fake.dataFromHandlers.get(70)!(bytes("other"), "127.0.0.2", 53);
  fake.dataFromHandlers.get(70)!(bytes("dropped: over the bound"), "127.0.0.2", 53);
  const a = core.recvFrom(h, 3, false, false) as { data: Uint8Array; from: unknown; truncated: boolean };
  assert.deepEqual([text(a.data), a.from, a.truncated], [
    "ans",
    { family: 4, address: "127.0.0.1", port: 53 },
    true,
  ]);
  const b = core.recvFrom(h, 100, false, false) as { data: Uint8Array; from: unknown; truncated: boolean };
  assert.deepEqual([text(b.data), b.from, b.truncated], ["other", {
    family: 4,
    address: "127.0.0.2",
    port: 53,
  }, false]);
  assert.deepEqual(core.recvFrom(h, 100, false, false), { errno: Errno.AGAIN });
  assert.equal(await core.connect(h, "127.0.0.2", 53, true), 0);
  assert.deepEqual(core.send(h, bytes("c"), false), { errno: 0, n: 1 });
  assert.equal(fake.sentTo.length, 2);
});

Deno.test("core: a full send buffer makes a blocking send wait, a non-blocking one AGAIN, and poll not writable", async () => {
  let unsent = 0;
  const fake = Object.assign(new FakeClient(), { bufferedAmount: () => unsent });
  const core = new SocketCore(fake, { maxUnsent: 1000 });
  const h = await connected(core, fake);
  assert.deepEqual(core.send(h, bytes("a"), false), { errno: 0, n: 1 });
  unsent = 5000; // the network is behind
  assert.deepEqual(core.send(h, bytes("b"), false), { errno: Errno.AGAIN });
  assert.deepEqual(core.ready([{ handle: h, interest: "write" }]), []);
  let done = false;
  const blocking = (core.send(h, bytes("c"), true) as Promise<{ errno: number; n?: number }>)
    .then((r) => (done = true, r));
  const writable = core.poll([{ handle: h, interest: "write" }], null);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "the blocking send waits while the buffer is full");
  unsent = 0;
  assert.deepEqual(await blocking, { errno: 0, n: 1 });
  assert.equal((await writable).length, 1, "writable again once drained");
  assert.deepEqual(fake.sent.map(([, d]) => text(d)), ["a", "c"], "the AGAIN send sent nothing");
});

Deno.test("core: the program's bytes are copied before send unless the client says it copies", async () => {
  for (const copiesOnSend of [false, true]) {
    const fake = Object.assign(new FakeClient(), { copiesOnSend });
    const core = new SocketCore(fake);
    const h = await connected(core, fake);
    const memory = bytes("mem");
    core.send(h, memory, false);
    assert.equal(fake.sent[0][1] === memory, copiesOnSend);
    assert.equal(text(fake.sent[0][1]), "mem");
  }
});
