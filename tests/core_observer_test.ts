/**
 * The socket core's observer seam end to end: a server given an observer (src/core/observer.ts) sees the
 * sockets of every front end (wasmnet, websockify, Wisp's wsproxy form) opened, connected, failed and
 * closed, without any front end knowing about it.
 */

import assert from "node:assert/strict";
import { Server } from "../src/server.ts";
import { Policy } from "../src/policy/mod.ts";
import type { SocketObserver } from "../src/core/observer.ts";
import { b64, startTcpEchoServer, TestClient } from "./helpers.ts";

/** Records one line per call, and waits until a count of lines is reached. */
function recordingObserver() {
  const lines: string[] = [];
  const waiters: { line: string; count: number; resolve: () => void }[] = [];
  const count = (line: string) => lines.filter((l) => l === line).length;
  const push = (line: string) => {
    lines.push(line);
    for (const w of waiters.filter((w) => count(w.line) >= w.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const observer: SocketObserver = {
    opened: (kind) => push(`opened ${kind}`),
    closed: (kind) => push(`closed ${kind}`),
    connected: (kind) => push(`connected ${kind}`),
    failed: (code) => push(`failed ${code}`),
  };
  const reached = (line: string, n: number, ms = 5000) =>
    count(line) >= n ? Promise.resolve() : new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`"${line}" not seen ${n} times: ${JSON.stringify(lines)}`)),
        ms,
      );
      waiters.push({ line, count: n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  return { lines, observer, reached, count };
}

Deno.test("core observer: wasmnet, websockify and wsproxy sockets all reach the server's observer", async () => {
  const echo = startTcpEchoServer();
  const rec = recordingObserver();
  const policy = Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["*"] } });
  const server = new Server({
    hostname: "127.0.0.1",
    port: 0,
    policy,
    log: () => {},
    observer: rec.observer,
  });
  const ac = new AbortController();
  const running = await server.serve({ signal: ac.signal });
  const base = `ws://127.0.0.1:${running.addr.port}`;
  try {
    // wasmnet: one connect that works, one the policy refuses.
    const c = new TestClient(`${base}/`);
    await c.opened;
    c.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    await c.event("connected", 1);
    c.json({ op: "send", id: 1, data: b64("hi") });
    await c.event("data", 1);
    c.json({ op: "connect", id: 2, addr: "10.0.0.1", port: 80 });
    await c.event("denied", 2);
    c.json({ op: "close", id: 1 });
    await c.event("closed", 1);
    await rec.reached("closed tcp", 1);
    await c.close();
    assert.deepEqual(rec.lines, ["connected tcp", "opened tcp", "failed POLICY_DENIED", "closed tcp"]);

    // websockify: one WebSocket, one TCP connection.
    const w = new TestClient(`${base}/tcp/127.0.0.1:${echo.port}`, ["binary"]);
    await w.opened;
    await rec.reached("opened tcp", 2);
    await w.close();
    await rec.reached("closed tcp", 2);

    // Wisp's wsproxy form: the same, through the Wisp front end.
    const x = new TestClient(`${base}/wisp/127.0.0.1:${echo.port}`);
    await x.opened;
    await rec.reached("opened tcp", 3);
    await x.close();
    await rec.reached("closed tcp", 3);
  } finally {
    ac.abort();
    await running.finished;
    await echo.close();
  }
  assert.equal(rec.count("connected tcp"), 3);
  assert.equal(rec.count("opened tcp"), rec.count("closed tcp"));
});
