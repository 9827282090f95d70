/**
 * One upgrade without a `Server` (`handleWsUpgrade`, for mounting wasmnet in an existing `Deno.serve`), and
 * the pieces the server shares with it: who the client is behind trusted proxies, and the answer to a
 * request that is not a WebSocket.
 *
 * @module
 */

import { warmAllocator } from "../core/allocator.ts";
import { SocketCore } from "../core/core.ts";
import { messageLimits, setMessageLimits } from "../core/limits.ts";
import { type DecisionLog, silentLog } from "../core/log.ts";
import type { Resolver } from "../core/sockets/resolver.ts";
import { isWebSocketUpgrade } from "../core/websocket.ts";
import type { EndpointContext } from "../frontends/endpoint.ts";
import { wasmnetEndpoint } from "../frontends/wasmnet/endpoint.ts";
import { clientAddressOf, type Policy } from "../policy/mod.ts";

/**
 * The client's address for limits and logs: `peer`, or, when `peer` is one of the policy's trusted reverse
 * proxies, the browser's address from `Forwarded` or `X-Forwarded-For` (src/policy/proxies.ts).
 */
export function clientIpOf(request: Request, peer: string, policy: Policy): string {
  const headers = request.headers;
  return clientAddressOf(
    peer,
    headers.get("x-forwarded-for"),
    policy.rules.trustedProxies,
    headers.get("forwarded"),
  ).ip;
}

/** Options for {@link handleWsUpgrade}. */
export interface UpgradeOptions {
  /**
   * The client's IP (for logs and limits); from `info.remoteAddr.hostname` in a `Deno.serve` handler. When it
   * is one of the policy's `server.trusted_proxies`, `Forwarded` or `X-Forwarded-For` says who the client is.
   */
  clientIp?: string;
  /** The interface the server listens on (default bind address). Default `0.0.0.0`. */
  serverHost?: string;
  log?: DecisionLog;
  resolver?: Resolver;
  /** Closing this signal closes the session. */
  signal?: AbortSignal;
}

/**
 * Upgrades one request to a wasmnet session and returns the `Response` to hand back to `Deno.serve`.
 * A request that is not a WebSocket upgrade gets `426 Upgrade Required`.
 */
export function handleWsUpgrade(request: Request, policy: Policy, options: UpgradeOptions = {}): Response {
  if (!isWebSocketUpgrade(request)) return notWebSocket();
  warmAllocator(); // once per process (src/core/allocator.ts)
  setMessageLimits(request, messageLimits(policy)); // max_message_bytes, session idle (src/core/limits.ts)
  const ctx: EndpointContext = {
    policy,
    serverHost: options.serverHost ?? "0.0.0.0",
    clientIp: clientIpOf(request, options.clientIp ?? "unknown", policy),
    log: options.log ?? silentLog,
    resolver: options.resolver,
    core: new SocketCore({
      log: options.log,
      resolver: options.resolver,
      serverHost: options.serverHost,
    }),
    track: (session) => {
      const onAbort = () => session.shutdown(1001, "server shutting down");
      options.signal?.addEventListener("abort", onAbort, { once: true });
      return () => options.signal?.removeEventListener("abort", onAbort);
    },
  };
  return wasmnetEndpoint.upgrade(request, new URL(request.url), ctx);
}

/** The answer to a plain HTTP request: 426, this endpoint speaks WebSocket. */
export function notWebSocket(): Response {
  return new Response("wasmnet: this endpoint speaks WebSocket; see docs/protocol.md\n", {
    status: 426,
    headers: { "upgrade": "websocket", "content-type": "text/plain; charset=utf-8" },
  });
}
