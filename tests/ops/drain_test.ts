/**
 * Drain on SIGTERM, as an operator's deploy does it: a real `wasmnet-server` subprocess, real signals. While
 * draining, `/readyz` says 503, new upgrades get 503, and open sessions keep working: a transfer in flight
 * arrives whole, and the client can still send. The drain ends when the last session closes (exit 0), at
 * `drain_timeout_secs` (sessions closed with 1001), or at once on a second SIGTERM.
 */

import assert from "node:assert/strict";
import { b64, startTcpServer, TestClient } from "../helpers.ts";
import { encodeBinaryRequest } from "@wasmnet/protocol";
import { encodePacket, StreamType } from "../../src/frontends/wisp/packets.ts";
import { CountingSocket, spawnWithAdmin, startOpsServer, until, upgradeStatus } from "./ops_helpers.ts";

const TOTAL = 2 * 1024 * 1024;
const CHUNK = 32 * 1024;

/** A policy file with `drain_timeout_secs` and an admin listener on a free loopback port. */
async function policyFile(dir: string, drainSecs: number): Promise<string> {
  const path = `${dir}/policy.toml`;
  await Deno.writeTextFile(
    path,
    `[network]\ndeny = []\nallow = ["127.0.0.1"]\n[server]\ndrain_timeout_secs = ${drainSecs}\n[admin]\nlisten = "0"\n`,
  );
  return path;
}

/** A peer that, on its first byte, sends TOTAL bytes (byte i = i % 251) in paced chunks, and logs what it gets. */
function startPacedSender() {
  const received: string[] = [];
  let wake: (() => void) | undefined;
  const peer = startTcpServer(async (conn) => {
    const buf = new Uint8Array(1024);
    const first = await conn.read(buf);
    if (first === null) return;
    const reading = (async () => {
      for (let n; (n = await conn.read(buf).catch(() => null)) !== null;) {
        received.push(new TextDecoder().decode(buf.subarray(0, n)));
        wake?.();
      }
    })();
    for (let sent = 0; sent < TOTAL; sent += CHUNK) {
      const chunk = new Uint8Array(CHUNK);
      for (let i = 0; i < CHUNK; i++) chunk[i] = (sent + i) % 251;
      await conn.write(chunk);
      await new Promise((r) => setTimeout(r, 10));
    }
    await reading;
  });
  return {
    peer,
    received,
    async got(text: string) {
      while (!received.join("").includes(text)) await new Promise<void>((r) => (wake = r));
    },
  };
}

Deno.test("drain: readyz and new upgrades get 503 at once, a transfer in flight arrives whole, the last close ends it", async () => {
  const dir = await Deno.makeTempDir();
  const sender = startPacedSender();
  const srv = await spawnWithAdmin(["--policy", await policyFile(dir, 60)]);
  try {
    assert.equal((await fetch(`${srv.admin}/readyz`)).status, 200);
    const c = new TestClient(srv.url);
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: sender.peer.port });
    await c.event("connected", 1);
    c.json({ op: "send", id: 1, data: b64("g") });
    let got = 0, bad = -1;
    const take = async () => {
      const data = Uint8Array.fromBase64((await c.event("data", 1)).data as string);
      for (let i = 0; i < data.length; i++) if (data[i] !== (got + i) % 251 && bad < 0) bad = got + i;
      got += data.length;
    };
    await take(); // the transfer is under way
    srv.child.kill("SIGTERM");
    await until(
      async () => {
        const res = await fetch(`${srv.admin}/readyz`);
        await res.body?.cancel();
        return res.status === 503;
      },
      5000,
      "/readyz to answer 503",
    );
    assert.equal(await upgradeStatus(srv.url), 503, "a new session is refused while draining");
    assert.ok(got < TOTAL, "the transfer was still in flight when the drain began");
    while (got < TOTAL) await take();
    assert.equal(got, TOTAL);
    assert.equal(bad, -1, "every byte in order");
    c.json({ op: "send", id: 1, data: b64("still here") }); // the session still works both ways
    await sender.got("still here");
    await c.close(); // the last session: the drain ends now, not at 60 s
    const status = await srv.child.status;
    assert.equal(status.code, 0);
    const { stdout, stderr } = await srv.output();
    assert.match(stdout, /"event":"draining"/);
    assert.doesNotMatch(stderr, /drain_timeout/, "ended by the last close, not the timeout");
    assert.match(stdout, /"event":"access".*"frontend":"wasmnet"/);
  } finally {
    await srv.stop();
    await sender.peer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("drain: at drain_timeout_secs open sessions are closed with 1001 and the process exits 0", async () => {
  const dir = await Deno.makeTempDir();
  const srv = await spawnWithAdmin(["--policy", await policyFile(dir, 1)]);
  try {
    const c = new TestClient(srv.url);
    await c.opened;
    srv.child.kill("SIGTERM");
    assert.equal((await c.closed).code, 1001);
    assert.equal((await srv.child.status).code, 0);
    const { stderr } = await srv.output();
    assert.match(stderr, /"level":"warn","event":"drain_timeout","sessions":1,"timeout_secs":1/);
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("drain: a second SIGTERM ends it at once", async () => {
  const dir = await Deno.makeTempDir();
  const srv = await spawnWithAdmin(["--policy", await policyFile(dir, 600)]);
  try {
    const c = new TestClient(srv.url);
    await c.opened;
    srv.child.kill("SIGTERM");
    await until(async () => {
      const res = await fetch(`${srv.admin}/readyz`);
      await res.body?.cancel();
      return res.status === 503;
    });
    srv.child.kill("SIGTERM");
    assert.equal((await c.closed).code, 1001);
    assert.equal((await srv.child.status).code, 0);
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * One front end's upload for the deadline test: opens a socket to `port` through `ws`, then sends `total`
 * bytes of payload; returns the client once every message is sent.
 */
type Uploader = (ws: string, port: number, total: number) => Promise<CountingSocket>;

const CHUNK_UP = 256 * 1024; // under max_message_bytes (1 MiB)

const uploaders: [string, number, Uploader][] = [
  ["wasmnet", 24 * 1024 * 1024, async (ws, port, total) => {
    const c = new CountingSocket(`${ws}/`);
    await c.opened;
    c.send(JSON.stringify({ op: "connect", id: 1, addr: "127.0.0.1", port }));
    await c.event("connected");
    for (let sent = 0; sent < total; sent += CHUNK_UP) {
      c.send(encodeBinaryRequest({ op: "send", id: 1, data: new Uint8Array(CHUNK_UP).fill(7) }));
    }
    return c;
  }],
  // Wisp queues at most 16 MiB per stream (and v1 grants 128 packets): 14 MiB fits both.
  ["Wisp", 14 * 1024 * 1024, async (ws, port, total) => {
    const c = new CountingSocket(`${ws}/wisp/`);
    await c.opened;
    await c.next(); // CONTINUE on stream 0
    c.send(
      encodePacket({ type: "connect", streamId: 1, streamType: StreamType.TCP, port, host: "127.0.0.1" }),
    );
    for (let sent = 0; sent < total; sent += CHUNK_UP) {
      c.send(encodePacket({ type: "data", streamId: 1, data: new Uint8Array(CHUNK_UP).fill(7) }));
    }
    return c;
  }],
  // The POSIX proxy answers each send once the kernel took it: the client sends without waiting for them.
  ["POSIX proxy", 24 * 1024 * 1024, async (ws, port, total) => {
    const c = new CountingSocket(`${ws}/posix/`);
    await c.opened;
    let callId = 1;
    const post = (fn: number, ints: number[], tail = new Uint8Array()) => {
      const out = new Uint8Array(8 + ints.length * 4 + tail.length);
      const v = new DataView(out.buffer);
      v.setInt32(0, callId, true);
      v.setInt32(4, fn, true);
      ints.forEach((n, i) => v.setInt32(8 + i * 4, n, true));
      out.set(tail, 8 + ints.length * 4);
      c.send(out);
      return callId++;
    };
    const answer = async (id: number) => {
      const reply = await c.next((m) =>
        m instanceof Uint8Array && new DataView(m.buffer).getInt32(0, true) === id
      );
      return new DataView((reply as Uint8Array).buffer).getInt32(4, true);
    };
    const SOCKET = 1, CONNECT = 5, SEND = 10;
    const fd = await answer(post(SOCKET, [2, 1, 0]));
    const sin = new Uint8Array(16);
    new DataView(sin.buffer).setUint16(0, 2, true);
    new DataView(sin.buffer).setUint16(2, port, false);
    sin.set([127, 0, 0, 1], 4);
    assert.equal(await answer(post(CONNECT, [fd, 16], sin)), 0);
    for (let sent = 0; sent < total; sent += CHUNK_UP) {
      post(SEND, [fd, CHUNK_UP, 0], new Uint8Array(CHUNK_UP).fill(7));
    }
    return c;
  }],
  ["websockify", 24 * 1024 * 1024, async (ws, port, total) => {
    const c = new CountingSocket(`${ws}/tcp/127.0.0.1:${port}`, "binary");
    await c.opened;
    for (let sent = 0; sent < total; sent += CHUNK_UP) c.send(new Uint8Array(CHUNK_UP).fill(7));
    return c;
  }],
];

for (const [name, total, upload] of uploaders) {
  Deno.test(`drain: at the deadline, what a ${name} client already sent is written out, then the close`, async () => {
    let startReading!: () => void;
    const reading = new Promise<void>((r) => (startReading = r));
    let got = 0;
    let eof!: () => void;
    const ended = new Promise<void>((r) => (eof = r));
    const target = startTcpServer(async (conn) => {
      await reading; // a slow target: reads nothing until the session has been closed
      const buf = new Uint8Array(256 * 1024);
      for (let n; (n = await conn.read(buf)) !== null;) got += n;
      eof();
    });
    const srv = await startOpsServer();
    try {
      const c = await upload(srv.ws, target.port, total);
      // Every message has reached the server (which holds the bytes: the target reads nothing) in the window.
      const [meter] = srv.server.metrics!.liveSessions;
      await until(() => meter.bytesUp === c.sentBytes, 20_000, "the server to receive every message");
      const drained = srv.server.drain(300);
      assert.equal((await c.closed).code, 1001, "closed with 1001 at the deadline");
      startReading();
      await drained;
      await ended;
      assert.equal(got, total, "every byte the client sent reached the target, then end-of-stream");
    } finally {
      startReading();
      await srv.close();
      await target.close();
    }
  });
}
