/**
 * The WASIX (`wasix_32v1`) socket imports plus preview 1's `sock_*`, `fd_read`/`fd_write` on sockets and a
 * `poll_oneoff` that understands sockets, as an import object that sits beside `@bjorn3/browser_wasi_shim`:
 * socket fds live in the shim's fd table as {@link SocketFd}s, so `fd_close`, `fd_fdstat_get` and
 * `fd_fdstat_set_flags` work through the shim itself.
 *
 * Each import is written once as a generator that yields calls on the socket core; a driver runs it either
 * against a local core (returning a promise when a call waits — wrap the imports with
 * `WebAssembly.Suspending`, see `jspi.ts`) or against a synchronous bridge to a core on another thread
 * (`worker.ts`, Atomics).
 *
 * Longer than 500 lines: it is the import table itself, one generator per WASIX/preview 1 socket import
 * (each written once for both drivers); the socket state is in `core.ts`.
 *
 * @module
 */

import { Fd, type WASI, wasi as defs } from "./shim.ts";
import { readAddrPort, type SocketAddress, writeAddr, writeAddrPort } from "./addr.ts";
import type { PollInterest, PollReady, SocketCore } from "./core.ts";
import { Errno } from "./errno.ts";

/** The core operations the ABI layer calls; each may answer now or with a promise. */
export type CoreOp =
  | "open"
  | "bind"
  | "listen"
  | "connect"
  | "accept"
  | "recv"
  | "send"
  | "shutdown"
  | "close"
  | "localAddress"
  | "peerAddress"
  | "status"
  | "setOption"
  | "getOption"
  | "takeError"
  | "resolve"
  | "poll"
  | "sleep"
  | "state"
  | "sendTo"
  | "recvFrom";

/** Runs one core operation: locally (may return a promise) or through a bridge (always synchronous). */
export type Executor = (op: CoreOp, args: unknown[]) => unknown;

/** An executor calling `core` directly, for JSPI or for tests. */
export function localExecutor(core: SocketCore): Executor {
  return (op, args) => (core[op] as (...a: unknown[]) => unknown).apply(core, args);
}

// deno-lint-ignore no-explicit-any
type Call = Generator<[CoreOp, unknown[]], number, any>;

/**
 * Runs an import body: synchronously while every call answers at once, then asynchronously from the first
 * call that returns a promise (so a JSPI `Suspending` import only suspends when it must).
 */
export function drive(body: Call, exec: Executor): number | Promise<number> {
  let step = body.next();
  while (!step.done) {
    const result = exec(step.value[0], step.value[1]);
    if (result instanceof Promise) return result.then((value) => finish(body, value, exec));
    step = body.next(result);
  }
  return step.value;
}

async function finish(body: Call, value: unknown, exec: Executor): Promise<number> {
  let step = body.next(value);
  while (!step.done) step = body.next(await exec(step.value[0], step.value[1]));
  return step.value;
}

/** The WASI fd flag meaning non-blocking. */
const FDFLAGS_NONBLOCK = 4;
const FILETYPE_SOCKET_DGRAM = 5;
const FILETYPE_SOCKET_STREAM = 6;

/**
 * A socket in the shim's fd table: it carries the core handle and the fd flags; the shim's own
 * `fd_fdstat_get`, `fd_fdstat_set_flags` and `fd_close` work on it. `fd_read`/`fd_write` here serve only
 * callers that bypass the imports from {@link createWasixImports}: they work when the core answers at once
 * (the Worker bridge) and give AGAIN otherwise.
 */
export class SocketFd extends Fd {
  /** Handle in the socket core. */
  readonly handle: number;
  /** WASI fdflags (NONBLOCK = 4). */
  flags: number;
  /** TCP (`"stream"`) or UDP (`"dgram"`). */
  readonly type: "stream" | "dgram";
  readonly #exec: Executor;

  /** Wraps core socket `handle`. */
  constructor(handle: number, flags: number, exec: Executor, type: "stream" | "dgram" = "stream") {
    super();
    this.handle = handle;
    this.flags = flags;
    this.type = type;
    this.#exec = exec;
  }

  /** True when calls on this fd must not wait. */
  get nonblocking(): boolean {
    return (this.flags & FDFLAGS_NONBLOCK) !== 0;
  }

  override fd_fdstat_get(): { ret: number; fdstat: InstanceType<typeof defs.Fdstat> | null } {
    const stat = new defs.Fdstat(
      this.type === "dgram" ? FILETYPE_SOCKET_DGRAM : FILETYPE_SOCKET_STREAM,
      this.flags,
    );
    stat.fs_rights_base = 0x1fffffffn;
    return { ret: 0, fdstat: stat };
  }

  override fd_fdstat_set_flags(flags: number): number {
    this.flags = flags;
    return 0;
  }

  override fd_close(): number {
    const r = this.#exec("close", [this.handle]);
    return typeof r === "number" ? r : 0;
  }

  override fd_read(size: number): { ret: number; data: Uint8Array } {
    const r = this.#exec("recv", [this.handle, size, false, !this.nonblocking]);
    if (r instanceof Promise) return { ret: Errno.AGAIN, data: new Uint8Array() };
    const { errno, data } = r as { errno: number; data?: Uint8Array };
    return { ret: errno, data: data ?? new Uint8Array() };
  }

  override fd_write(data: Uint8Array): { ret: number; nwritten: number } {
    const r = this.#exec("send", [this.handle, data, !this.nonblocking]);
    if (r instanceof Promise) return { ret: Errno.AGAIN, nwritten: 0 };
    const { errno, n } = r as { errno: number; n?: number };
    return { ret: errno, nwritten: n ?? 0 };
  }
}

/** Options of {@link createWasixImports}. */
export interface WasixImportOptions {
  /** The shim instance whose fd table holds the sockets; its `inst.exports.memory` is the program's memory. */
  wasi: WASI;
  /** Runs core operations: {@link localExecutor} for JSPI, the Worker bridge's `call` for Atomics. */
  exec: Executor;
  /** Largest read or write handed to the executor at once (the Worker bridge's buffer). Default 1 MiB. */
  maxTransfer?: number;
}

/** The functions of one import module. */
export type ImportFunctions = Record<string, (...args: never[]) => number | Promise<number>>;

/** What {@link createWasixImports} returns: the two modules, with the shim's own imports merged in. */
export interface WasixImports {
  /** `wasix_32v1`: the WASIX socket calls. */
  wasix_32v1: ImportFunctions;
  /** `wasi_snapshot_preview1`: the shim's imports with sockets added to fd_read/fd_write/poll_oneoff/sock_*. */
  wasi_snapshot_preview1: ImportFunctions;
  /** Names of the functions that may return a promise (to wrap with `WebAssembly.Suspending`). */
  asyncNames: { wasix_32v1: string[]; wasi_snapshot_preview1: string[] };
}

const RIFLAGS_PEEK = 1;
const RIFLAGS_WAITALL = 2;
const ROFLAGS_TRUNCATED = 1;
const EVENTTYPE_CLOCK = 0;
const EVENTTYPE_FD_READ = 1;
const EVENTTYPE_FD_WRITE = 2;
const SUBSCRIPTION_SIZE = 48;
const EVENT_SIZE = 32;
const SUBCLOCKFLAGS_ABSTIME = 1;
const CLOCK_REALTIME = 0;

/** WASIX `sock_option` numbers. */
export const SockOption = {
  NOOP: 0,
  REUSE_PORT: 1,
  REUSE_ADDR: 2,
  NO_DELAY: 3,
  DONT_ROUTE: 4,
  ONLY_V6: 5,
  BROADCAST: 6,
  MULTICAST_LOOP_V4: 7,
  MULTICAST_LOOP_V6: 8,
  PROMISCUOUS: 9,
  LISTENING: 10,
  LAST_ERROR: 11,
  KEEP_ALIVE: 12,
  LINGER: 13,
  OOB_INLINE: 14,
  RECV_BUF_SIZE: 15,
  SEND_BUF_SIZE: 16,
  RECV_LOWAT: 17,
  SEND_LOWAT: 18,
  RECV_TIMEOUT: 19,
  SEND_TIMEOUT: 20,
  CONNECT_TIMEOUT: 21,
  ACCEPT_TIMEOUT: 22,
  TTL: 23,
  MULTICAST_TTL_V4: 24,
  TYPE: 25,
  PROTO: 26,
} as const;

/**
 * Builds the socket imports for a program run with `wasi` (a `@bjorn3/browser_wasi_shim` instance).
 * Instantiate with `{ wasix_32v1, wasi_snapshot_preview1 }`, after wrapping `asyncNames` with
 * `WebAssembly.Suspending` when `exec` can return promises.
 */
export function createWasixImports(options: WasixImportOptions): WasixImports {
  const { wasi, exec } = options;
  const maxTransfer = options.maxTransfer ?? 1024 * 1024;
  const base = wasi.wasiImport as Record<string, (...args: unknown[]) => unknown>;
  const view = () => new DataView(wasi.inst.exports.memory.buffer);
  const bytes = () => new Uint8Array(wasi.inst.exports.memory.buffer);
  const sock = (fd: number): SocketFd | undefined => {
    const f = wasi.fds[fd];
    return f instanceof SocketFd ? f : undefined;
  };
  const notSock = (fd: number) => (wasi.fds[fd] === undefined ? Errno.BADF : Errno.NOTSOCK);
  const addFd = (f: SocketFd): number => {
    for (let i = 3; i < wasi.fds.length; i++) {
      if (wasi.fds[i] === undefined) {
        wasi.fds[i] = f;
        return i;
      }
    }
    wasi.fds.push(f);
    return wasi.fds.length - 1;
  };
  const readIovs = (ptr: number, len: number): { buf: number; len: number }[] => {
    const v = view();
    const out = [];
    for (let i = 0; i < len; i++) {
      out.push({ buf: v.getUint32(ptr + 8 * i, true), len: v.getUint32(ptr + 8 * i + 4, true) });
    }
    return out;
  };
  const run = (body: Call) => drive(body, exec);

  function* recvInto(s: SocketFd, iovsPtr: number, iovsLen: number, flags: number, outLen: number): Call {
    const iovs = readIovs(iovsPtr, iovsLen);
    const total = Math.min(iovs.reduce((n, v) => n + v.len, 0), 0x7fffffff);
    const waitAll = (flags & RIFLAGS_WAITALL) !== 0 && !s.nonblocking;
    let got = 0;
    let errno = 0;
    do {
      const want = Math.min(total - got, maxTransfer);
      const r: { errno: number; data?: Uint8Array } = yield [
        "recv",
        [s.handle, want, (flags & RIFLAGS_PEEK) !== 0, !s.nonblocking],
      ];
      if (r.errno) {
        errno = r.errno;
        break;
      }
      const data = r.data!;
      if (data.length === 0) break;
      let off = 0;
      let skip = got;
      const mem = bytes();
      for (const iov of iovs) {
        if (off >= data.length) break;
        if (skip >= iov.len) {
          skip -= iov.len;
          continue;
        }
        const n = Math.min(iov.len - skip, data.length - off);
        mem.set(data.subarray(off, off + n), iov.buf + skip);
        off += n;
        skip = 0;
      }
      got += data.length;
    } while (waitAll && got < total);
    if (errno && got === 0) return errno;
    view().setUint32(outLen, got, true);
    return 0;
  }

  /** One datagram into the iovecs; writes its length, the truncation flag and (when asked) the source. */
  function* recvDatagram(
    s: SocketFd,
    iovsPtr: number,
    iovsLen: number,
    flags: number,
    outLen: number,
    outFlags: number | null,
    outAddr: number | null,
  ): Call {
    const iovs = readIovs(iovsPtr, iovsLen);
    const total = Math.min(iovs.reduce((n, v) => n + v.len, 0), maxTransfer);
    const r: { errno: number; data?: Uint8Array; from?: SocketAddress; truncated?: boolean } = yield [
      "recvFrom",
      [s.handle, total, (flags & RIFLAGS_PEEK) !== 0, !s.nonblocking],
    ];
    if (r.errno) return r.errno;
    const data = r.data!;
    const mem = bytes();
    let off = 0;
    for (const iov of iovs) {
      if (off >= data.length) break;
      const n = Math.min(iov.len, data.length - off);
      mem.set(data.subarray(off, off + n), iov.buf);
      off += n;
    }
    const v = view();
    v.setUint32(outLen, data.length, true);
    if (outFlags !== null) v.setUint16(outFlags, r.truncated ? ROFLAGS_TRUNCATED : 0, true);
    if (outAddr !== null && r.from) writeAddrPort(v, outAddr, r.from);
    return 0;
  }

  function* sendFrom(s: SocketFd, iovsPtr: number, iovsLen: number, outLen: number): Call {
    const iovs = readIovs(iovsPtr, iovsLen);
    const total = iovs.reduce((n, v) => n + v.len, 0);
    const data = new Uint8Array(total);
    let off = 0;
    const mem = bytes();
    for (const iov of iovs) {
      data.set(mem.subarray(iov.buf, iov.buf + iov.len), off);
      off += iov.len;
    }
    let sent = 0;
    while (sent < total || total === 0) {
      const r: { errno: number; n?: number } = yield [
        "send",
        [s.handle, data.subarray(sent, sent + Math.min(total - sent, maxTransfer)), !s.nonblocking],
      ];
      if (r.errno) {
        if (sent === 0) return r.errno;
        break;
      }
      sent += r.n!;
      if (total === 0) break;
    }
    view().setUint32(outLen, sent, true);
    return 0;
  }

  function* accept(fd: number, flags: number, outFd: number, outAddr: number | null): Call {
    const s = sock(fd);
    if (!s) return notSock(fd);
    const r: { errno: number; handle?: number; peer?: SocketAddress } = yield ["accept", [
      s.handle,
      !s.nonblocking,
    ]];
    if (r.errno) return r.errno;
    const child = addFd(new SocketFd(r.handle!, flags & FDFLAGS_NONBLOCK, exec));
    const v = view();
    v.setUint32(outFd, child, true);
    if (outAddr !== null) writeAddrPort(v, outAddr, r.peer!);
    return 0;
  }

  function* shutdown(fd: number, how: number): Call {
    const s = sock(fd);
    if (!s) return notSock(fd);
    return yield ["shutdown", [s.handle, how]];
  }

  function* sockRecv(
    fd: number,
    iovs: number,
    iovsLen: number,
    flags: number,
    outLen: number,
    outFlags: number,
  ): Call {
    const s = sock(fd);
    if (!s) return notSock(fd);
    if (s.type === "dgram") return yield* recvDatagram(s, iovs, iovsLen, flags, outLen, outFlags, null);
    const r = yield* recvInto(s, iovs, iovsLen, flags, outLen);
    if (r === 0) view().setUint16(outFlags, 0, true);
    return r;
  }

  function* sockSend(fd: number, iovs: number, iovsLen: number, _flags: number, outLen: number): Call {
    const s = sock(fd);
    if (!s) return notSock(fd);
    return yield* sendFrom(s, iovs, iovsLen, outLen);
  }

  function* pollOneoff(inPtr: number, outPtr: number, nsubs: number, outN: number): Call {
    if (nsubs === 0) return Errno.INVAL;
    const v = view();
    type Sub = { userdata: bigint; type: number; fd?: number; deadline?: number };
    const subs: Sub[] = [];
    const interests: PollInterest[] = [];
    const interestSub: number[] = [];
    const immediate: number[] = [];
    let timeout: number | null = null;
    for (let i = 0; i < nsubs; i++) {
      const p = inPtr + i * SUBSCRIPTION_SIZE;
      const userdata = v.getBigUint64(p, true);
      const type = v.getUint8(p + 8);
      if (type === EVENTTYPE_CLOCK) {
        const clock = v.getUint32(p + 16, true);
        const t = v.getBigUint64(p + 24, true);
        const abs = (v.getUint16(p + 40, true) & SUBCLOCKFLAGS_ABSTIME) !== 0;
        const nowNs = clock === CLOCK_REALTIME
          ? BigInt(Date.now()) * 1_000_000n
          : BigInt(Math.round(performance.now() * 1e6));
        const waitNs = abs ? (t > nowNs ? t - nowNs : 0n) : t;
        const ms = Number(waitNs / 1_000_000n) + (waitNs % 1_000_000n ? 1 : 0);
        subs.push({ userdata, type, deadline: Date.now() + ms });
        timeout = timeout === null ? ms : Math.min(timeout, ms);
      } else if (type === EVENTTYPE_FD_READ || type === EVENTTYPE_FD_WRITE) {
        const fd = v.getUint32(p + 16, true);
        subs.push({ userdata, type, fd });
        const s = sock(fd);
        if (s) {
          interests.push({ handle: s.handle, interest: type === EVENTTYPE_FD_READ ? "read" : "write" });
          interestSub.push(i);
        } else immediate.push(i); // files and stdio are always ready
      } else return Errno.INVAL;
    }
    if (immediate.length) timeout = 0;
    let ready: PollReady[] = [];
    if (interests.length) ready = yield ["poll", [interests, timeout]];
    else if (timeout !== null && timeout > 0) yield ["sleep", [timeout]];
    else if (timeout === null) return Errno.INVAL; // nothing could ever wake it
    const out = view();
    let n = 0;
    const write = (sub: Sub, errno: number, nbytes: number, hup: boolean) => {
      const p = outPtr + n * EVENT_SIZE;
      new Uint8Array(out.buffer, p, EVENT_SIZE).fill(0);
      out.setBigUint64(p, sub.userdata, true);
      out.setUint16(p + 8, errno, true);
      out.setUint8(p + 10, sub.type);
      if (sub.type !== EVENTTYPE_CLOCK) {
        out.setBigUint64(p + 16, BigInt(nbytes), true);
        out.setUint16(p + 24, hup ? 1 : 0, true);
      }
      n++;
    };
    for (const i of immediate) write(subs[i], wasi.fds[subs[i].fd!] === undefined ? Errno.BADF : 0, 0, false);
    for (const r of ready) write(subs[interestSub[r.index]], r.errno, r.nbytes, r.hup);
    if (n === 0) {
      const now = Date.now();
      for (const sub of subs) {
        if (sub.type === EVENTTYPE_CLOCK && sub.deadline! <= now + 1) write(sub, 0, 0, false);
      }
      if (n === 0) { for (const sub of subs) if (sub.type === EVENTTYPE_CLOCK) write(sub, 0, 0, false); }
    }
    out.setUint32(outN, n, true);
    return 0;
  }

  const wasix: Record<string, (...args: number[]) => number | Promise<number>> = {
    sock_open: (af, socktype, proto, outFd) =>
      run((function* (): Call {
        if (af !== 1 && af !== 2) return Errno.AFNOSUPPORT;
        if (socktype !== 1 && socktype !== 2) return Errno.PROTONOSUPPORT;
        const type = socktype === 1 ? "stream" : "dgram";
        if (proto !== 0 && proto !== (type === "stream" ? 6 : 17)) return Errno.PROTONOSUPPORT;
        const r: { errno: number; handle?: number } = yield ["open", [af === 1 ? 4 : 6, type]];
        if (r.errno) return r.errno;
        view().setUint32(outFd, addFd(new SocketFd(r.handle!, 0, exec, type)), true);
        return 0;
      })()),
    sock_bind: (fd, addrPtr) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        const a = readAddrPort(view(), addrPtr);
        if (!a) return Errno.AFNOSUPPORT;
        return yield ["bind", [s.handle, a.address, a.port]];
      })()),
    sock_listen: (fd, backlog) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        return yield ["listen", [s.handle, backlog]];
      })()),
    sock_accept_v2: (fd, flags, outFd, outAddr) => run(accept(fd, flags, outFd, outAddr)),
    sock_accept: (fd, flags, outFd) => run(accept(fd, flags, outFd, null)),
    sock_connect: (fd, addrPtr) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        const a = readAddrPort(view(), addrPtr);
        if (!a) return Errno.AFNOSUPPORT;
        return yield ["connect", [s.handle, a.address, a.port, !s.nonblocking]];
      })()),
    sock_recv: (fd, iovs, iovsLen, flags, outLen, outFlags) =>
      run(sockRecv(fd, iovs, iovsLen, flags, outLen, outFlags)),
    sock_send: (fd, iovs, iovsLen, flags, outLen) => run(sockSend(fd, iovs, iovsLen, flags, outLen)),
    sock_recv_from: (fd, iovs, iovsLen, flags, outLen, outFlags, outAddr) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        if (s.type !== "dgram") {
          const r = yield* sockRecv(fd, iovs, iovsLen, flags, outLen, outFlags);
          if (r === 0) {
            const p: { errno: number; addr?: SocketAddress } = yield ["peerAddress", [s.handle]];
            if (!p.errno) writeAddrPort(view(), outAddr, p.addr!);
          }
          return r;
        }
        return yield* recvDatagram(s, iovs, iovsLen, flags, outLen, outFlags, outAddr);
      })()),
    sock_send_to: (fd, iovs, iovsLen, _flags, addrPtr, outLen) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        if (s.type !== "dgram") return yield* sendFrom(s, iovs, iovsLen, outLen);
        const a = readAddrPort(view(), addrPtr);
        if (!a) return Errno.AFNOSUPPORT;
        const list = readIovs(iovs, iovsLen);
        const data = new Uint8Array(list.reduce((n, v) => n + v.len, 0));
        let off = 0;
        const mem = bytes();
        for (const iov of list) {
          data.set(mem.subarray(iov.buf, iov.buf + iov.len), off);
          off += iov.len;
        }
        if (data.length > maxTransfer) return Errno.MSGSIZE;
        const r: { errno: number; n?: number } = yield ["sendTo", [
          s.handle,
          data,
          a.address,
          a.port,
          !s.nonblocking,
        ]];
        if (r.errno) return r.errno;
        view().setUint32(outLen, r.n!, true);
        return 0;
      })()),
    sock_shutdown: (fd, how) => run(shutdown(fd, how)),
    sock_addr_local: (fd, outAddr) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        const r: { errno: number; addr?: SocketAddress } = yield ["localAddress", [s.handle]];
        if (!r.errno) writeAddrPort(view(), outAddr, r.addr!);
        return r.errno;
      })()),
    sock_addr_peer: (fd, outAddr) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        const r: { errno: number; addr?: SocketAddress } = yield ["peerAddress", [s.handle]];
        if (!r.errno) writeAddrPort(view(), outAddr, r.addr!);
        return r.errno;
      })()),
    sock_status: (fd, out) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        const r: { errno: number; status?: number } = yield ["status", [s.handle]];
        if (!r.errno) view().setUint8(out, r.status!);
        return r.errno;
      })()),
    sock_set_opt_flag: (fd, opt, flag) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        if (opt > SockOption.OOB_INLINE || opt === SockOption.LISTENING || opt === SockOption.LAST_ERROR) {
          return Errno.INVAL;
        }
        return yield ["setOption", [s.handle, opt, flag ? 1 : 0]];
      })()),
    sock_get_opt_flag: (fd, opt, out) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        let value: number;
        if (opt === SockOption.LISTENING) value = (yield ["state", [s.handle]]) === "listening" ? 1 : 0;
        else if (opt > SockOption.OOB_INLINE) return Errno.INVAL;
        else {
          const r: { errno: number; value?: number } = yield ["getOption", [s.handle, opt, 0]];
          if (r.errno) return r.errno;
          value = Number(r.value);
        }
        view().setUint8(out, value ? 1 : 0);
        return 0;
      })()),
    sock_set_opt_size: ((fd: number, opt: number, size: bigint) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        if (opt === SockOption.TYPE || opt === SockOption.PROTO) return Errno.INVAL;
        return yield ["setOption", [s.handle, opt, BigInt(size)]];
      })())) as never,
    sock_get_opt_size: (fd, opt, out) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        let value: bigint;
        if (opt === SockOption.TYPE) value = 1n;
        else if (opt === SockOption.PROTO) value = 6n;
        else if (opt === SockOption.LAST_ERROR) value = BigInt(yield ["takeError", [s.handle]]);
        else {
          const fallback = opt === SockOption.TTL
            ? 64n
            : opt === SockOption.RECV_BUF_SIZE || opt === SockOption.SEND_BUF_SIZE
            ? 65536n
            : 0n;
          const r: { errno: number; value?: bigint } = yield ["getOption", [s.handle, opt, fallback]];
          if (r.errno) return r.errno;
          value = BigInt(r.value!);
        }
        view().setBigUint64(out, value, true);
        return 0;
      })()),
    sock_set_opt_time: (fd, opt, timePtr) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        if (opt < SockOption.RECV_TIMEOUT || opt > SockOption.ACCEPT_TIMEOUT) return Errno.INVAL;
        const v = view();
        const ns = v.getUint8(timePtr) === 1 ? v.getBigUint64(timePtr + 8, true) : 0n;
        return yield ["setOption", [s.handle, opt, ns]];
      })()),
    sock_get_opt_time: (fd, opt, out) =>
      run((function* (): Call {
        const s = sock(fd);
        if (!s) return notSock(fd);
        if (opt < SockOption.RECV_TIMEOUT || opt > SockOption.ACCEPT_TIMEOUT) return Errno.INVAL;
        const r: { errno: number; value?: bigint } = yield ["getOption", [s.handle, opt, 0n]];
        if (r.errno) return r.errno;
        const ns = BigInt(r.value!);
        const v = view();
        v.setUint8(out, ns > 0n ? 1 : 0);
        v.setBigUint64(out + 8, ns, true);
        return 0;
      })()),
    resolve: (hostPtr, hostLen, _port, addrsPtr, naddrs, outN) =>
      run((function* (): Call {
        const host = new TextDecoder().decode(bytes().slice(hostPtr, hostPtr + hostLen));
        const r: { errno: number; addrs?: string[] } = yield ["resolve", [host]];
        if (r.errno) return r.errno;
        const v = view();
        const n = Math.min(naddrs, r.addrs!.length);
        for (let i = 0; i < n; i++) writeAddr(v, addrsPtr + 18 * i, r.addrs![i]);
        v.setUint32(outN, n, true);
        return 0;
      })()),
  };

  const preview1: Record<string, (...args: number[]) => number | Promise<number>> = {
    ...(base as Record<string, (...args: number[]) => number>),
    sock_accept: wasix.sock_accept,
    sock_recv: wasix.sock_recv,
    sock_send: wasix.sock_send,
    sock_shutdown: wasix.sock_shutdown,
    fd_read: (fd, iovs, iovsLen, outLen) => {
      const s = sock(fd);
      if (!s) return base.fd_read(fd, iovs, iovsLen, outLen) as number;
      if (s.type === "dgram") return run(recvDatagram(s, iovs, iovsLen, 0, outLen, null, null));
      return run(recvInto(s, iovs, iovsLen, 0, outLen));
    },
    fd_write: (fd, iovs, iovsLen, outLen) => {
      const s = sock(fd);
      if (!s) return base.fd_write(fd, iovs, iovsLen, outLen) as number;
      return run(sendFrom(s, iovs, iovsLen, outLen));
    },
    poll_oneoff: (inPtr, outPtr, nsubs, outN) => run(pollOneoff(inPtr, outPtr, nsubs, outN)),
  };

  const wasixAsync = Object.keys(wasix);
  return {
    wasix_32v1: wasix,
    wasi_snapshot_preview1: preview1,
    asyncNames: {
      wasix_32v1: wasixAsync,
      wasi_snapshot_preview1: [
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
        "fd_read",
        "fd_write",
        "poll_oneoff",
      ],
    },
  };
}
