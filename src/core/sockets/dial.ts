/**
 * Vetting and dialling: a target is checked by the policy (by name, then every resolved address), and the
 * connection goes to an approved address, never through a second lookup. Every decision is logged once.
 * Shared by every front end (wasmnet, Wisp, websockify, Emscripten's POSIX proxy).
 *
 * @module
 */

import { toWasmnetError, WasmnetError } from "../errors.ts";
import { type DecisionLog, outcomeOf } from "../log.ts";
import { clientReasonOf, decideResolved, decideTarget, type Policy } from "../../policy/mod.ts";
import { DeadlineExceeded, raceDeadline, type Resolver } from "./resolver.ts";
import { observeClose, type SocketObserver } from "../observer.ts";

/** What dialling needs to know about the session asking. */
export interface DialContext {
  policy: Policy;
  resolver: Resolver;
  log: DecisionLog;
  /** Session id, for the log. */
  session: string;
  /** Client IP, for the log. */
  client: string;
  /** Aborts the dial (socket closed, session gone). */
  signal: AbortSignal;
  /** Told about every socket opened, connected, failed and closed (metrics; src/core/observer.ts). */
  observer?: SocketObserver;
}

/**
 * Checks `host:port` against the policy and returns the approved addresses to connect to, in order.
 * Throws `POLICY_DENIED` (logged with the rule), `RESOLVE_FAILED`, or `BAD_REQUEST`.
 */
export async function vetTarget(ctx: DialContext, op: string, host: string, port: number): Promise<string[]> {
  const target = formatHostPort(host, port);
  const verdict = decideTarget(ctx.policy, host, port);
  if (verdict.kind === "deny") {
    ctx.log({
      ...who(ctx),
      op,
      target,
      decision: "deny",
      rule: verdict.decision.rule,
      reason: verdict.decision.reason,
    });
    throw new WasmnetError("POLICY_DENIED", verdict.decision.reason);
  }
  if (verdict.kind === "allow") {
    ctx.log({
      ...who(ctx),
      op,
      target,
      resolved: [verdict.address],
      decision: "allow",
      rule: verdict.decision.rule,
    });
    return [verdict.address];
  }
  let addresses: string[];
  try {
    addresses = await ctx.resolver(verdict.name, ctx.signal);
  } catch (err) {
    const e = toWasmnetError(err, "RESOLVE_FAILED");
    ctx.log({ ...who(ctx), op, target, decision: "error", rule: "resolve", reason: e.message });
    throw e;
  }
  const { decision, addresses: approved } = decideResolved(ctx.policy, verdict.name, port, addresses);
  ctx.log({
    ...who(ctx),
    op,
    target,
    resolved: addresses,
    ...outcomeOf(decision),
  });
  // The client hears the reason without the resolved address or its range (the log above has them).
  if (!decision.allowed) throw new WasmnetError("POLICY_DENIED", clientReasonOf(decision));
  return approved;
}

/**
 * Vets and connects a TCP socket, trying the approved addresses in order, within `timeoutMs`.
 * Throws `POLICY_DENIED`, `PERMISSION_DENIED`, `RESOLVE_FAILED`, `CONNECT_TIMEOUT` or `CONNECT_FAILED`.
 */
export async function dialTcp(
  ctx: DialContext,
  op: string,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ conn: Deno.TcpConn; address: string }> {
  const started = performance.now();
  const dialed = await observeFailure(ctx, connectTcp(ctx, op, host, port, timeoutMs));
  ctx.observer?.connected("tcp", (performance.now() - started) / 1000);
  observeClose(ctx.observer, "tcp", dialed.conn);
  return dialed;
}

/** Reports the code of a failed open to `ctx.observer`, and rethrows. */
export async function observeFailure<T>(ctx: DialContext, opening: Promise<T>): Promise<T> {
  try {
    return await opening;
  } catch (err) {
    ctx.observer?.failed(toWasmnetError(err, "CONNECT_FAILED").code);
    throw err;
  }
}

/** {@link dialTcp} without reporting to the observer (TLS reports the connection as `tls`). */
export async function connectTcp(
  ctx: DialContext,
  op: string,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ conn: Deno.TcpConn; address: string }> {
  const addresses = await vetTarget(ctx, op, host, port);
  const deadline = performance.now() + timeoutMs;
  let last: WasmnetError | undefined;
  for (const address of addresses) {
    const connecting = Deno.connect({ hostname: address, port, transport: "tcp" });
    try {
      const conn = await raceDeadline(connecting, ctx.signal, Math.max(1, deadline - performance.now()));
      return { conn, address };
    } catch (err) {
      // A connect that completes after we gave up must not leak.
      connecting.then((c) => c.close(), () => {});
      if (err instanceof DeadlineExceeded) {
        throw new WasmnetError(
          "CONNECT_TIMEOUT",
          `connecting to ${formatHostPort(host, port)} timed out after ${timeoutMs} ms`,
        );
      }
      if (ctx.signal.aborted) throw new WasmnetError("CONNECT_FAILED", "connect cancelled");
      last = toWasmnetError(err, "CONNECT_FAILED");
      if (last.code === "PERMISSION_DENIED") {
        ctx.log({
          ...who(ctx),
          op,
          target: formatHostPort(address, port),
          decision: "deny",
          rule: "deno --deny-net/--allow-net",
          reason: last.message,
        });
        throw last;
      }
      last = new WasmnetError(
        "CONNECT_FAILED",
        `cannot connect to ${formatHostPort(host, port)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  throw last ?? new WasmnetError("CONNECT_FAILED", `no address to connect to for ${host}`);
}

/** `host:port`, with IPv6 literals in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

function who(ctx: DialContext) {
  return { session: ctx.session, client: ctx.client };
}
