/**
 * Issue 13, findings 1 and 2, against the real CLI: a client cannot kill the process by exhausting its
 * file descriptors (the server runs under a low `ulimit -n`), cannot hold connections that never finish
 * their request head, and cannot grow memory with a message split into fragments.
 */

import assert from "node:assert/strict";
import { spawnCli, startTcpEchoServer } from "../helpers.ts";
import { alive, rss } from "./proc.ts";
import { clientFrame, rawHandshake, settledSession, write } from "./raw_ws.ts";

const MiB = 1024 * 1024;

async function policyFile(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".toml" });
  await Deno.writeTextFile(path, text);
  return path;
}

/** Opens `n` TCP connections to `port` that send nothing (as many as the server lets connect). */
async function idleConnections(port: number, n: number): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < n; i++) {
    try {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      break; // our own fd limit
    }
  }
  return conns;
}

/** Reads until the server closes the connection or `ms` pass; true when it closed (EOF or reset). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(1024);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    while ((await conn.read(buf)) !== null) { /* an answer (408, 429): keep reading to the end */ }
    clearTimeout(timer);
    return true;
  } catch (err) {
    clearTimeout(timer);
    return !(err instanceof Deno.errors.BadResource); // BadResource: we closed it on the timer
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** A session opens and answers a request (the server still serves new clients). */
async function sessionWorks(port: number): Promise<boolean> {
  const h = await rawHandshake(port);
  try {
    if (h.status !== 101) return false;
    await write(h.conn, clientFrame(1, new TextEncoder().encode('{"op":"close","id":5}')));
    const buf = new Uint8Array(4096);
    const n = await h.conn.read(buf);
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).includes("UNKNOWN_ID");
  } finally {
    h.conn.close();
  }
}

Deno.test({
  name:
    "fd exhaustion: under ulimit -n 256, 300 idle connections do not kill the server; it warns at start-up",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // Caps high enough that only the fd limit stops the connections (the finding: 231 were enough).
    const policy = await policyFile("[server]\nmax_handshakes = 5000\nmax_handshakes_per_ip = 5000\n");
    const server = await spawnCli(["--policy", policy, "--quiet"], { ulimitFiles: 256 });
    let conns: Deno.TcpConn[] = [];
    try {
      conns = await idleConnections(server.port, 300);
      assert.ok(conns.length >= 250, `connected ${conns.length}`);
      // The server sheds the oldest handshakes to accept new ones: a new session gets in and is served.
      assert.ok(await sessionWorks(server.port), "a new session is served while fds are exhausted");
      assert.ok(await alive(server.pid), "the server is alive");
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* shed by the server */ }
      }
      await server.stop();
      await Deno.remove(policy);
    }
    const { stderr } = await server.output();
    assert.match(stderr, /warning: only \d+ more files can be opened \(ulimit -n\), below the \d+ the caps/);
    assert.match(stderr, /out of file descriptors/);
    assert.doesNotMatch(stderr, /Uncaught/);
  },
});

Deno.test({
  name:
    "fd exhaustion by sockets: 5 sessions x 45 connects under ulimit -n 256, then a 6th handshake waits, never crashes",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const echo = startTcpEchoServer();
    const policy = await policyFile(
      '[network]\nallow = ["127.0.0.1"]\ndeny = []\nmax_connections = 50\nmax_pending_connects = 50\n',
    );
    const server = await spawnCli(["--policy", policy, "--quiet"], { ulimitFiles: 256 });
    const sessions: Deno.TcpConn[] = [];
    try {
      for (let s = 0; s < 5; s++) {
        const h = await rawHandshake(server.port);
        assert.equal(h.status, 101);
        sessions.push(h.conn);
        for (let i = 1; i <= 45; i++) {
          const connect = JSON.stringify({ op: "connect", id: i, addr: "127.0.0.1", port: echo.port });
          await write(h.conn, clientFrame(1, new TextEncoder().encode(connect)));
        }
      }
      await new Promise((r) => setTimeout(r, 1000)); // the connects complete or fail with an error reply
      // The 6th handshake finds no fd, or one: either way the process lives and answers once fds are free.
      const sixth = rawHandshake(server.port).catch(() => null);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(await alive(server.pid), "the server is alive with fds exhausted");
      sessions.shift()!.close(); // one session ends: its sockets are closed, fds come back
      const h = await sixth;
      h?.conn.close();
      assert.ok(await sessionWorks(server.port), "served again once a session ended");
      assert.ok(await alive(server.pid));
    } finally {
      for (const c of sessions) c.close();
      await server.stop();
      await echo.close();
      await Deno.remove(policy);
    }
    const { stderr } = await server.output();
    assert.doesNotMatch(stderr, /Uncaught/);
  },
});

Deno.test({
  name:
    "handshakes: a slow head is dropped after header_timeout_secs; one IP holds at most max_handshakes_per_ip",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const policy = await policyFile("[server]\nheader_timeout_secs = 1\nmax_handshakes_per_ip = 4\n");
    const server = await spawnCli(["--policy", policy, "--quiet"]);
    try {
      const slow = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await write(slow, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
      assert.ok(await closedWithin(slow, 5000), "a head not finished in 1 s is dropped");
      // Four idle connections are held; the fifth from the same address is refused at once (429).
      const held = await idleConnections(server.port, 4);
      await new Promise((r) => setTimeout(r, 100));
      const fifth = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const buf = new Uint8Array(512);
      const n = await fifth.read(buf);
      assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 429 /);
      fifth.close();
      // The held ones are dropped by the header timeout too, and the address has its share back.
      for (const c of held) assert.ok(await closedWithin(c, 5000));
      assert.ok(await sessionWorks(server.port));
    } finally {
      await server.stop();
      await Deno.remove(policy);
    }
  },
});

Deno.test({
  name:
    "fragments: 150 frames of 1 MiB without FIN close with 1009 at max_message_bytes; RSS stays under +40 MiB",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const server = await spawnCli(["--no-policy", "--quiet"]);
    try {
      const h = await settledSession(server.port);
      const before = await rss(server.pid);
      // A frame without FIN (opcode text, then continuations), 1 MiB each: one is within the default bound.
      const fragment = (first: boolean) => {
        const f = clientFrame(first ? 1 : 2, new Uint8Array(MiB).fill(0x61));
        f[0] = first ? 0x01 : 0x00; // FIN clear; continuation opcode after the first
        return f;
      };
      let sent = 0;
      let closeCode = 0;
      let sentAtClose = 0;
      const reader = (async () => {
        const buf = new Uint8Array(65536);
        let got = new Uint8Array(0);
        for (;;) {
          const n = await h.conn.read(buf).catch(() => null);
          if (n === null) return;
          got = new Uint8Array([...got, ...buf.subarray(0, n)]);
          if (got.length >= 4 && (got[0] & 0x0f) === 8 && closeCode === 0) {
            closeCode = (got[2] << 8) | got[3];
            sentAtClose = sent;
          }
        }
      })();
      const waitForClose = async (ms: number) => {
        for (const end = performance.now() + ms; closeCode === 0 && performance.now() < end;) {
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      try {
        for (let i = 0; i < 150; i++) {
          await write(h.conn, fragment(i === 0));
          sent += MiB;
          // Two fragments pass the 1 MiB bound: the close must come now, while the message arrives.
          if (i === 1) await waitForClose(5000);
        }
      } catch {
        // the server closed the connection: what we want
      }
      await reader;
      const after = await rss(server.pid);
      assert.equal(closeCode, 1009, `close code after ${sent / MiB} MiB sent`);
      // The close comes once the bound is passed (the server then discards what follows, holding none).
      assert.ok(sentAtClose <= 2 * MiB, `closed after ${sentAtClose / MiB} MiB`);
      assert.ok(after - before < 40 * MiB, `RSS grew ${((after - before) / MiB).toFixed(1)} MiB`);
      assert.ok(await sessionWorks(server.port));
    } finally {
      await server.stop();
    }
  },
});
