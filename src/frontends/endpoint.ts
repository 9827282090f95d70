/**
 * Endpoints: each protocol the server speaks is served at a path (wasmnet's own at any other path, Wisp
 * at `/wisp/`, …). The server refuses early (not a WebSocket, origin, token, limits) and then hands the
 * upgrade to the first endpoint whose path matches.
 *
 * @module
 */

import type { SocketCore } from "../core/core.ts";
import type { PortHandlers } from "../core/websocket.ts";
import type { DecisionLog } from "../core/log.ts";
import type { Policy } from "../policy/mod.ts";
import type { Resolver } from "../core/sockets/resolver.ts";

/** Anything the server must close on shutdown. */
export interface Closable {
  /** The session id its log lines carry, if it has one. */
  readonly id?: string;
  /** Closes the session's sockets and its WebSocket with `code` (1001 on shutdown). */
  shutdown(code?: number, reason?: string): void;
  /**
   * At the end of a drain: like `shutdown`, but sockets first write out what the client already sent
   * (bounded in time). Resolves once they have closed. Front ends without it are shut down.
   */
  finish?(code?: number, reason?: string): Promise<void>;
}

/** What an endpoint gets from the server for one upgrade. */
export interface EndpointContext {
  policy: Policy;
  /** The interface the server listens on (the default bind address). */
  serverHost: string;
  /** The client's IP. */
  clientIp: string;
  log: DecisionLog;
  resolver?: Resolver;
  /**
   * The server's socket core: a front end opens every socket through `core.session(...)` (its log,
   * resolver, observer and quota are the server's). `log` and `resolver` above are the same ones.
   */
  core: SocketCore;
  /** Registers a live session so shutdown closes it; call the returned function when it ends. */
  track(session: Closable): () => void;
}

/** One protocol served at some path. */
export interface Endpoint {
  /** For logs and docs, e.g. `wasmnet`, `wisp`. */
  readonly name: string;
  /** True if this endpoint serves `url`. */
  matches(url: URL): boolean;
  /** Upgrades an admitted WebSocket request and returns the response. */
  upgrade(request: Request, url: URL, ctx: EndpointContext): Response;
}

const ACCEPTED_WITHOUT_UPGRADE = new WeakSet<Response>();

/**
 * What a front end that sets its session up without an HTTP upgrade (WebTransport: the session is already
 * there when admission runs) returns from `upgrade` once it has called `hold()`: like a 101, it keeps the
 * slot held. Any other non-101 answer gives the slot back.
 */
export function acceptedWithoutUpgrade(): Response {
  const response = new Response(null, { status: 204 });
  ACCEPTED_WITHOUT_UPGRADE.add(response);
  return response;
}

/** True if `response` came from {@link acceptedWithoutUpgrade} (admission keeps the session's slot). */
export function isAcceptedWithoutUpgrade(response: Response): boolean {
  return ACCEPTED_WITHOUT_UPGRADE.has(response);
}

/**
 * The handlers of a session that is fed messages and closed with its WebSocket: registered with the server
 * now (`ctx.track`), untracked when it closes.
 */
export function trackedHandlers(
  ctx: EndpointContext,
  session: Closable & { receive(data: string | Uint8Array): void; close(): void },
): PortHandlers {
  const untrack = ctx.track(session);
  return {
    message: (data) => session.receive(data),
    close: () => {
      session.close();
      untrack();
    },
  };
}
