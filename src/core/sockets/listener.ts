/**
 * Listeners: `bind` is policy-checked (bind address and port) like a connect, and a port of 0 is given
 * one of the ports `bind_ports` allows. Accepted connections are handed to the caller, which owns them;
 * closing a listener never closes what it accepted.
 *
 * @module
 */

import { toWasmnetError, WasmnetError } from "../errors.ts";
import { bindPortCandidates, decideBind, normaliseAddress } from "../../policy/mod.ts";
import { type DialContext, formatHostPort } from "./dial.ts";
import { observeClose } from "../observer.ts";

/** How many candidate ports a `bind` to port 0 tries before giving up. */
const MAX_BIND_ATTEMPTS = 64;

/**
 * Checks and binds a TCP listener. `serverHost` is the interface the server itself listens on (the default
 * for `bind_addrs`). Throws `POLICY_DENIED`, `PERMISSION_DENIED` or `BIND_FAILED`.
 */
export function bindTcpListener(
  ctx: DialContext,
  serverHost: string,
  addr: string,
  port: number,
): Deno.TcpListener {
  try {
    return observeClose(ctx.observer, "listener", bindVetted(ctx, serverHost, addr, port));
  } catch (err) {
    ctx.observer?.failed(toWasmnetError(err, "BIND_FAILED").code);
    throw err;
  }
}

function bindVetted(ctx: DialContext, serverHost: string, addr: string, port: number): Deno.TcpListener {
  const target = formatHostPort(addr, port);
  const who = { session: ctx.session, client: ctx.client, op: "bind", target };
  const decision = decideBind(ctx.policy, addr, port, serverHost);
  if (!decision.allowed) {
    ctx.log({ ...who, decision: "deny", rule: decision.rule, reason: decision.reason });
    throw new WasmnetError("POLICY_DENIED", decision.reason);
  }
  const hostname = normaliseAddress(addr) ?? addr;
  const ports = port !== 0 ? [port] : candidatePorts(bindPortCandidates(ctx.policy));
  let last: unknown;
  for (const p of ports) {
    try {
      const listener = Deno.listen({ hostname, port: p, transport: "tcp" });
      ctx.log({
        ...who,
        resolved: [formatHostPort(hostname, listener.addr.port)],
        decision: "allow",
        rule: decision.rule,
      });
      return listener;
    } catch (err) {
      last = err;
      const e = toWasmnetError(err, "BIND_FAILED");
      if (e.code === "PERMISSION_DENIED") {
        ctx.log({ ...who, decision: "deny", rule: "deno --allow-net", reason: e.message });
        throw e;
      }
      if (!(err instanceof Deno.errors.AddrInUse)) break;
    }
  }
  const reason = `cannot bind ${target}: ${(last as Error)?.message ?? "no free port in bind_ports"}`;
  ctx.log({ ...who, decision: "error", rule: decision.rule, reason });
  throw new WasmnetError("BIND_FAILED", reason);
}

/** Accepts until the listener is closed; each connection goes to `onConnection`. */
export async function acceptLoop(
  listener: Deno.TcpListener,
  onConnection: (conn: Deno.TcpConn) => void,
): Promise<void> {
  try {
    for await (const conn of listener) onConnection(conn);
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource) && !(err instanceof Deno.errors.Interrupted)) throw err;
  }
}

function candidatePorts(allowed: number[] | "any"): number[] {
  if (allowed === "any") return [0];
  const pool = [...allowed];
  // Fisher-Yates, then a bounded number of attempts.
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, MAX_BIND_ATTEMPTS);
}
