/**
 * The browser bench's page: bundled (with the wasmnet client) into `page.js` and loaded by a Chromium that
 * the bench started itself, with no DevTools attached. The page asks the bench for tasks (`GET /task`), runs
 * each against one contender with that contender's own client, and posts the figure back (`POST /result`).
 * The workloads are the loopback bench's own (`bench/workloads.ts`); only the clients differ.
 *
 * A contender is a `ContenderSpec` (plain JSON, so other transports can add theirs): `kind` picks the client
 * in the page (`wasmnet`, `wispjs`, `raw` one WebSocket per connection, `ceiling` the page's own WebSocket
 * with no TCP behind it, `wtceiling` the page's own WebTransport, one stream per connection), `api` the
 * wasmnet API (`callback`, `streams`, `wasi`).
 *
 * @module
 */

import { discoverWebTransport, WasmnetClient, type WasmnetClientOptions } from "../../client/mod.ts";
import { SocketCore } from "../../client/wasi/core.ts";
import type { ClientSession as Session, Sock, Transport } from "../clients.ts";
import { connects, download, echo, firstByte, upload } from "../workloads.ts";

/** A contender as the page sees it. */
export interface ContenderSpec {
  name: string;
  kind: "wasmnet" | "wispjs" | "raw" | "ceiling" | "wtceiling";
  /** WebSocket URL of the server (through the delaying relay when the run has one). */
  url: string;
  /** wasmnet: client options (JSON-safe). */
  options?: WasmnetClientOptions;
  /** wasmnet: which API the page uses. Default `callback`. */
  api?: "callback" | "streams" | "wasi";
}

/** One task from the bench. */
export interface PageTask {
  id: number;
  contender: ContenderSpec;
  work: "download" | "upload" | "rtt" | "connects" | "firstbyte";
  /** Target port (TCP targets, bench/targets.ts). */
  port: number;
  /** download/upload: bytes; rtt/connects/firstbyte: how many. */
  n: number;
  /** rtt: payload bytes. */
  size?: number;
}

const MiB = 1024 * 1024;
/** The page's pacing where a client has no backpressure of its own: above HIGH, wait until below LOW. */
const HIGH = 8 * MiB;
const LOW = 4 * MiB;
const HOST = "127.0.0.1";

/** Resolves once `buffered()` is at most {@link LOW} (polled; the page has no drain event). */
async function paced(buffered: () => number): Promise<void> {
  while (buffered() > LOW) await new Promise((r) => setTimeout(r, 1));
}

function openWs(url: string, protocols?: string | string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
}

function newSock(partial: Pick<Sock, "send" | "close">): Sock {
  return { onData: () => {}, onError: () => {}, ...partial };
}

// ------------------------------------------------------------------------------------------------ clients

async function wasmnetSession(spec: ContenderSpec): Promise<Session> {
  const client = new WasmnetClient(spec.url, spec.options);
  await client.ready();
  const api = spec.api ?? "callback";
  const core = api === "wasi" ? new SocketCore(client) : undefined;
  return {
    async open(port) {
      if (api === "streams") {
        // Usable before `opened`: the first write travels with the connect.
        const socket = client.openSocket(HOST, port);
        const { readable, writable } = socket;
        const writer = writable.getWriter();
        const sock = newSock({
          send(bytes) {
            writer.write(bytes).catch((e) => sock.onError(e));
            if ((writer.desiredSize ?? 1) <= 0) return writer.ready;
          },
          close: () => void socket.close(),
        });
        (async () => {
          const reader = readable.getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            sock.onData(value);
          }
          sock.onError(new Error("closed"));
        })().catch((e) => sock.onError(e));
        return sock;
      }
      if (core) {
        const handle = core.open(4).handle!;
        const errno = await core.connect(handle, HOST, port, true);
        if (errno) throw new Error(`connect: errno ${errno}`);
        let open = true;
        // A blocking send, as a program's: the core waits while the socket's send buffer is full.
        const sock = newSock({
          async send(bytes) {
            const r = await core.send(handle, bytes, true);
            if (r.errno) throw new Error(`send: errno ${r.errno}`);
          },
          close: () => {
            open = false;
            core.close(handle);
          },
        });
        (async () => {
          while (open) {
            const r = await core.recv(handle, 1 * MiB, false, true);
            if (r.errno || !r.data?.length) break;
            sock.onData(r.data);
          }
          if (open) sock.onError(new Error("closed"));
        })().catch((e) => sock.onError(e));
        return sock;
      }
      // Usable at once: the first send travels with the connect.
      const id = client.connectNow(HOST, port);
      const buffered = () => client.bufferedAmount(id);
      const sock = newSock({
        send(bytes) {
          if (!client.send(id, bytes)) throw new Error("send: socket closed");
          if (buffered() > HIGH) return paced(buffered);
        },
        close: () => void client.close(id),
      });
      client.onData(id, (d) => sock.onData(d));
      client.onClose(id, (e) => sock.onError(e ?? new Error("closed")));
      return sock;
    },
    close: () => client.disconnect(),
  };
}

// deno-lint-ignore no-explicit-any -- wisp-js ships no types for its browser bundle
type WispJs = any;
let wispJs: Promise<WispJs> | undefined;

async function wispSession(spec: ContenderSpec): Promise<Session> {
  // A variable, so the bundler leaves the import to the page: the bench serves wisp-js's own browser bundle.
  const bundle = "/wisp-client.mjs";
  const { client } = await (wispJs ??= import(bundle));
  const conn = await new Promise<WispJs>((resolve, reject) => {
    const c = new client.ClientConnection(spec.url, { wisp_version: 2 });
    c.onopen = () => resolve(c);
    c.onclose = () => reject(new Error("wisp-js: closed before open"));
  });
  return {
    open(port) {
      const stream = conn.create_stream(HOST, port);
      let closed: Error | undefined;
      const sock = newSock({
        send(bytes) {
          if (closed) throw closed;
          stream.send(bytes);
          // wisp-js queues in its stream while the server's CONTINUE credit is out, and in the WebSocket.
          const busy = () => stream.send_buffer.length > 2 || conn.ws.bufferedAmount > LOW;
          if (stream.send_buffer.length > 8 || conn.ws.bufferedAmount > HIGH) {
            return (async () => {
              while (busy()) {
                if (closed) throw closed;
                await new Promise((r) => setTimeout(r, 1));
              }
            })();
          }
        },
        close: () => stream.close(),
      });
      stream.onmessage = (d: Uint8Array) => sock.onData(d);
      stream.onclose = (reason: number) => {
        closed = new Error(`Wisp stream closed, reason 0x${reason.toString(16)}`);
        sock.onError(closed);
      };
      return Promise.resolve(sock);
    },
    close: () => Promise.resolve(conn.close()),
  };
}

/** One WebSocket per connection: raw bytes (the bare relay), or the ceiling server's modes. */
function rawSession(spec: ContenderSpec): Session {
  const ceiling = spec.kind === "ceiling";
  return {
    async open() {
      const ws = await openWs(spec.url);
      let first = true;
      const sock = newSock({
        send(bytes) {
          if (ceiling && first) {
            // The ceiling server has no TCP target: the targets' header becomes its text command.
            first = false;
            const mode = String.fromCharCode(bytes[0]);
            if (mode === "E") {
              ws.send("E");
              if (bytes.length > 1) ws.send(bytes.subarray(1));
              return;
            }
            const n = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(1);
            ws.send(`${mode} ${n}`);
            return;
          }
          ws.send(bytes);
          if (ws.bufferedAmount > HIGH) return paced(() => ws.bufferedAmount);
        },
        close: () => ws.close(),
      });
      ws.onmessage = (e) => sock.onData(new Uint8Array(e.data as ArrayBuffer));
      ws.onclose = () => sock.onError(new Error("the WebSocket closed"));
      return sock;
    },
    close: () => Promise.resolve(),
  };
}

/** The WebTransport ceiling (wt_ceiling_server.ts): one session, one stream per connection, no TCP behind. */
async function wtCeilingSession(spec: ContenderSpec): Promise<Session> {
  const info = await discoverWebTransport(spec.url);
  if (!info) throw new Error("the WebTransport ceiling server advertises nothing");
  const hashes = info.certificateHashes?.map((h) => ({
    algorithm: h.algorithm,
    value: Uint8Array.fromBase64(h.value),
  }));
  const wt = new WebTransport(info.url, { serverCertificateHashes: hashes });
  await wt.ready;
  const text = new TextEncoder();
  return {
    async open() {
      const stream = await wt.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      let first = true;
      const sock = newSock({
        send(bytes) {
          if (first) {
            // As for the WebSocket ceiling: the targets' header becomes the server's command line.
            first = false;
            const mode = String.fromCharCode(bytes[0]);
            const line = mode === "E"
              ? "E\n"
              : `${mode} ${new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(1)}\n`;
            writer.write(text.encode(line)).catch(() => {});
            if (mode === "E" && bytes.length > 1) writer.write(bytes.slice(1)).catch(() => {});
            return writer.ready;
          }
          writer.write(bytes.slice()).catch(() => {});
          return writer.ready;
        },
        close: () => writer.releaseLock(),
      });
      (async () => {
        const reader = stream.readable.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          sock.onData(value);
        }
      })().catch((err) => sock.onError(err));
      return sock;
    },
    close: () => Promise.resolve(wt.close()),
  };
}

function session(spec: ContenderSpec): Promise<Session> {
  if (spec.kind === "wasmnet") return wasmnetSession(spec);
  if (spec.kind === "wtceiling") return wtCeilingSession(spec);
  if (spec.kind === "wispjs") return wispSession(spec);
  return Promise.resolve(rawSession(spec));
}

// ------------------------------------------------------------------------------------------------ tasks

function run(task: PageTask): Promise<number | number[]> {
  const t: Transport = { multiplexed: task.contender.kind !== "raw", session: () => session(task.contender) };
  switch (task.work) {
    case "download":
      return download(t, task.port, task.n);
    case "upload":
      return upload(t, task.port, task.n);
    case "rtt":
      return echo(t, task.port, task.size ?? 1024, task.n);
    case "connects":
      return connects(t, task.port, task.n);
    case "firstbyte":
      return firstByte(t, task.port, task.n);
  }
}

async function main(): Promise<void> {
  const post = (path: string, body: unknown) =>
    fetch(path, { method: "POST", body: JSON.stringify(body) }).catch(() => {});
  addEventListener("error", (e) => post("/log", { error: String(e.message) }));
  addEventListener("unhandledrejection", (e) => post("/log", { error: String(e.reason) }));
  for (;;) {
    const task = await (await fetch("/task")).json() as PageTask | { done: true };
    if ("done" in task) return;
    try {
      post("/result", { id: task.id, ok: true, value: await run(task) });
    } catch (error) {
      post("/result", { id: task.id, ok: false, error: String((error as Error)?.message ?? error) });
    }
  }
}

if ("document" in globalThis) main();
