import assert from "node:assert/strict";
import dgram from "node:dgram";
import type { WasmnetError } from "../../core/errors.ts";
import { Policy } from "../../policy/mod.ts";
import type { Event } from "@wasmnet/protocol";
import { SocketCore } from "../../core/core.ts";
import { type SessionHooks, UdpEntry } from "./session_udp.ts";

/** Hooks recording events, with a switch for "the WebSocket is full". */
function fakeHooks(policy = Policy.allowAll()) {
  const events: Event[] = [];
  const errors: WasmnetError[] = [];
  const session = new AbortController();
  const state = { room: true };
  const hooks: SessionHooks = {
    policy,
    emit: (e) => events.push(e),
    reportError: (_id, _framing, err) => errors.push(err),
    core: new SocketCore({ resolver: () => Promise.reject(new Error("no names here")) })
      .session({ frontend: "test", policy, clientIp: "t", id: "t", signal: session.signal }),
    hasRoom: () => state.room,
  };
  return { hooks, events, errors, state, end: () => session.abort() };
}

async function udpPeer(): Promise<{ socket: dgram.Socket; port: number; close: () => Promise<void> }> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  return { socket, port: socket.address().port, close: () => new Promise((r) => socket.close(() => r())) };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), "condition not reached");
}

Deno.test("udp entry: datagrams arriving while the WebSocket is full are dropped and counted", async () => {
  const peer = await udpPeer();
  const { hooks, events, state, end } = fakeHooks();
  let released = 0;
  const entry = new UdpEntry(1, "json", hooks, () => (released++, true));
  try {
    entry.open("127.0.0.1", peer.port);
    await until(() => events.some((e) => e.ev === "udp_bound"));
    const bound = events.find((e) => e.ev === "udp_bound") as { port: number };
    state.room = false;
    peer.socket.send(new Uint8Array([1]), bound.port, "127.0.0.1");
    await until(() => entry.dropped === 1);
    state.room = true;
    peer.socket.send(new Uint8Array([2]), bound.port, "127.0.0.1");
    await until(() => events.some((e) => e.ev === "data"));
    const data = events.filter((e) => e.ev === "data") as { data: Uint8Array }[];
    assert.deepEqual(data.map((d) => [...d.data]), [[2]]);
    entry.close();
    assert.equal(released, 1);
    assert.deepEqual(events.at(-1), { ev: "closed", id: 1 });
  } finally {
    entry.destroy();
    end();
    await peer.close();
  }
});

Deno.test("udp entry: send before udp_bound is SEND_FAILED; a failed open releases the id with denied", async () => {
  const { hooks, events, errors, end } = fakeHooks(Policy.defaults());
  let released = 0;
  const entry = new UdpEntry(2, "json", hooks, () => (released++, true));
  try {
    entry.open("10.0.0.1", 53);
    assert.throws(() => entry.send(new Uint8Array([1])), (e: WasmnetError) => e.code === "SEND_FAILED");
    await until(() => errors.length === 1);
    assert.equal(errors[0].code, "POLICY_DENIED");
    assert.equal(released, 1);
    assert.deepEqual(events, []);
  } finally {
    entry.destroy();
    end();
  }
});
