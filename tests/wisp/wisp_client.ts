/**
 * Wisp clients for tests and the benchmark:
 * - {@link WispJsClient}: the real `@mercuryworkshop/wisp-js` 0.5.0 client (nobody here wrote it), wrapped in
 *   promises. Point it at wasmnet (`ws://host:port/wisp/`) or at the wisp-js server ({@link startWispJsServer}
 *   in `servers.ts`) to compare both with the same client.
 * - {@link RawWispClient}: a packet-level client on our own codec, for what wisp-js cannot show (close
 *   reasons on stream 0, credit overruns, exact packet order).
 *
 * @module
 */

// Full npm: specifiers, not import-map entries: `deno task` installs every import-map npm package
// into deno.lock, the server's runtime lockfile that `deno compile` embeds (tests/packaging/).
// deno-lint-ignore no-import-prefix
import { client as wispjs, extensions as wispExt } from "npm:@mercuryworkshop/wisp-js@0.5.0/client";
import { decodePacket, encodePacket, type Packet } from "../../src/frontends/wisp/packets.ts";

/** Options of {@link WispJsClient.connect}. */
export interface WispJsOptions {
  /** 2 (default: offers `wisp-v2`, does the INFO exchange) or 1. */
  version?: 1 | 2;
  /** v2 password extension credentials. */
  credentials?: { username: string; password: string };
  /** Milliseconds to wait for the connection to open (default 5000). */
  timeoutMs?: number;
}

// deno-lint-ignore no-explicit-any
type Any = any;

/** The wisp-js client connection, opened. */
export class WispJsClient {
  /** The underlying `wisp-js` `ClientConnection`. */
  readonly conn: Any;
  /** Resolves when the WebSocket has closed. */
  readonly closed: Promise<void>;

  private constructor(conn: Any, closed: Promise<void>) {
    this.conn = conn;
    this.closed = closed;
  }

  /** Opens a connection to `url` (which must end in `/`) and waits for the server's first CONTINUE. */
  static connect(url: string, options: WispJsOptions = {}): Promise<WispJsClient> {
    const version = options.version ?? 2;
    let extensions: Any[] | undefined;
    if (version === 2 && options.credentials) {
      extensions = [
        new wispExt.UDPExtension({ client_config: {} }),
        new wispExt.MOTDExtension({ client_config: {} }),
        new wispExt.PasswordAuthExtension({ client_config: options.credentials }),
      ];
    }
    const conn = new wispjs.ClientConnection(url, { wisp_version: version, wisp_extensions: extensions });
    const { promise: closed, resolve: markClosed } = Promise.withResolvers<void>();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.close();
        closed.then(() =>
          reject(new Error(`wisp-js client: no CONTINUE from ${url} within ${options.timeoutMs ?? 5000} ms`))
        );
      }, options.timeoutMs ?? 5000);
      conn.onopen = () => {
        clearTimeout(timer);
        resolve(new WispJsClient(conn, closed));
      };
      conn.onclose = () => {
        markClosed();
        clearTimeout(timer);
        reject(new Error("wisp-js client: the connection closed before it opened"));
      };
      conn.onerror = () => {
        markClosed();
        clearTimeout(timer);
        reject(new Error("wisp-js client: the WebSocket failed"));
      };
    });
  }

  /** The protocol version the client settled on (2 only if the server sent INFO). */
  get version(): number {
    return this.conn.wisp_version;
  }

  /** The server's MOTD (v2), or null/undefined. */
  get motd(): string | null | undefined {
    return this.conn.server_motd;
  }

  /** Whether the server offered UDP (v2; always true on v1). */
  get udpEnabled(): boolean {
    return this.conn.udp_enabled;
  }

  /** Opens a stream (`type` 1 TCP, 2 UDP, or anything else to provoke the server). */
  stream(host: string, port: number, type: number | "tcp" | "udp" = "tcp"): WispJsStream {
    return new WispJsStream(
      this.conn.create_stream(host, port, type === "tcp" ? 1 : type === "udp" ? 2 : type),
    );
  }

  /** Closes the WebSocket and waits until it is closed. */
  async close(): Promise<void> {
    this.conn.close();
    await this.closed;
  }
}

/** One wisp-js stream with its received bytes and its close reason as promises. */
export class WispJsStream {
  /** The wisp-js `ClientStream`. */
  readonly raw: Any;
  /** Every DATA payload received, in order. */
  readonly chunks: Uint8Array[] = [];
  /** Total bytes received. */
  bytes = 0;
  /** Resolves with the server's close reason (or 0x03 when the connection closed). */
  readonly closeReason: Promise<number>;
  #wake: (() => void) | undefined;
  #onData: ((chunk: Uint8Array) => void) | undefined;

  constructor(raw: Any) {
    this.raw = raw;
    this.closeReason = new Promise((resolve) => {
      raw.onclose = (reason: number) => {
        resolve(reason);
        this.#wake?.();
      };
    });
    raw.onmessage = (data: Uint8Array) => {
      const chunk = new Uint8Array(data);
      if (this.#onData) this.#onData(chunk);
      else this.chunks.push(chunk);
      this.bytes += chunk.length;
      this.#wake?.();
    };
  }

  /** Handles each chunk as it arrives instead of keeping it (for large transfers). */
  onData(handler: (chunk: Uint8Array) => void): void {
    this.#onData = handler;
  }

  /** Sends bytes (one DATA packet; wisp-js queues it while credit is spent). */
  send(bytes: Uint8Array | string): void {
    this.raw.send(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
  }

  /** Waits until at least `n` bytes have arrived; rejects after `ms` or if the stream closes first. */
  async waitForBytes(n: number, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    let closed = false;
    this.closeReason.then(() => (closed = true));
    while (this.bytes < n) {
      if (closed) {
        throw new Error(
          `stream closed (reason 0x${
            (await this.closeReason).toString(16)
          }) after ${this.bytes} of ${n} bytes`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`only ${this.bytes} of ${n} bytes within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Everything received so far as one byte array. */
  text(): string {
    const all = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) all.set(c, (at += c.length) - c.length);
    return new TextDecoder().decode(all);
  }

  /** Sends CLOSE (default reason 0x02). */
  close(reason = 0x02): void {
    this.raw.close(reason);
  }
}

/** A packet-level Wisp client over Deno's WebSocket (for exact protocol checks). */
export class RawWispClient {
  readonly ws: WebSocket;
  readonly packets: Packet[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #wake: (() => void) | undefined;

  /** Connects to `url`; `protocols` e.g. `"wisp-v2"` for v2. */
  constructor(url: string, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("websocket error"));
    });
    this.closed = new Promise((resolve) =>
      this.ws.addEventListener("close", (e) => {
        resolve(e);
        this.#wake?.();
      })
    );
    this.ws.onmessage = (e) => {
      const d = decodePacket(new Uint8Array(e.data as ArrayBuffer));
      if (!d.ok) throw new Error(`server sent a bad packet: ${d.problem}`);
      this.packets.push(d.packet);
      this.#wake?.();
    };
  }

  /** Sends a packet. */
  send(packet: Packet): void {
    this.ws.send(encodePacket(packet) as Uint8Array<ArrayBuffer>);
  }

  /** Removes and returns the first received packet matching `pred` (waiting up to `ms`). */
  async next(pred: (p: Packet) => boolean, ms = 5000): Promise<Packet> {
    const deadline = Date.now() + ms;
    while (true) {
      const i = this.packets.findIndex(pred);
      if (i >= 0) return this.packets.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(
          `no matching packet within ${ms} ms; have ${
            JSON.stringify(this.packets.slice(-5).map((p) => p.type))
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** The CLOSE for `streamId`; resolves with its reason. */
  async closeReason(streamId: number, ms = 5000): Promise<number> {
    const p = await this.next((p) => p.type === "close" && p.streamId === streamId, ms);
    return p.type === "close" ? p.reason : -1;
  }

  /** Closes the WebSocket and waits for it. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** Result of {@link wispEchoThroughput}. */
export interface EchoThroughput {
  /** Bytes sent and echoed back. */
  bytes: number;
  /** Wall time from the first send to the last echoed byte, in ms. */
  ms: number;
  /** Round-trip throughput in MiB/s (bytes / time; each byte crosses the WebSocket twice). */
  mibPerSec: number;
  /** True if every echoed byte matched. */
  intact: boolean;
}

/**
 * Sends `total` bytes in `chunk`-byte DATA packets through one Wisp TCP stream to a TCP echo server at
 * `127.0.0.1:echoPort` and measures until all of it has come back, with the wisp-js client. The same call
 * measures wasmnet (`ws://…/wisp/`) and the wisp-js server ({@link startWispJsServer}), so the benchmark
 * compares servers with one client.
 */
export async function wispEchoThroughput(
  url: string,
  echoPort: number,
  total = 64 * 1024 * 1024,
  chunk = 64 * 1024,
  version: 1 | 2 = 2,
): Promise<EchoThroughput> {
  const client = await WispJsClient.connect(url, { version });
  try {
    const s = client.stream("127.0.0.1", echoPort);
    const pattern = (offset: number) => (offset * 31 + (offset >>> 12)) & 0xff;
    let checked = 0;
    let intact = true;
    s.onData((c) => {
      for (let i = 0; i < c.length && intact; i++) intact = c[i] === pattern(checked + i);
      checked += c.length;
    });
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += chunk) {
      const n = Math.min(chunk, total - sent);
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = pattern(sent + i);
      s.send(b);
      // Keep at most 8 MiB outstanding so the client's own queue stays bounded.
      if (sent - s.bytes > 8 * 1024 * 1024) await s.waitForBytes(sent - 4 * 1024 * 1024, 60_000);
    }
    await s.waitForBytes(total, 120_000);
    const ms = performance.now() - t0;
    s.close();
    return {
      bytes: total,
      ms,
      mibPerSec: total / 1024 / 1024 / (ms / 1000),
      intact: intact && s.bytes === total,
    };
  } finally {
    await client.close();
  }
}
