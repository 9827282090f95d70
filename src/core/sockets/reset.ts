/**
 * Ending a TCP connection with a reset (RST) instead of a clean end-of-stream (FIN), so a peer whose
 * stream was cut short (shutdown, drain timeout, an error) cannot take it for a complete transfer.
 *
 * Deno has no `SO_LINGER`. Its `node:net` does (`resetAndDestroy`), on a TCP handle that can be opened from
 * a `Deno.TcpConn`'s resource: `openFromRid` duplicates the socket's descriptor, and the handle's `reset()`
 * sets `SO_LINGER` 0 on the socket (an option of the socket, shared by both descriptors) and drops its own
 * descriptor without a shutdown. Closing the `Deno.TcpConn` afterwards sends RST while the kernel still
 * holds unsent bytes, which is when a stream is cut (Deno's close shuts the write side first, so a socket
 * whose bytes were all sent ends with FIN, then RST). The duplicate must be taken while no write is in
 * flight (Deno refuses while one holds the socket), so a stream takes it as soon as it has a backlog.
 *
 * This leans on Deno internals (the connection's `Deno.internal.rid` symbol, `process.binding("tcp_wrap")`),
 * checked on Deno 2.9.6 by `reset_test.ts`; when they are missing, {@link ResetHandle.open} returns null and
 * the connection ends with FIN as before.
 *
 * @module
 */

import process from "node:process";

interface TcpHandle {
  openFromRid(rid: number): number;
  reset(): number;
  close(cb?: () => void): void;
}

type TcpHandleClass = new (type: number) => TcpHandle;

let handleClass: TcpHandleClass | null | undefined;

function tcpHandleClass(): TcpHandleClass | null {
  if (handleClass !== undefined) return handleClass;
  try {
    const binding = (process as unknown as { binding(name: string): { TCP?: TcpHandleClass } }).binding(
      "tcp_wrap",
    );
    handleClass = typeof binding.TCP === "function" ? binding.TCP : null;
  } catch {
    handleClass = null;
  }
  return handleClass;
}

/** The resource id behind a `Deno.TcpConn` (unwrapping the server's metering wrappers), or null. */
function ridOf(conn: Deno.Conn): number | null {
  let inner: unknown = conn;
  for (let i = 0; i < 4 && inner && typeof inner === "object" && "innerConn" in inner; i++) {
    inner = (inner as { innerConn: unknown }).innerConn;
  }
  if (!inner || typeof inner !== "object") return null;
  const symbol = Object.getOwnPropertySymbols(inner).find((s) => s.description === "Deno.internal.rid");
  const rid = symbol && (inner as Record<symbol, unknown>)[symbol];
  return typeof rid === "number" ? rid : null;
}

/** A second handle on a TCP connection's socket that can make its close a reset. */
export class ResetHandle {
  #handle: TcpHandle | null;

  private constructor(handle: TcpHandle) {
    this.#handle = handle;
  }

  /** A handle on `conn`'s socket, or null (not TCP, a write in flight, or the internals are missing). */
  static open(conn: Deno.Conn): ResetHandle | null {
    const Tcp = tcpHandleClass();
    const rid = ridOf(conn);
    if (Tcp === null || rid === null) return null;
    try {
      const handle = new Tcp(0);
      return handle.openFromRid(rid) === 0 ? new ResetHandle(handle) : null;
    } catch {
      return null;
    }
  }

  /** Sets `SO_LINGER` 0 and drops this handle's descriptor: the connection's close will be a reset. */
  reset(): boolean {
    const handle = this.#handle;
    this.#handle = null;
    try {
      return handle !== null && handle.reset() === 0;
    } catch {
      return false;
    }
  }

  /** Drops this handle's descriptor (after the connection itself was closed cleanly). */
  release(): void {
    const handle = this.#handle;
    this.#handle = null;
    try {
      handle?.close();
    } catch {
      // already gone
    }
  }
}
