/**
 * The socket core's observer seam end to end: a server given an observer sees every front end's sessions
 * and sockets (by front end and kind) without any front end knowing about it.
 */

import assert from "node:assert/strict";
import { Server } from "../src/server.ts";
import { Policy } from "../src/policy/mod.ts";
import type { CoreObserver, CoreSessionInfo } from "../src/core/core.ts";
import { b64, startTcpEchoServer, TestClient } from "./helpers.ts";

/** Records `frontend: event` lines, and waits for one. */
function recordingObserver() {
  const lines: string[] = [];
  const waiters: { line: string; resolve: () => void }[] = [];
  const push = (line: string) => {
    lines.push(line);
    for (const w of waiters.filter((w) => w.line === line)) {
      (waiters.splice(waiters.indexOf(w), 1), w.resolve());
    }
  };
  const observer: CoreObserver = {
    sessionOpened: (s: CoreSessionInfo) => {
      push(`${s.frontend}: session`);
      return {
        socketOpened: (kind) => push(`${s.frontend}: opened ${kind}`),
        socketClosed: (kind) => push(`${s.frontend}: closed ${kind}`),
        failed: (kind, code) => push(`${s.frontend}: failed ${kind} ${code}`),
        sessionClosed: () => push(`${s.frontend}: session closed`),
      };
    },
  };
  const seen = (line: string, ms = 5000) =>
    lines.includes(line) ? Promise.resolve() : new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`never saw "${line}"; saw ${JSON.stringify(lines)}`)),
        ms,
      );
      waiters.push({ line, resolve: () => (clearTimeout(timer), resolve()) });
    });
  return { lines, observer, seen };
}

Deno.test("core observer: wasmnet, websockify and Wisp's wsproxy sessions report their sockets by front end", async () => {
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
    await rec.seen("wasmnet: closed tcp");
    await c.close();
    await rec.seen("wasmnet: session closed");

    // websockify: one WebSocket, one TCP connection.
    const w = new TestClient(`${base}/tcp/127.0.0.1:${echo.port}`, ["binary"]);
    await w.opened;
    await rec.seen("websockify: opened tcp");
    await w.close();
    await rec.seen("websockify: closed tcp");

    // Wisp's wsproxy form: the same, under the Wisp front end.
    const x = new TestClient(`${base}/wisp/127.0.0.1:${echo.port}`);
    await x.opened;
    await rec.seen("wisp: opened tcp");
    await x.close();
    await rec.seen("wisp: closed tcp");
  } finally {
    ac.abort();
    await running.finished;
    await echo.close();
  }
  const wasmnet = rec.lines.filter((l) => l.startsWith("wasmnet:"));
  assert.deepEqual(wasmnet, [
    "wasmnet: session",
    "wasmnet: opened tcp",
    "wasmnet: failed tcp POLICY_DENIED",
    "wasmnet: closed tcp",
    "wasmnet: session closed",
  ]);
  for (const frontend of ["websockify", "wisp"]) {
    const lines = rec.lines.filter((l) => l.startsWith(`${frontend}:`));
    // A socket may finish after its session (websockify writes what the browser sent, then closes).
    assert.deepEqual(lines.slice(0, 2), [`${frontend}: session`, `${frontend}: opened tcp`]);
    assert.deepEqual(lines.slice(2).sort(), [`${frontend}: closed tcp`, `${frontend}: session closed`]);
  }
});
