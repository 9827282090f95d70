/**
 * Wisp at the packet level against a real wasmnet server: handshakes (v1, v2, password), stream-open
 * confirmation, credit overruns, the security table, wsproxy and bad input.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import {
  CloseReason,
  encodeCredentials,
  ExtensionId,
  type Packet,
  StreamType,
} from "../../src/frontends/wisp/packets.ts";
import { HOSTILE_TARGETS } from "../fixtures/hostile_targets.ts";
import { startTcpEchoServer, startTcpServer } from "../helpers.ts";
import { startWispServer } from "./servers.ts";
import { RawWispClient } from "./wisp_client.ts";

const enc = new TextEncoder();
const isContinue0 = (p: Packet) => p.type === "continue" && p.streamId === 0;

Deno.test("wisp v1: no subprotocol, CONTINUE(0, 128) first, no INFO", async () => {
  const srv = await startWispServer();
  const c = new RawWispClient(srv.wispUrl);
  try {
    await c.opened;
    assert.equal(c.ws.protocol, "");
    const first = await c.next(() => true);
    assert.deepEqual(first, { type: "continue", streamId: 0, remaining: 128 });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.packets.length, 0, "nothing else is sent");
  } finally {
    await c.close();
    await srv.close();
  }
});

Deno.test("wisp v2: answers wisp-v2, sends INFO (UDP, MOTD, confirmation) then CONTINUE(0)", async () => {
  const srv = await startWispServer(Policy.allowAll(), { wisp: { motd: "hi" } });
  const c = new RawWispClient(srv.wispUrl, "wisp-v2");
  try {
    await c.opened;
    assert.equal(c.ws.protocol, "wisp-v2");
    const info = await c.next(() => true);
    assert.equal(info.type, "info");
    if (info.type !== "info") return;
    assert.deepEqual([info.major, info.minor], [2, 0]);
    assert.deepEqual(info.extensions.map((e) => e.id), [
      ExtensionId.UDP,
      ExtensionId.MOTD,
      ExtensionId.STREAM_CONFIRMATION,
    ]);
    assert.equal(new TextDecoder().decode(info.extensions[1].payload), "hi");
    assert.deepEqual(await c.next(() => true), { type: "continue", streamId: 0, remaining: 128 });
  } finally {
    await c.close();
    await srv.close();
  }
});

Deno.test("wisp v2 password: INFO asks for it, CONTINUE only after the right credentials", async (t) => {
  const srv = await startWispServer(Policy.allowAll(), { wisp: { passwords: { bob: "pw" } } });
  const info = (creds?: { username: string; password: string }): Packet => ({
    type: "info",
    streamId: 0,
    major: 2,
    minor: 0,
    extensions: creds ? [{ id: ExtensionId.PASSWORD, payload: encodeCredentials(creds) }] : [],
  });
  const attempt = async (packet: Packet | null) => {
    const c = new RawWispClient(srv.wispUrl, "wisp-v2");
    await c.opened;
    const first = await c.next(() => true);
    assert.ok(
      first.type === "info" &&
        first.extensions.some((e) => e.id === ExtensionId.PASSWORD && e.payload[0] === 1),
    );
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(c.packets.length, 0, "no CONTINUE before the client's INFO");
    if (packet) c.send(packet);
    else c.send({ type: "connect", streamId: 1, streamType: 1, port: 80, host: "example.com" });
    const answer = await c.next(() => true);
    const closed = answer.type === "close" ? await c.closed : undefined;
    await c.close();
    return { answer, closed };
  };
  try {
    await t.step("right password → CONTINUE(0)", async () => {
      const { answer } = await attempt(info({ username: "bob", password: "pw" }));
      assert.ok(isContinue0(answer));
    });
    await t.step("wrong password → CLOSE(0, 0xc0), WebSocket closed", async () => {
      const { answer, closed } = await attempt(info({ username: "bob", password: "nope" }));
      assert.deepEqual(answer, { type: "close", streamId: 0, reason: CloseReason.AUTH_BAD_PASSWORD });
      assert.equal(closed?.code, 1008);
    });
    await t.step("unknown user → 0xc0", async () => {
      const { answer } = await attempt(info({ username: "eve", password: "pw" }));
      assert.deepEqual(answer, { type: "close", streamId: 0, reason: CloseReason.AUTH_BAD_PASSWORD });
    });
    await t.step("INFO without credentials → CLOSE(0, 0xc2)", async () => {
      const { answer } = await attempt(info());
      assert.deepEqual(answer, { type: "close", streamId: 0, reason: CloseReason.AUTH_MISSING_CREDENTIALS });
    });
    await t.step("a v1 client (no subprotocol, so no INFO) → CLOSE(0, 0xc2), never CONTINUE", async () => {
      const c = new RawWispClient(srv.wispUrl);
      await c.opened;
      assert.deepEqual(await c.next(() => true), {
        type: "close",
        streamId: 0,
        reason: CloseReason.AUTH_MISSING_CREDENTIALS,
      });
      assert.equal((await c.closed).code, 1008);
    });
    await t.step("CONNECT before INFO → CLOSE(0, 0xc2)", async () => {
      const { answer } = await attempt(null);
      assert.deepEqual(answer, { type: "close", streamId: 0, reason: CloseReason.AUTH_MISSING_CREDENTIALS });
    });
    await t.step("wsproxy is refused (it cannot carry a password)", async () => {
      const ws = new WebSocket(`${srv.url}wisp/127.0.0.1:80`);
      let failed = "";
      ws.onerror = (e) => (failed = (e as ErrorEvent).message);
      await new Promise((r) => (ws.onclose = r));
      assert.match(failed, /403/);
    });
  } finally {
    await srv.close();
  }
});

Deno.test("wisp v2 stream-open confirmation: CONTINUE(stream) once connected, only when the client offers 0x05", async () => {
  const echo = startTcpEchoServer();
  const srv = await startWispServer();
  try {
    for (const confirm of [true, false]) {
      const c = new RawWispClient(srv.wispUrl, "wisp-v2");
      await c.opened;
      await c.next(isContinue0);
      c.send({
        type: "info",
        streamId: 0,
        major: 2,
        minor: 0,
        extensions: confirm ? [{ id: ExtensionId.STREAM_CONFIRMATION, payload: new Uint8Array(0) }] : [],
      });
      c.send({
        type: "connect",
        streamId: 5,
        streamType: StreamType.TCP,
        port: echo.port,
        host: "127.0.0.1",
      });
      c.send({ type: "data", streamId: 5, data: enc.encode("x") });
      const first = await c.next((p) => p.streamId === 5);
      if (confirm) {
        assert.deepEqual(first.type, "continue");
        assert.equal((await c.next((p) => p.streamId === 5)).type, "data");
      } else {
        assert.equal(first.type, "data");
      }
      await c.close();
    }
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("wisp flow control: a client that ignores its credit is closed with 0x49, with a logged reason", async () => {
  const stop = Promise.withResolvers<void>();
  // Never reads: the kernel buffers fill, then nothing more is written.
  const sink = startTcpServer(() => stop.promise);
  const srv = await startWispServer(Policy.allowAll(), {
    wisp: { bufferPackets: 4, maxQueuedWriteBytes: 1 << 30, maxSessionQueuedBytes: 1 << 30 },
  });
  const c = new RawWispClient(srv.wispUrl);
  try {
    await c.opened;
    assert.deepEqual(await c.next(() => true), { type: "continue", streamId: 0, remaining: 4 });
    c.send({ type: "connect", streamId: 1, streamType: StreamType.TCP, port: sink.port, host: "127.0.0.1" });
    const chunk = new Uint8Array(256 * 1024);
    for (let i = 0; i < 200; i++) c.send({ type: "data", streamId: 1, data: chunk });
    assert.equal(await c.closeReason(1, 10_000), CloseReason.THROTTLED);
    const refusal = srv.decisions.find((d) => d.op === "wisp" && d.decision === "deny");
    assert.match(refusal?.reason ?? "", /credit/);
  } finally {
    await c.close();
    await srv.close();
    stop.resolve();
    await sink.close();
  }
});

Deno.test("wisp flow control: a byte queue over its bound is closed with 0x49 (BUFFER_FULL)", async () => {
  const stop = Promise.withResolvers<void>();
  const sink = startTcpServer(() => stop.promise);
  const srv = await startWispServer(Policy.allowAll(), { wisp: { maxQueuedWriteBytes: 1024 * 1024 } });
  const c = new RawWispClient(srv.wispUrl);
  try {
    await c.opened;
    c.send({ type: "connect", streamId: 1, streamType: StreamType.TCP, port: sink.port, host: "127.0.0.1" });
    const chunk = new Uint8Array(512 * 1024);
    for (let i = 0; i < 100; i++) c.send({ type: "data", streamId: 1, data: chunk });
    assert.equal(await c.closeReason(1, 10_000), CloseReason.THROTTLED);
  } finally {
    await c.close();
    await srv.close();
    stop.resolve();
    await sink.close();
  }
});

/** Ports a Wisp CONNECT (u16) cannot express; those entries of the table cannot be sent at all. */
const UNSENDABLE = (port: number) => !Number.isInteger(port) || port < 0 || port > 65535;

Deno.test("wisp security table: every hostile target is closed with 0x48 under the default policy", async () => {
  const answers = new Map(HOSTILE_TARGETS.filter((t) => t.resolvesTo).map((t) => [t.host, t.resolvesTo!]));
  const resolver = (name: string) => {
    const a = answers.get(name);
    return a ? Promise.resolve(a) : Promise.reject(new Error(`test resolver: ${name} must not be looked up`));
  };
  const srv = await startWispServer(Policy.defaults(), { resolver });
  const c = new RawWispClient(srv.wispUrl);
  const wrong: string[] = [];
  try {
    await c.opened;
    await c.next(isContinue0);
    const sendable = HOSTILE_TARGETS.filter((t) => !UNSENDABLE(t.port));
    assert.deepEqual(HOSTILE_TARGETS.filter((t) => UNSENDABLE(t.port)).map((t) => t.port), [65536, -1, 80.5]);
    let id = 1;
    for (const t of sendable) {
      c.send({ type: "connect", streamId: id, streamType: StreamType.TCP, port: t.port, host: t.host });
      const reason = await c.closeReason(id);
      if (reason !== CloseReason.BLOCKED) {
        wrong.push(`${JSON.stringify(t.host)}:${t.port} (${t.note}) → 0x${reason.toString(16)}`);
      }
      id++;
    }
    assert.deepEqual(wrong, []);
    assert.equal(
      srv.decisions.filter((d) => d.op === "wisp" && d.decision === "deny").length,
      sendable.length,
    );
    assert.ok(srv.decisions.every((d) => d.decision !== "allow"));
  } finally {
    await c.close();
    await srv.close();
  }
});

Deno.test("wisp security table: hostile UDP targets are closed with 0x48 too", async () => {
  const srv = await startWispServer(Policy.defaults(), { resolver: () => Promise.resolve(["127.0.0.1"]) });
  const c = new RawWispClient(srv.wispUrl);
  try {
    await c.opened;
    let id = 1;
    for (const host of ["127.0.0.1", "::1", "169.254.169.254", "localhost", "rebind.example.net"]) {
      c.send({ type: "connect", streamId: id, streamType: StreamType.UDP, port: 53, host });
      assert.equal(await c.closeReason(id), CloseReason.BLOCKED, host);
      id++;
    }
  } finally {
    await c.close();
    await srv.close();
  }
});

Deno.test("wisp: client CLOSE ends the target connection; DATA for closed streams is ignored", async () => {
  let sawEof: () => void = () => {};
  const eof = new Promise<void>((r) => (sawEof = r));
  const peer = startTcpServer(async (conn) => {
    const buf = new Uint8Array(16);
    while ((await conn.read(buf)) !== null) { /* drain */ }
    sawEof();
  });
  const srv = await startWispServer();
  const c = new RawWispClient(srv.wispUrl);
  try {
    await c.opened;
    c.send({ type: "connect", streamId: 3, streamType: StreamType.TCP, port: peer.port, host: "127.0.0.1" });
    c.send({ type: "data", streamId: 3, data: enc.encode("hello") });
    await new Promise((r) => setTimeout(r, 50));
    c.send({ type: "close", streamId: 3, reason: CloseReason.VOLUNTARY });
    c.send({ type: "data", streamId: 3, data: enc.encode("late") });
    await eof;
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      !c.packets.some((p) => p.type === "close" && p.streamId === 3),
      "no CLOSE echoed for a client close",
    );
  } finally {
    await c.close();
    await srv.close();
    await peer.close();
  }
});

Deno.test("wisp: bad input is answered with a reason", async (t) => {
  const echo = startTcpEchoServer();
  const srv = await startWispServer();
  try {
    await t.step("duplicate stream id → 0x41", async () => {
      const c = new RawWispClient(srv.wispUrl);
      await c.opened;
      c.send({
        type: "connect",
        streamId: 1,
        streamType: StreamType.TCP,
        port: echo.port,
        host: "127.0.0.1",
      });
      c.send({
        type: "connect",
        streamId: 1,
        streamType: StreamType.TCP,
        port: echo.port,
        host: "127.0.0.1",
      });
      assert.equal(await c.closeReason(1), CloseReason.INVALID);
      await c.close();
    });
    await t.step("a text message → CLOSE(0, 0x41) and the WebSocket closes", async () => {
      const c = new RawWispClient(srv.wispUrl);
      await c.opened;
      c.ws.send("hello");
      assert.equal(await c.closeReason(0), CloseReason.INVALID);
      assert.equal((await c.closed).code, 1008);
    });
    await t.step("an unknown packet type → CLOSE(0, 0x41)", async () => {
      const c = new RawWispClient(srv.wispUrl);
      await c.opened;
      c.ws.send(Uint8Array.of(0x09, 1, 0, 0, 0));
      assert.equal(await c.closeReason(0), CloseReason.INVALID);
      await c.closed;
    });
  } finally {
    await srv.close();
    await echo.close();
  }
});

Deno.test("wisp paths: any path ending in /wisp/ is Wisp; wsproxy /wisp/host:port relays one stream", async (t) => {
  const echo = startTcpEchoServer();
  const srv = await startWispServer();
  const denied = await startWispServer(Policy.defaults());
  try {
    await t.step("/some/prefix/wisp/", async () => {
      const c = new RawWispClient(`${srv.url}some/prefix/wisp/`);
      await c.opened;
      assert.ok(isContinue0(await c.next(() => true)));
      await c.close();
    });
    await t.step("wsproxy echo", async () => {
      const ws = new WebSocket(`${srv.url}wisp/127.0.0.1:${echo.port}`);
      ws.binaryType = "arraybuffer";
      const got = new Promise<string>((r) => (ws.onmessage = (e) => r(new TextDecoder().decode(e.data))));
      await new Promise((r) => (ws.onopen = r));
      ws.send(enc.encode("raw bytes"));
      assert.equal(await got, "raw bytes");
      const closed = new Promise((r) => (ws.onclose = r));
      ws.close();
      await closed;
      assert.ok(srv.decisions.some((d) => d.op === "wisp_wsproxy" && d.decision === "allow"));
    });
    await t.step("wsproxy to a blocked target closes with 1008", async () => {
      const ws = new WebSocket(`${denied.url}wisp/127.0.0.1:${echo.port}`);
      const closed = new Promise<CloseEvent>((r) => (ws.onclose = r));
      const ev = await closed;
      assert.equal(ev.code, 1008);
      assert.match(ev.reason, /POLICY_DENIED/);
    });
  } finally {
    await srv.close();
    await denied.close();
    await echo.close();
  }
});

Deno.test("wisp [policy] section: motd and password_users from TOML reach the endpoint", async () => {
  const policy = Policy.fromToml(
    `[network]\ndeny = []\n\n[wisp]\nmotd = "from toml"\n\n[wisp.password_users]\ncarol = "pw1"\n`,
    "test.toml",
  );
  assert.deepEqual(policy.config.wisp, { motd: "from toml", password_users: { carol: "pw1" } });
  assert.throws(() => Policy.fromToml(`[wisp]\nmotd = 3\n`, "bad.toml"), /wisp\.motd/);
  assert.throws(
    () => Policy.fromToml(`[wisp.password_users]\ncarol = 1\n`, "bad.toml"),
    /wisp\.password_users\.carol/,
  );
  assert.throws(() => Policy.fromToml(`[wisp]\nmodt = "typo"\n`, "bad.toml"), /wisp\.modt/);
  const srv = await startWispServer(policy);
  const c = new RawWispClient(srv.wispUrl, "wisp-v2");
  try {
    await c.opened;
    const info = await c.next(() => true);
    assert.ok(info.type === "info");
    if (info.type !== "info") return;
    assert.deepEqual(info.extensions.map((e) => e.id), [
      ExtensionId.UDP,
      ExtensionId.PASSWORD,
      ExtensionId.MOTD,
      ExtensionId.STREAM_CONFIRMATION,
    ]);
    c.send({
      type: "info",
      streamId: 0,
      major: 2,
      minor: 0,
      extensions: [{
        id: ExtensionId.PASSWORD,
        payload: encodeCredentials({ username: "carol", password: "pw1" }),
      }],
    });
    assert.ok(isContinue0(await c.next(() => true)));
  } finally {
    await c.close();
    await srv.close();
  }
});
