/**
 * The accept loop's and the WebSocket's bounds from a policy's `[server]` table, and the start-up check
 * that the process may open as many file descriptors as those caps can use (docs/security.md, "Every
 * bound a client can hit").
 *
 * @module
 */

import { DEFAULT_SEND_BUFFER_BYTES } from "../core/websocket.ts";
import { isTrustedProxy, type Policy } from "../policy/mod.ts";
import { type ConnectionLimits, probeOpenFiles } from "./accept.ts";

/** A client kept unread this long by its own replies is closed (4429). */
export const FLOOD_CLOSE_MS = 10_000;

/** The accept loop's bounds under `policy`. */
export function connectionLimits(policy: Policy): ConnectionLimits {
  const server = policy.config.server;
  return {
    headerTimeoutMs: server.header_timeout_secs * 1000,
    maxHandshakes: server.max_handshakes,
    maxHandshakesPerIp: server.max_handshakes_per_ip,
    isTrustedProxy: (ip) => isTrustedProxy(ip, policy.rules.trustedProxies),
    sendTimeoutMs: server.send_timeout_secs * 1000,
    // Above the front ends' own send bound (where they stop reading TCP), so only replies can reach it.
    readPauseBytes: 2 * DEFAULT_SEND_BUFFER_BYTES,
    floodCloseMs: FLOOD_CLOSE_MS,
  };
}

/**
 * File descriptors the caps can use at once: every session with all its sockets (two each: a socket with a
 * backlog holds a second descriptor for its reset, src/core/sockets/reset.ts) and listeners, every
 * connection in its handshake, and a margin for the runtime (stdio, DNS, the listener).
 */
export function fdsNeeded(policy: Policy): number {
  const { server, network } = policy.config;
  return server.max_sessions * (1 + 2 * network.max_connections + network.max_listeners) +
    server.max_handshakes + 64;
}

/**
 * The start-up warning when the open-file limit (`ulimit -n`) is below {@link fdsNeeded}, or undefined when
 * it is enough (or cannot be found). `probePath`: a file the process may read (see {@link probeOpenFiles}).
 * The CLI prints it; probing costs a moment, so `serve` does not.
 */
export function fdLimitWarning(policy: Policy, probePath?: string): string | undefined {
  const found = probeOpenFiles(probePath);
  const needed = fdsNeeded(policy);
  if (found === null || found.capped || found.room >= needed) return undefined;
  const what = found.limit !== undefined
    ? `the open-file limit (ulimit -n) is ${found.limit}`
    : `only ${found.room} more files can be opened (ulimit -n)`;
  return `warning: ${what}, below the ${needed} the caps can use (max_sessions × (1 + 2 × max_connections + ` +
    `max_listeners) + max_handshakes + 64); raise it or lower the caps. When descriptors run out, new ` +
    `connections wait and the oldest unfinished handshakes are dropped.`;
}
