/**
 * The core's seam for metrics: what the shared socket code (src/core/sockets/) reports about every socket it
 * opens, whichever front end asked. The server passes one observer to every front end (EndpointContext),
 * each front end hands it on in its `DialContext`, and the counting itself happens only here in the core
 * (dial, TLS, UDP, listener), so every front end is counted the same way. src/ops/metrics.ts implements it.
 *
 * Called at socket open and close and at each connect, never per byte.
 *
 * @module
 */

import type { ErrorCode } from "./errors.ts";

/** Socket kinds, as metrics label them. */
export type SocketKind = "tcp" | "tls" | "udp" | "listener";

/** Receives the core's socket events. */
export interface SocketObserver {
  /** A socket of `kind` is open (connected or bound). */
  opened(kind: SocketKind): void;
  /** A socket of `kind` that {@link opened} reported has closed. */
  closed(kind: SocketKind): void;
  /** A connect of `kind` completed, `seconds` after it was asked for (name lookup and handshake included). */
  connected(kind: SocketKind, seconds: number): void;
  /** Opening a socket failed with `code` (the code the client is told). */
  failed(code: ErrorCode): void;
}

/**
 * Reports `kind` open now and closed when `resource.close()` is first called, by whoever owns it. The
 * instance's `close` is wrapped (once, at open) rather than the resource, so reads and writes stay direct.
 */
export function observeClose<T extends { close(): void }>(
  observer: SocketObserver | undefined,
  kind: SocketKind,
  resource: T,
): T {
  if (!observer) return resource;
  observer.opened(kind);
  const close = resource.close.bind(resource);
  let open = true;
  resource.close = () => {
    if (open) (open = false), observer.closed(kind);
    close();
  };
  return resource;
}
