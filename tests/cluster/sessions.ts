/**
 * WebSocket handshakes from a chosen source address (127.0.0.2, 127.0.0.3, …): Deno.connect cannot bind a
 * local address, node:net's `localAddress` can. Enough of a client to open and hold sessions and see the
 * HTTP status of a refused one.
 *
 * @module
 */

import net from "node:net";
import { Buffer } from "node:buffer";
import { clientFrame } from "../security/raw_ws.ts";

/** One handshake's outcome; when 101, the session stays open until {@link RawSession.close}. */
export interface RawSession {
  status: number;
  /** True until the server (or a proxy) closed the connection. */
  readonly open: boolean;
  /** Bytes received after the handshake's headers (WebSocket frames, headers included). */
  readonly received: number;
  /** Resolves when the connection closes. */
  closed: Promise<void>;
  /** Sends `bytes` as one masked binary frame. */
  send(bytes: Uint8Array): void;
  /** Resolves once at least `bytes` have been received after the headers. */
  waitFor(bytes: number): Promise<void>;
  close(): void;
}

/** Sends an upgrade for `path` from `localAddress` to 127.0.0.1:`port`; resolves once the status is read. */
export function openSession(
  port: number,
  localAddress: string,
  path = "/",
  headers: Record<string, string> = {},
): Promise<RawSession> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    let open = true;
    let head = "";
    let settled = false;
    let received = 0;
    const waiters: { bytes: number; done: () => void }[] = [];
    const wake = () => {
      for (const w of waiters.filter((w) => received >= w.bytes)) {
        (waiters.splice(waiters.indexOf(w), 1), w.done());
      }
    };
    const closed = new Promise<void>((done) => socket.on("close", () => (open = false, done())));
    socket.on("error", (err) => {
      if (!settled) (settled = true, reject(err));
    });
    socket.on("connect", () => {
      const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n` +
          Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n",
      );
    });
    socket.on("data", (chunk: Buffer) => {
      if (settled) return void (received += chunk.length, wake());
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      received += head.length - end - 4;
      settled = true;
      const status = Number(head.split(" ")[1]);
      if (status !== 101) socket.destroy();
      resolve({
        status,
        get open() {
          return open;
        },
        get received() {
          return received;
        },
        closed,
        send: (bytes) => void socket.write(clientFrame(2, bytes)),
        waitFor: (bytes) => new Promise<void>((done) => (waiters.push({ bytes, done }), wake())),
        close: () => socket.destroy(),
      });
    });
    socket.on("close", () => {
      if (!settled) {
        settled = true;
        const none = () => Promise.resolve();
        resolve({ status: 0, open: false, received, closed, send: () => {}, waitFor: none, close: () => {} });
      }
    });
  });
}

/** Opens `count` sessions one after another from `localAddress`; returns them all (refused ones too). */
export async function openMany(port: number, localAddress: string, count: number): Promise<RawSession[]> {
  const out: RawSession[] = [];
  for (let i = 0; i < count; i++) out.push(await openSession(port, localAddress));
  return out;
}

/** The statuses of `sessions`, in order. */
export const statuses = (sessions: RawSession[]): number[] => sessions.map((s) => s.status);

/**
 * Tries to open a session from `localAddress` until one is admitted (101) or `timeoutMs` passes; returns
 * the admitted session (or the last refusal) and how long it took.
 */
export async function openWhenAdmitted(
  port: number,
  localAddress: string,
  timeoutMs: number,
): Promise<{ session: RawSession; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const session = await openSession(port, localAddress);
    if (session.status === 101 || Date.now() - started > timeoutMs) {
      return { session, waitedMs: Date.now() - started };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
