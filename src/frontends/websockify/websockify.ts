/**
 * websockify mode: one WebSocket is one TCP connection, raw bytes both ways, the way Emscripten's default
 * `SOCKFS` (and noVNC, and anything else written for websockify) talks. The target is in the path:
 * `ws://wasmnet-host:9000/tcp/HOST:PORT` (IPv6 as `[::1]:PORT`), and is checked by the policy like any
 * connect. Emscripten 3.1.6 uses a configured URL as it is, ignoring the address the program connects to,
 * so the page sets `Module.websocket.url` (or the build sets `-sWEBSOCKET_URL`) to that URL; see
 * docs/emscripten.md.
 *
 * Errors a program can see: a target the policy refuses before any lookup (an IP literal in a blocked
 * range, a blocked name, a bad port) is answered `403` without upgrading, which the browser reports as a
 * failed WebSocket and `SOCKFS` as `ECONNREFUSED`. Anything decided later (a name resolving to a blocked
 * address, a refused or timed-out connect) closes the open WebSocket with 1008 (policy) or 1011 (network)
 * and a reason, which `SOCKFS` sees as the peer closing (`recv` returns 0), as with websockify.
 *
 * Bounds: bytes from the browser wait in the TCP write queue (bounded, `DEFAULT_MAX_QUEUED_WRITE_BYTES`);
 * past it the WebSocket is closed with 1009, since a WebSocket cannot be paused. Bytes from the target are
 * read only while the WebSocket's send buffer holds less than `MAX_BUFFERED_BYTES`, so a slow browser
 * pushes back on the target through TCP.
 *
 * @module
 */

import type { Endpoint, EndpointContext } from "../endpoint.ts";
import type { CoreSession } from "../../core/core.ts";
import { toWasmnetError, type WasmnetError } from "../../core/errors.ts";
import { DRAIN_FLUSH_MS, TcpStream } from "../../core/sockets/tcp.ts";
import {
  DEFAULT_SEND_BUFFER_BYTES,
  offeredProtocols,
  SendBufferGate,
  upgradeToPort,
  type WebSocketPort,
} from "../../core/websocket.ts";

/** The path prefix this endpoint serves. */
export const WEBSOCKIFY_PREFIX = "/tcp/";

/** Above this many bytes waiting in the WebSocket's send buffer, reading from the target pauses. */
export const MAX_BUFFERED_BYTES = DEFAULT_SEND_BUFFER_BYTES;

/** The only subprotocol spoken: raw binary frames (websockify dropped `base64` too). */
export const SUBPROTOCOL = "binary";

/** Close codes this endpoint uses, and what each means to the browser. */
export const CloseCode = {
  /** The target closed the connection; everything it sent was delivered first. */
  NORMAL: 1000,
  /** The client sent a text frame; only binary frames carry bytes. */
  UNSUPPORTED_DATA: 1003,
  /** The policy refused the target after a lookup. */
  POLICY: 1008,
  /** The client sent faster than the target reads, past the write queue bound. */
  TOO_BIG: 1009,
  /** The connect failed or the connection broke. */
  NETWORK: 1011,
} as const;

/** The target named by a `/tcp/HOST:PORT` path, or a sentence saying what is wrong with it. */
export function parseTargetPath(pathname: string): { host: string; port: number } | { problem: string } {
  if (!pathname.startsWith(WEBSOCKIFY_PREFIX)) {
    return { problem: `path must start with ${WEBSOCKIFY_PREFIX}` };
  }
  let text: string;
  try {
    text = decodeURIComponent(pathname.slice(WEBSOCKIFY_PREFIX.length));
  } catch {
    return { problem: "path is not valid percent-encoding" };
  }
  if (text.endsWith("/")) text = text.slice(0, -1);
  const m = /^(?:\[([0-9A-Fa-f:.%\w-]+)\]|([^:/\[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return { problem: `expected ${WEBSOCKIFY_PREFIX}HOST:PORT (IPv6 as [ADDR]:PORT), got "${text}"` };
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return { problem: `port must be 1-65535, got ${port}` };
  return { host: m[1] ?? m[2], port };
}

/** The websockify endpoint: `/tcp/HOST:PORT`. */
export const websockifyEndpoint: Endpoint = {
  name: "websockify",
  matches: (url) => url.pathname.startsWith(WEBSOCKIFY_PREFIX),
  upgrade(request, url, ctx) {
    const target = parseTargetPath(url.pathname);
    if ("problem" in target) return plain(400, target.problem);
    const offered = offeredProtocols(request);
    if (offered.length > 0 && !offered.includes(SUBPROTOCOL)) {
      return plain(
        400,
        `only the "${SUBPROTOCOL}" subprotocol is spoken here (offered: ${offered.join(", ")})`,
      );
    }
    const refused = ctx.core.refusesEarly(ctx.policy, ctx.clientIp, "websockify", target.host, target.port);
    if (refused !== undefined) return plain(403, refused);
    return upgradeToPort(
      request,
      (port) => new WebsockifyConnection(port, ctx, target.host, target.port).handlers(),
      offered.length > 0 ? { protocol: SUBPROTOCOL } : {},
    );
  },
};

/** One WebSocket bridged to one TCP connection. */
class WebsockifyConnection {
  readonly #port: WebSocketPort;
  readonly #controller = new AbortController();
  readonly #stream: TcpStream;
  readonly #untrack: () => void;
  /** The connection's socket is opened through it (src/core/core.ts), under the session's limits. */
  readonly #core: CoreSession;
  readonly #host: string;
  readonly #targetPort: number;
  #closed = false;
  readonly #room: SendBufferGate;

  constructor(port: WebSocketPort, ctx: EndpointContext, host: string, targetPort: number) {
    this.#port = port;
    this.#core = ctx.core.session({
      frontend: "websockify",
      policy: ctx.policy,
      clientIp: ctx.clientIp,
      signal: this.#controller.signal,
    });
    this.#room = new SendBufferGate(port, MAX_BUFFERED_BYTES);
    this.#stream = new TcpStream(
      {
        onData: (bytes) => this.#send(bytes),
        onEnd: (error) => this.#end(error),
      },
      () => this.#room.wait(),
      undefined,
      // The port is always Deno's WebSocket (upgradeToPort), whose send copies before returning.
      { reuseBuffer: true },
    );
    this.#untrack = ctx.track({
      id: this.#core.id,
      shutdown: (code, reason) => this.#close(code ?? 1001, reason ?? "server shutting down"),
      finish: (code, reason) => this.#finishDrain(code ?? 1001, reason ?? "server shutting down"),
    });
    this.#host = host;
    this.#targetPort = targetPort;
  }

  /** What the WebSocket delivers to this connection. */
  handlers() {
    return {
      open: () => {
        if (!this.#closed) this.#dial();
      },
      message: (data: string | Uint8Array) => {
        if (this.#closed) return;
        if (typeof data === "string") {
          this.#close(CloseCode.UNSUPPORTED_DATA, "text frames are not supported; send binary frames");
          return;
        }
        const refused = this.#stream.write(data);
        if (refused) {
          this.#close(
            refused.code === "BUFFER_FULL" ? CloseCode.TOO_BIG : CloseCode.NETWORK,
            refused.message,
          );
        }
      },
      close: () => {
        // The browser closed: deliver what it already sent, then close the TCP connection.
        this.#closed = true;
        this.#finish();
        this.#stream.close();
      },
    };
  }

  /** Dials the target once the WebSocket is open (sending before that would throw). */
  #dial(): void {
    this.#core.connect("websockify", this.#host, this.#targetPort).then(
      (conn) => {
        if (this.#closed) conn.close();
        // max_bandwidth_mbps and socket_idle_timeout_secs, as for any other socket.
        else this.#stream.attach(this.#core.limit(conn, (e) => this.#close(CloseCode.NETWORK, e.message)));
      },
      (err) => {
        const e = toWasmnetError(err, "CONNECT_FAILED");
        const code = e.code === "POLICY_DENIED" || e.code === "PERMISSION_DENIED"
          ? CloseCode.POLICY
          : CloseCode.NETWORK;
        this.#close(code, e.message);
      },
    );
  }

  #send(bytes: Uint8Array): void {
    if (this.#closed) return;
    try {
      this.#port.send(bytes);
    } catch {
      // The WebSocket is closing; its close handler ends the stream.
    }
  }

  #end(error?: WasmnetError): void {
    if (error) this.#close(CloseCode.NETWORK, error.message);
    else this.#close(CloseCode.NORMAL, "");
  }

  #close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#finish();
    this.#stream.destroy();
    try {
      this.#port.close(code, truncateReason(reason));
    } catch {
      // already closed
    }
  }

  /** End of a drain: the target gets what the client already sent (bounded), then a FIN; the WebSocket 1001. */
  #finishDrain(code: number, reason: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const flushed = this.#stream.closeWithin(DRAIN_FLUSH_MS);
    try {
      this.#port.close(code, truncateReason(reason));
    } catch {
      // already closed
    }
    return flushed.finally(() => this.#finish());
  }

  #finish(): void {
    this.#controller.abort();
    this.#core.close();
    this.#room.close();
    this.#untrack();
  }
}

/** A close reason must fit in 123 bytes of UTF-8. */
export function truncateReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  let cut = 120;
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return new TextDecoder().decode(bytes.subarray(0, cut)) + "...";
}

function plain(status: number, text: string): Response {
  return new Response(`wasmnet websockify: ${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
