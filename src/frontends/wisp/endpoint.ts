/**
 * Wisp at `…/wisp/` on the server's port, so every Wisp client (wisp-js, libcurl.js, epoxy-tls, v86) gets
 * wasmnet's policy by changing one URL. Also the older wsproxy form `…/wisp/host:port`: one raw TCP stream
 * per WebSocket, policy-checked the same way.
 *
 * Version: a client that offers any `Sec-WebSocket-Protocol` speaks v2 (wisp-js offers `wisp-v2`; we answer
 * with it, or with the first protocol offered), one that offers none speaks v1 — the rule wisp-js's own
 * server uses.
 *
 * @module
 */

import type { Endpoint, EndpointContext } from "../endpoint.ts";
import type { CoreSession } from "../../core/core.ts";
import { toWasmnetError } from "../../core/errors.ts";
import { TcpStream } from "../../core/sockets/tcp.ts";
import { offeredProtocols, SendBufferGate, upgradeToPort, type WebSocketPort } from "../../core/websocket.ts";
import { truncateUtf8, type WispOptions, WispSession } from "./session.ts";

/** Options of the Wisp endpoint. */
export interface WispEndpointOptions extends WispOptions {
  /**
   * The path prefix, ending in `/` (default `/wisp/`). Any path that ends with it is served, so
   * `/wisp/` and `/anything/wisp/` both work.
   */
  path?: string;
  /** Serve the wsproxy form `<path>host:port` (default true). */
  wsproxy?: boolean;
  /** Called with each new session (for metrics and tests). */
  onSession?: (session: WispSession) => void;
}

/** Builds the Wisp endpoint. Settings from the policy's `[wisp]` section apply unless `options` sets them. */
export function wispEndpoint(options: WispEndpointOptions = {}): Endpoint {
  const prefix = options.path ?? "/wisp/";
  if (!prefix.startsWith("/") || !prefix.endsWith("/")) {
    throw new RangeError(`Wisp path must start and end with "/", got "${prefix}"`);
  }
  return {
    name: "wisp",
    matches: (url) =>
      url.pathname.endsWith(prefix) ||
      (options.wsproxy !== false && wsproxyTarget(url.pathname, prefix) !== undefined),
    upgrade(request, url, ctx) {
      const target = url.pathname.endsWith(prefix) ? undefined : wsproxyTarget(url.pathname, prefix);
      if (target) {
        // A raw stream has no way to carry a password: with passwords set, only Wisp v2 gets in.
        const passwords = options.passwords ?? ctx.policy.config.wisp.password_users;
        if (Object.keys(passwords).length > 0) {
          return new Response("wasmnet: wsproxy is off because Wisp passwords are set\n", { status: 403 });
        }
        return upgradeWsproxy(request, target, ctx);
      }
      const offered = offeredProtocols(request);
      const protocol = offered.length === 0
        ? undefined
        : offered.includes("wisp-v2")
        ? "wisp-v2"
        : offered[0];
      const section = ctx.policy.config.wisp;
      return upgradeToPort(request, (port) => {
        const session = new WispSession(port, {
          motd: section.motd,
          passwords: section.password_users,
          ...options,
          policy: ctx.policy,
          clientIp: ctx.clientIp,
          core: ctx.core.session({ frontend: "wisp", policy: ctx.policy, clientIp: ctx.clientIp }),
          version: protocol === undefined ? 1 : 2,
          reuseReadBuffers: true, // Deno's WebSocket.send copies before returning
        });
        const untrack = ctx.track(session);
        options.onSession?.(session);
        return {
          open: () => session.start(),
          message: (data) => session.receive(data),
          close: () => {
            session.close();
            untrack();
          },
        };
      }, { protocol });
    },
  };
}

/** The Wisp endpoint with its defaults (`…/wisp/`, wsproxy on), as registered in `src/http/endpoints.ts`. */
export const WISP_ENDPOINT: Endpoint = wispEndpoint();

/** `{host, port}` if `pathname` is `<…prefix>host:port` (IPv6 in brackets), else undefined. */
export function wsproxyTarget(
  pathname: string,
  prefix = "/wisp/",
): { host: string; port: number } | undefined {
  const at = pathname.lastIndexOf(prefix);
  if (at < 0) return undefined;
  let rest: string;
  try {
    rest = decodeURIComponent(pathname.slice(at + prefix.length));
  } catch {
    return undefined;
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^/:\[\]]+)):(\d{1,5})$/.exec(rest);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

/** WebSocket close codes of the wsproxy form (a raw stream has no Wisp CLOSE). */
export const WSPROXY_CLOSE = { BLOCKED: 1008, FAILED: 1011, DONE: 1000 } as const;

/** One raw TCP stream per WebSocket: binary messages in, binary messages out. */
function upgradeWsproxy(
  request: Request,
  target: { host: string; port: number },
  ctx: EndpointContext,
): Response {
  return upgradeToPort(request, (port) => {
    const relay = new WsproxyRelay(port, target, ctx);
    const untrack = ctx.track(relay);
    return {
      open: () => relay.start(),
      message: (data) => relay.receive(data),
      close: () => {
        relay.close();
        untrack();
      },
    };
  });
}

class WsproxyRelay {
  /** Session id for logs. */
  readonly id: string;
  readonly #port: WebSocketPort;
  readonly #controller = new AbortController();
  readonly #stream: TcpStream;
  readonly #target: { host: string; port: number };
  readonly #core: CoreSession;
  readonly #room: SendBufferGate;

  constructor(port: WebSocketPort, target: { host: string; port: number }, ctx: EndpointContext) {
    this.#core = ctx.core.session({
      frontend: "wisp",
      policy: ctx.policy,
      clientIp: ctx.clientIp,
      signal: this.#controller.signal,
    });
    this.id = this.#core.id;
    this.#port = port;
    this.#room = new SendBufferGate(port);
    this.#stream = new TcpStream(
      {
        onData: (bytes) => this.#port.send(bytes),
        onEnd: (error) => {
          if (this.#controller.signal.aborted) return; // we ended it, with our own close code
          this.shutdown(error ? WSPROXY_CLOSE.FAILED : WSPROXY_CLOSE.DONE, error?.message ?? "target closed");
        },
      },
      () => this.#waitForRoom(),
      undefined,
      // The port is always Deno's WebSocket (upgradeToPort), whose send copies before returning.
      { reuseBuffer: true },
    );
    this.#target = target;
  }

  /** Dials once the WebSocket is open (only then can a refusal be reported with a close code). */
  start(): void {
    const target = this.#target;
    this.#core.connect("wisp_wsproxy", target.host, target.port).then(
      // max_bandwidth_mbps and socket_idle_timeout_secs, as for any other socket.
      (conn) =>
        this.#stream.attach(this.#core.limit(conn, (e) => this.shutdown(WSPROXY_CLOSE.FAILED, e.message))),
      (err) => {
        const e = toWasmnetError(err, "CONNECT_FAILED");
        const denied = e.code === "POLICY_DENIED" || e.code === "PERMISSION_DENIED";
        this.shutdown(denied ? WSPROXY_CLOSE.BLOCKED : WSPROXY_CLOSE.FAILED, `${e.code}: ${e.message}`);
      },
    );
  }

  receive(data: string | Uint8Array): void {
    if (this.#controller.signal.aborted) return;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const refused = this.#stream.write(bytes);
    if (refused && refused.code !== "SEND_FAILED") {
      this.shutdown(WSPROXY_CLOSE.FAILED, `${refused.code}: ${refused.message}`);
    }
  }

  close(): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort();
    this.#room.close();
    this.#stream.destroy();
    this.#core.close();
  }

  shutdown(code = 1001, reason = "server shutting down"): void {
    this.close();
    try {
      // WebSocket close reasons are limited to 123 bytes.
      this.#port.close(code, truncateUtf8(reason, 120));
    } catch {
      // already closed
    }
  }

  #waitForRoom(): Promise<void> | undefined {
    return this.#room.wait();
  }
}
