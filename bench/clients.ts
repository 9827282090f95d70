/**
 * The benchmark's clients, one per way of reaching TCP, behind one small interface so every workload runs
 * unchanged against every contender. All run in the bench process; the servers run in their own.
 *
 * @module
 */

import { PROTOCOL_V2 } from "../src/frontends/wasmnet/flow.ts";
import { WispJsClient, type WispJsStream } from "../tests/wisp/wisp_client.ts";

/** One TCP connection through a contender. */
export interface Sock {
  /** Sends bytes; the promise resolves when more may be sent (the transport's own backpressure). */
  send(bytes: Uint8Array): void | Promise<void>;
  /** Set by the workload: called with every chunk received. */
  onData: (bytes: Uint8Array) => void;
  /** Set by the workload: the connection failed or closed early. */
  onError: (err: Error) => void;
  close(): void;
  /** wasmnet v2 with manual credit only: the page has consumed `bytes` (grants them back to the server). */
  consumed?(bytes: number): void;
}

/** One client session (one WebSocket for multiplexing transports). */
export interface ClientSession {
  /** Opens a connection to 127.0.0.1:`port`; resolves once it is connected (or, for Wisp, created). */
  open(port: number): Promise<Sock>;
  close(): Promise<void>;
}

/** A way to reach TCP. */
export interface Transport {
  session(): Promise<ClientSession>;
  /** True if one session carries many sockets (the idle-socket workloads need it). */
  multiplexed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits while a WebSocket's send buffer is above `limit`. */
async function drain(ws: { bufferedAmount: number }, limit = 4 * 1024 * 1024): Promise<void> {
  while (ws.bufferedAmount > limit) await sleep(1);
}

/**
 * Deno's WebSocket client leaves Nagle's algorithm on: in a ping-pong, any message over 1 KiB waits for a
 * delayed ACK (40 ms). Browsers and the `ws` package set TCP_NODELAY, so round-trip workloads use `ws`.
 */
let NodelayWebSocket: typeof WebSocket | undefined;

async function openWs(url: string, protocols?: string[], nodelay = false): Promise<WebSocket> {
  if (nodelay && !NodelayWebSocket) {
    // deno-lint-ignore no-import-prefix -- bench-only; the same ws version wisp-js already pulls in
    NodelayWebSocket = (await import("npm:ws@8.23.0")).WebSocket as unknown as typeof WebSocket;
  }
  const ws = new (nodelay ? NodelayWebSocket! : WebSocket)(url, protocols);
  ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
}

/** Direct TCP: the limit. */
export const directTcp: Transport = {
  multiplexed: false,
  session: () =>
    Promise.resolve({
      async open(port) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.setNoDelay(true);
        const sock: Sock = {
          onData: () => {},
          onError: () => {},
          async send(bytes) {
            for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
          },
          close: () => {
            try {
              conn.close();
            } catch {
              // closed
            }
          },
        };
        (async () => {
          const buf = new Uint8Array(256 * 1024);
          try {
            for (;;) {
              const n = await conn.read(buf);
              if (n === null) break;
              sock.onData(buf.subarray(0, n));
            }
          } catch {
            // closed
          }
        })();
        return sock;
      },
      close: () => Promise.resolve(),
    }),
};

/** One WebSocket per TCP connection, raw bytes (the bare relay and websockify). */
export function rawWebSocket(url: string, protocols?: string[], nodelay = false): Transport {
  return {
    multiplexed: false,
    session: () =>
      Promise.resolve({
        async open() {
          const ws = await openWs(url, protocols, nodelay);
          const sock: Sock = {
            onData: () => {},
            onError: () => {},
            send(bytes) {
              ws.send(bytes as Uint8Array<ArrayBuffer>);
              if (ws.bufferedAmount > 4 * 1024 * 1024) return drain(ws, 1024 * 1024);
            },
            close: () => ws.close(),
          };
          ws.onmessage = (e) => sock.onData(new Uint8Array(e.data as ArrayBuffer));
          ws.onclose = () => sock.onError(new Error("the WebSocket closed"));
          return sock;
        },
        close: () => Promise.resolve(),
      }),
  };
}

/** The wasmnet protocol: JSON or binary framing, v1 or v2 (flow control). */
export function wasmnet(
  url: string,
  framing: "json" | "binary",
  v2: boolean,
  options: { manualCredit?: boolean; nodelay?: boolean } = {},
): Transport {
  return {
    multiplexed: true,
    session: () =>
      WasmnetSession.open(url, framing, v2, options.manualCredit ?? false, options.nodelay ?? false),
  };
}

/** The client download window a v2 bench client grants per socket. */
const CLIENT_WINDOW = 4 * 1024 * 1024;
const INITIAL = 64 * 1024;

interface WasmnetSock extends Sock {
  connected: () => void;
  failed: (err: Error) => void;
  /** v2: upload credit left; waiters for more. */
  credit: number;
  creditWaiter?: () => void;
  /** v2: bytes consumed and not yet granted back. */
  pending: number;
}

class WasmnetSession implements ClientSession {
  readonly #ws: WebSocket;
  readonly #binary: boolean;
  readonly #v2: boolean;
  readonly #autoCredit: boolean;
  readonly #socks = new Map<number, WasmnetSock>();
  #nextId = 1;
  #frame = new Uint8Array(0);

  private constructor(ws: WebSocket, framing: "json" | "binary", v2: boolean, manualCredit: boolean) {
    this.#ws = ws;
    this.#binary = framing === "binary";
    this.#v2 = v2;
    this.#autoCredit = v2 && !manualCredit;
    ws.onmessage = (e) => this.#receive(e.data);
  }

  static async open(
    url: string,
    framing: "json" | "binary",
    v2: boolean,
    manualCredit: boolean,
    nodelay: boolean,
  ): Promise<WasmnetSession> {
    const ws = await openWs(url, v2 ? [PROTOCOL_V2] : undefined, nodelay);
    if (v2 && ws.protocol !== PROTOCOL_V2) throw new Error("server did not accept wasmnet.v2");
    return new WasmnetSession(ws, framing, v2, manualCredit);
  }

  open(port: number): Promise<Sock> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const sock: WasmnetSock = {
        onData: () => {},
        onError: () => {},
        connected: () => resolve(sock),
        failed: reject,
        credit: INITIAL,
        pending: 0,
        send: (bytes) => this.#send(id, sock, bytes),
        close: () => {
          this.#request(0x05, id, { op: "close", id });
          this.#socks.delete(id);
        },
        consumed: (bytes) => {
          if (this.#v2 && !this.#autoCredit) this.#grant(id, bytes);
        },
      };
      this.#socks.set(id, sock);
      const body = new TextEncoder().encode("127.0.0.1");
      const payload = new Uint8Array(2 + body.length);
      new DataView(payload.buffer).setUint16(0, port);
      payload.set(body, 2);
      this.#request(0x01, id, { op: "connect", id, addr: "127.0.0.1", port }, payload);
      if (this.#v2) this.#grant(id, CLIENT_WINDOW - INITIAL);
    });
  }

  async #send(id: number, sock: WasmnetSock, bytes: Uint8Array): Promise<void> {
    if (this.#v2) {
      while (sock.credit < bytes.length) {
        if (!this.#socks.has(id)) throw new Error("socket closed while waiting for credit");
        await new Promise<void>((r) => (sock.creditWaiter = r));
      }
      sock.credit -= bytes.length;
    }
    if (this.#binary) {
      // One frame buffer per session, reused: Deno's WebSocket.send copies the message before returning.
      if (this.#frame.length < 9 + bytes.length) this.#frame = new Uint8Array(9 + bytes.length);
      const out = this.#frame.subarray(0, 9 + bytes.length);
      out[0] = 0x04;
      new DataView(out.buffer).setBigUint64(1, BigInt(id));
      out.set(bytes, 9);
      this.#ws.send(out);
    } else {
      this.#ws.send(`{"op":"send","id":${id},"data":"${bytes.toBase64()}"}`);
    }
    // Every WebSocket client in the bench keeps its own send buffer under 4 MiB (as browsers' pages must,
    // or they buffer without end). v1 has no other backpressure: the server's write bound takes the rest.
    if (this.#ws.bufferedAmount > 4 * 1024 * 1024) await drain(this.#ws, 1024 * 1024);
  }

  #grant(id: number, bytes: number): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, bytes);
    this.#request(0x10, id, { op: "credit", id, bytes }, payload);
  }

  #request(type: number, id: number, json: Record<string, unknown>, payload?: Uint8Array): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    if (!this.#binary) return this.#ws.send(JSON.stringify(json));
    const out = new Uint8Array(9 + (payload?.length ?? 0));
    out[0] = type;
    new DataView(out.buffer).setBigUint64(1, BigInt(id));
    if (payload) out.set(payload, 9);
    this.#ws.send(out);
  }

  #receive(message: string | ArrayBuffer): void {
    let ev: string, id: number, data: Uint8Array | undefined, bytes = 0;
    if (typeof message === "string") {
      const m = JSON.parse(message);
      ev = m.ev;
      id = m.id;
      if (ev === "data") data = Uint8Array.fromBase64(m.data);
      bytes = m.bytes ?? 0;
      if (ev === "error" || ev === "denied") this.#fail(id, m.msg);
    } else {
      const b = new Uint8Array(message);
      const view = new DataView(message);
      id = Number(view.getBigUint64(1));
      ev = { 0x81: "connected", 0x82: "data", 0x85: "closed", 0x86: "error", 0x87: "denied", 0x90: "credit" }[
        b[0]
      ] ?? "other";
      if (ev === "data") data = b.subarray(9);
      if (ev === "credit") bytes = view.getUint32(9);
      if (ev === "error" || ev === "denied") this.#fail(id, new TextDecoder().decode(b.subarray(9)));
    }
    const sock = this.#socks.get(id);
    if (!sock) return;
    if (ev === "data") {
      sock.onData(data!);
      if (this.#autoCredit) {
        sock.pending += data!.length;
        if (sock.pending >= CLIENT_WINDOW / 4) {
          this.#grant(id, sock.pending);
          sock.pending = 0;
        }
      }
    } else if (ev === "connected") sock.connected();
    else if (ev === "closed") {
      this.#socks.delete(id);
      sock.creditWaiter?.();
      sock.onError(new Error("closed by the server"));
    } else if (ev === "credit") {
      sock.credit += bytes;
      const wake = sock.creditWaiter;
      sock.creditWaiter = undefined;
      wake?.();
    }
  }

  #fail(id: number, msg: string): void {
    const sock = this.#socks.get(id);
    this.#socks.delete(id);
    sock?.creditWaiter?.();
    sock?.failed(new Error(msg));
    sock?.onError(new Error(msg));
  }

  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => (this.#ws.onclose = r));
    this.#ws.close();
    await closed;
  }
}

/** Wisp through the `@mercuryworkshop/wisp-js` client (the same client for every Wisp server). */
export function wisp(url: string): Transport {
  return {
    multiplexed: true,
    session: async () => {
      const client = await WispJsClient.connect(url, { version: 2, timeoutMs: 10_000 });
      return {
        open(port: number): Promise<Sock> {
          const stream: WispJsStream = client.stream("127.0.0.1", port);
          // wisp-js keeps its queue when the server closes the stream: stop waiting on it then, and say why.
          let closed: Error | undefined;
          const sock: Sock = {
            onData: () => {},
            onError: () => {},
            send(bytes) {
              if (closed) throw closed;
              stream.send(bytes);
              const ws = client.conn.ws as { bufferedAmount: number };
              if (stream.raw.send_buffer.length > 8 || ws.bufferedAmount > 4 * 1024 * 1024) {
                return (async () => {
                  while (stream.raw.send_buffer.length > 2 || ws.bufferedAmount > 1024 * 1024) {
                    if (closed) throw closed;
                    await sleep(1);
                  }
                })();
              }
            },
            close: () => stream.close(),
          };
          stream.onData((chunk) => sock.onData(chunk));
          stream.closeReason.then((reason) => {
            closed = new Error(`Wisp stream closed, reason 0x${reason.toString(16)}`);
            sock.onError(closed);
          });
          return Promise.resolve(sock);
        },
        close: () => client.close(),
      };
    },
  };
}
