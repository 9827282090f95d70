/**
 * One scripted session per front end (wasmnet JSON, binary and v2, Wisp v1 and v2, websockify, Emscripten's
 * POSIX proxy), each against a TCP peer that echoes one chunk and closes. Each script returns the client's
 * own count of WebSocket bytes both ways, so a test can assert the server counted exactly that.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeBinaryEvent, encodeBinaryRequest } from "@wasmnet/protocol";
import { decodePacket, encodePacket, type Packet, StreamType } from "../../src/frontends/wisp/packets.ts";
import { startTcpServer, type TcpPeer } from "../helpers.ts";
import { CountingSocket } from "./ops_helpers.ts";

/** A TCP peer that echoes the first chunk it reads, then closes. */
export function startEchoOncePeer(): TcpPeer {
  return startTcpServer(async (conn) => {
    const buf = new Uint8Array(65536);
    const n = await conn.read(buf);
    if (n !== null) await conn.write(buf.subarray(0, n));
    conn.close();
  });
}

/** What one scripted session did, as its client saw it. */
export interface Scripted {
  frontend: string;
  framing: string;
  /** Op of its (one) allowed decision. */
  op: string;
  up: number;
  down: number;
}

const enc = new TextEncoder();
const b64 = (s: string) => enc.encode(s).toBase64();

/** wasmnet's JSON framing (no subprotocol: counted under the framing of its first message, `json`). */
export async function wasmnetJson(ws: string, port: number): Promise<Scripted> {
  const c = new CountingSocket(`${ws}/`);
  await c.opened;
  c.send(JSON.stringify({ op: "connect", id: 1, addr: "127.0.0.1", port }));
  await c.event("connected");
  c.send(JSON.stringify({ op: "send", id: 1, data: b64("hello json") }));
  assert.equal(
    new TextDecoder().decode(Uint8Array.fromBase64((await c.event("data")).data as string)),
    "hello json",
  );
  await c.event("closed");
  await c.close();
  return { frontend: "wasmnet", framing: "json", op: "connect", up: c.sentBytes, down: c.receivedBytes };
}

/** wasmnet's binary framing. */
export async function wasmnetBinary(ws: string, port: number): Promise<Scripted> {
  const c = new CountingSocket(`${ws}/`);
  await c.opened;
  c.send(encodeBinaryRequest({ op: "connect", id: 2, addr: "127.0.0.1", port }));
  const isEvent = (ev: string) => (m: string | Uint8Array) =>
    m instanceof Uint8Array && decodeBinaryEvent(m).ev === ev;
  await c.next(isEvent("connected"));
  c.send(encodeBinaryRequest({ op: "send", id: 2, data: enc.encode("hello binary") }));
  await c.next(isEvent("data"));
  await c.next(isEvent("closed"));
  await c.close();
  return { frontend: "wasmnet", framing: "binary", op: "connect", up: c.sentBytes, down: c.receivedBytes };
}

/** wasmnet protocol v2 (flow control), JSON requests. */
export async function wasmnetV2(ws: string, port: number): Promise<Scripted> {
  const c = new CountingSocket(`${ws}/`, "wasmnet.v2");
  await c.opened;
  c.send(JSON.stringify({ op: "connect", id: 3, addr: "127.0.0.1", port }));
  await c.event("connected");
  c.send(JSON.stringify({ op: "send", id: 3, data: b64("hello v2") }));
  await c.event("data");
  await c.event("closed");
  await c.close();
  return {
    frontend: "wasmnet",
    framing: "wasmnet.v2",
    op: "connect",
    up: c.sentBytes,
    down: c.receivedBytes,
  };
}

/** Wisp v1 (no subprotocol) or v2 (`wisp-v2`). */
export async function wisp(ws: string, port: number, v2: boolean): Promise<Scripted> {
  const c = new CountingSocket(`${ws}/wisp/`, v2 ? "wisp-v2" : undefined);
  await c.opened;
  const packet = async (pred: (p: Packet) => boolean) => {
    const m = await c.next((m) => {
      const d = m instanceof Uint8Array && decodePacket(m);
      return d !== false && d.ok && pred(d.packet);
    });
    return (decodePacket(m as Uint8Array) as { packet: Packet }).packet;
  };
  if (v2) {
    await packet((p) => p.type === "info");
    c.send(encodePacket({ type: "info", streamId: 0, major: 2, minor: 0, extensions: [] }));
  }
  await packet((p) => p.type === "continue" && p.streamId === 0);
  c.send(encodePacket({ type: "connect", streamId: 1, streamType: StreamType.TCP, port, host: "127.0.0.1" }));
  c.send(encodePacket({ type: "data", streamId: 1, data: enc.encode("hello wisp") }));
  await packet((p) => p.type === "data" && p.streamId === 1);
  await packet((p) => p.type === "close" && p.streamId === 1);
  await c.close();
  return {
    frontend: "wisp",
    framing: v2 ? "wisp-v2" : "none",
    op: "wisp",
    up: c.sentBytes,
    down: c.receivedBytes,
  };
}

/** websockify mode (`/tcp/HOST:PORT`, `binary` subprotocol): the peer's close closes the WebSocket. */
export async function websockify(ws: string, port: number): Promise<Scripted> {
  const c = new CountingSocket(`${ws}/tcp/127.0.0.1:${port}`, "binary");
  await c.opened;
  c.send(enc.encode("hello websockify"));
  await c.next();
  await c.closed;
  return {
    frontend: "websockify",
    framing: "binary",
    op: "websockify",
    up: c.sentBytes,
    down: c.receivedBytes,
  };
}

/** Emscripten's POSIX proxy: socket, connect, send, recv, each one call answered by one reply. */
export async function posix(ws: string, port: number): Promise<Scripted> {
  const c = new CountingSocket(`${ws}/posix/`);
  await c.opened;
  let nextId = 1;
  const call = async (fn: number, ints: number[], tail = new Uint8Array()) => {
    const id = nextId++;
    const out = new Uint8Array(8 + ints.length * 4 + tail.length);
    const v = new DataView(out.buffer);
    v.setInt32(0, id, true);
    v.setInt32(4, fn, true);
    ints.forEach((n, i) => v.setInt32(8 + i * 4, n, true));
    out.set(tail, 8 + ints.length * 4);
    c.send(out);
    const reply = await c.next((m) =>
      m instanceof Uint8Array && new DataView(m.buffer).getInt32(0, true) === id
    );
    return new DataView((reply as Uint8Array).buffer).getInt32(4, true);
  };
  const SOCKET = 1, CONNECT = 5, SEND = 10, RECV = 11;
  const fd = await call(SOCKET, [2, 1, 0]);
  const sin = new Uint8Array(16);
  new DataView(sin.buffer).setUint16(0, 2, true);
  new DataView(sin.buffer).setUint16(2, port, false);
  sin.set([127, 0, 0, 1], 4);
  assert.equal(await call(CONNECT, [fd, 16], sin), 0);
  const data = enc.encode("hello posix");
  assert.equal(await call(SEND, [fd, data.length, 0], data), data.length);
  assert.equal(await call(RECV, [fd, 100, 0]), data.length);
  await c.close();
  return {
    frontend: "emscripten-posix",
    framing: "none",
    op: "connect",
    up: c.sentBytes,
    down: c.receivedBytes,
  };
}

/** Every scripted session, in order. */
export const SCRIPTS: [string, (ws: string, port: number) => Promise<Scripted>][] = [
  ["wasmnet JSON", wasmnetJson],
  ["wasmnet binary", wasmnetBinary],
  ["wasmnet v2", wasmnetV2],
  ["Wisp v1", (ws, port) => wisp(ws, port, false)],
  ["Wisp v2", (ws, port) => wisp(ws, port, true)],
  ["websockify", websockify],
  ["POSIX proxy", posix],
];
