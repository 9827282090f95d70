/**
 * Flow control (protocol v2) end to end: real WebSocket, real TCP peers, the real wasmnet endpoint. The
 * sessions are captured through the endpoint's `track` hook so the test can read what each socket holds
 * server-side (bytes, not time).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DEFAULT_UPLOAD_WINDOW, INITIAL_WINDOW, PROTOCOL_V2 } from "../src/frontends/wasmnet/flow.ts";
import { decodeBinaryEvent, encodeBinaryRequest, type Event, type Request } from "@wasmnet/protocol";
import { startSessionServer, startTcpEchoServer, startTcpServer, TestClient } from "./helpers.ts";

/** A TCP source that writes `total` bytes as fast as the network takes them, then closes. */
function startSource(total: number) {
  return startTcpServer(async (conn) => {
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let left = total;
    try {
      while (left > 0) left -= await conn.write(chunk.subarray(0, Math.min(chunk.length, left)));
    } finally {
      conn.close();
    }
  });
}

/** A minimal binary v2 client: counts data per socket, grants credit only when the test says so. */
class V2Client {
  readonly ws: WebSocket;
  readonly received = new Map<number, number>();
  readonly credit = new Map<number, number>();
  readonly events: Event[] = [];
  #waiters: { pred: () => boolean; resolve: () => void }[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url, [PROTOCOL_V2]);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("websocket error"));
    });
    this.closed = new Promise((resolve) => this.ws.addEventListener("close", () => resolve()));
    this.ws.onmessage = (e) => {
      const event = decodeBinaryEvent(new Uint8Array(e.data as ArrayBuffer));
      if (event.ev === "data") {
        this.received.set(event.id, (this.received.get(event.id) ?? 0) + event.data.length);
      } else {
        if (event.ev === "credit") {
          this.credit.set(event.id, (this.credit.get(event.id) ?? 0) + event.bytes);
        }
        this.events.push(event);
      }
      this.#wake();
    };
  }

  send(request: Request): void {
    this.ws.send(encodeBinaryRequest(request));
  }

  /** Resolves once `pred` holds (checked after every message); rejects after `ms`. */
  until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${what}`));
      }, ms);
      const waiter = { pred, resolve: () => (clearTimeout(timer), resolve()) };
      this.#waiters.push(waiter);
    });
  }

  event(ev: string, id: number): Promise<void> {
    return this.until(() => this.events.some((e) => e.ev === ev && e.id === id), `${ev} on ${id}`);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      if (w.pred()) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  async close(): Promise<void> {
    this.ws.close();
    await this.closed;
  }
}

const MiB = 1024 * 1024;

Deno.test("v2: the server answers wasmnet.v2; a slow reader stalls only its own socket, memory bounded", async () => {
  const server = startSessionServer();
  const source = startSource(64 * MiB);
  const client = new V2Client(server.url);
  try {
    await client.opened;
    assert.equal(client.ws.protocol, PROTOCOL_V2);
    const session = server.sessions[0];
    client.send({ op: "connect", id: 1, addr: "127.0.0.1", port: source.port }); // slow: never grants
    client.send({ op: "connect", id: 2, addr: "127.0.0.1", port: source.port }); // fast: grants as it reads
    await client.event("connected", 1);
    await client.event("connected", 2);

    // The fast socket moves 16 MiB while the slow one sits on its initial window.
    let granted = INITIAL_WINDOW;
    const target = 16 * MiB;
    while ((client.received.get(2) ?? 0) < target) {
      await client.until(() => (client.received.get(2) ?? 0) >= granted - INITIAL_WINDOW / 2, "fast data");
      const got = client.received.get(2) ?? 0;
      client.send({ op: "credit", id: 2, bytes: got + INITIAL_WINDOW - granted });
      granted = got + INITIAL_WINDOW;
      // Server-side, socket 2 never has more in flight than the client granted.
      const stats = session.socketStats(2)!;
      assert.ok(stats.sentBytes <= granted, `sent ${stats.sentBytes} > granted ${granted}`);
    }
    assert.ok((client.received.get(2) ?? 0) >= target);

    // The slow socket: exactly its initial window was sent, nothing is held for it, its read is parked.
    await client.until(() => (client.received.get(1) ?? 0) === INITIAL_WINDOW, "slow socket's window");
    const slow = session.socketStats(1)!;
    assert.equal(slow.sentBytes, INITIAL_WINDOW);
    assert.equal(slow.credit, 0);
    assert.equal(slow.queuedBytes, 0);
    assert.ok(session.bufferedAmount <= 2 * MiB, `WebSocket buffer ${session.bufferedAmount}`);

    // Granting it more resumes it, by exactly the grant.
    client.send({ op: "credit", id: 1, bytes: 100_000 });
    await client.until(
      () => (client.received.get(1) ?? 0) === INITIAL_WINDOW + 100_000,
      "slow socket resumes",
    );
    assert.equal(session.socketStats(1)!.sentBytes, INITIAL_WINDOW + 100_000);

    client.send({ op: "close", id: 1 });
    client.send({ op: "close", id: 2 });
    await client.event("closed", 1);
    await client.event("closed", 2);
  } finally {
    await client.close();
    await source.close();
    await server.close();
  }
});

Deno.test("v2: a slow page reading 64 MiB keeps the server's per-socket bytes within the window", async () => {
  const server = startSessionServer();
  const total = 64 * MiB;
  const source = startSource(total);
  const client = new V2Client(server.url);
  try {
    await client.opened;
    const session = server.sessions[0];
    client.send({ op: "connect", id: 7, addr: "127.0.0.1", port: source.port });
    await client.event("connected", 7);
    // The page "reads" 256 KiB at a time and grants exactly what it read: at most one window is ever out.
    const window = 256 * 1024;
    client.send({ op: "credit", id: 7, bytes: window - INITIAL_WINDOW });
    let consumed = 0;
    let maxHeld = 0;
    while (consumed < total) {
      await client.until(
        () => (client.received.get(7) ?? 0) >= consumed + window,
        `a window of data after ${consumed}, got ${client.received.get(7)} ${
          JSON.stringify(session.socketStats(7))
        }`,
      );
      const stats = session.socketStats(7);
      if (stats) maxHeld = Math.max(maxHeld, stats.sentBytes - consumed);
      consumed += window;
      client.send({ op: "credit", id: 7, bytes: window }); // the end is seen once the reader reads again
    }
    assert.equal(client.received.get(7), total);
    assert.ok(maxHeld <= window, `server had ${maxHeld} bytes out for a ${window}-byte window`);
    await client.event("closed", 7);
  } finally {
    await client.close();
    await source.close();
    await server.close();
  }
});

Deno.test("v2: uploads get a window, renewed as the network takes bytes; passing it drops the socket", async () => {
  const server = startSessionServer();
  const echo = startTcpEchoServer();
  const client = new V2Client(server.url);
  try {
    await client.opened;
    const session = server.sessions[0];
    client.send({ op: "connect", id: 3, addr: "127.0.0.1", port: echo.port });
    await client.event("connected", 3);
    await client.until(() => (client.credit.get(3) ?? 0) > 0, "opening grant");
    const window = INITIAL_WINDOW + client.credit.get(3)!;
    assert.equal(window, DEFAULT_UPLOAD_WINDOW);
    // Send 4 MiB within credit, echoing back (granting download credit as it arrives).
    const chunk = new Uint8Array(32 * 1024).fill(0x62);
    let sent = 0;
    let downloadGranted = INITIAL_WINDOW;
    const total = 4 * MiB;
    while (sent < total || (client.received.get(3) ?? 0) < total) {
      const credit = INITIAL_WINDOW + (client.credit.get(3) ?? 0) - sent;
      if (sent < total && credit >= chunk.length) {
        client.send({ op: "send", id: 3, data: chunk });
        sent += chunk.length;
        assert.ok(session.socketStats(3)!.queuedBytes <= window);
        continue;
      }
      const got = client.received.get(3) ?? 0;
      if (got + INITIAL_WINDOW > downloadGranted) {
        client.send({ op: "credit", id: 3, bytes: got + INITIAL_WINDOW - downloadGranted });
        downloadGranted = got + INITIAL_WINDOW;
      }
      const before = { c: client.credit.get(3) ?? 0, r: got };
      await client.until(
        () => (client.credit.get(3) ?? 0) !== before.c || (client.received.get(3) ?? 0) !== before.r,
        "progress",
      );
    }
    assert.equal(client.received.get(3), total);

    // A client that ignores its window loses that socket, with BUFFER_FULL, and only that socket.
    client.send({ op: "connect", id: 4, addr: "127.0.0.1", port: echo.port });
    await client.event("connected", 4);
    const big = new Uint8Array(DEFAULT_UPLOAD_WINDOW + 1);
    client.send({ op: "send", id: 4, data: big });
    await client.event("error", 4);
    await client.event("closed", 4);
    const err = client.events.find((e) => e.ev === "error" && e.id === 4)!;
    assert.match((err as { msg: string }).msg, /flow-control window/);
    assert.ok(session.socketStats(3), "socket 3 is still open");
  } finally {
    await client.close();
    await echo.close();
    await server.close();
  }
});

Deno.test("v1 clients work unchanged next to v2; credit is refused on v1; JSON v2 speaks credit too", async () => {
  const server = startSessionServer();
  const echo = startTcpEchoServer();
  const v1 = new TestClient(server.url);
  const v2json = new TestClient(server.url, [PROTOCOL_V2]);
  try {
    await v1.opened;
    await v2json.opened;
    assert.equal(v1.ws.protocol, "");
    assert.equal(v2json.ws.protocol, PROTOCOL_V2);
    v1.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    await v1.event("connected", 1);
    // 2 MiB through a v1 socket: no window, no credit events.
    const payload = new Uint8Array(2 * MiB).fill(0x63);
    v1.json({ op: "send", id: 1, data: payload.toBase64() });
    let got = 0;
    while (got < payload.length) {
      const m = await v1.event("data", 1);
      got += Uint8Array.fromBase64(m.data as string).length;
    }
    assert.equal(got, payload.length);
    assert.ok(!v1.messages.some((m) => !(m instanceof Uint8Array) && m.ev === "credit"));
    v1.json({ op: "credit", id: 1, bytes: 10 });
    const refused = await v1.event("error", 1);
    assert.equal(refused.code, "UNKNOWN_OP");

    v2json.json({ op: "connect", id: 5, addr: "127.0.0.1", port: echo.port });
    await v2json.event("connected", 5);
    const grant = await v2json.event("credit", 5);
    assert.equal(grant.bytes, DEFAULT_UPLOAD_WINDOW - INITIAL_WINDOW);
    v2json.json({ op: "credit", id: 5, bytes: 0 });
    const bad = await v2json.event("error", 5);
    assert.equal(bad.code, "BAD_REQUEST");
  } finally {
    await v1.close();
    await v2json.close();
    await echo.close();
    await server.close();
  }
});
