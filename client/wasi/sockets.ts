/**
 * WASI 0.2 `wasi:sockets` (network, instance-network, tcp, tcp-create-socket, ip-name-lookup) over the
 * socket core, in the shape jco's `WASIShim` accepts as its `sockets` override:
 *
 * ```js
 * import { io } from "@bytecodealliance/preview2-shim";
 * import { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";
 * const shim = new WASIShim({ sockets: createWasiSockets({ client, io }) });
 * const component = await instantiate(getCoreModule, shim.getImportObject());
 * ```
 *
 * Follows the spec's state machine: `start-*` / `finish-*` pairs (`finish-*` throws `would-block` until
 * done, `not-in-progress` without a start), `invalid-state`, pollables from `subscribe`, and sockets' byte
 * streams as the shim's own `input-stream` / `output-stream` (made through the `io` you pass, so jco's
 * resource checks accept them). Blocking calls (`pollable.block`, `blocking-read`,
 * `blocking-write-and-flush`) return promises: transpile with `jco transpile --async-mode jspi`.
 *
 * UDP (`udp`, `udp-create-socket`): bind is recorded (wasmnet binds a UDP socket towards its first
 * destination), `stream(remote)` sets the peer, datagram streams send and receive through the server.
 *
 * Longer than 500 lines: it is the `wasi:sockets` interfaces themselves (network, tcp, tcp-create-socket,
 * ip-name-lookup), each resource's methods written out as the spec's state machine; the socket state is in
 * `core.ts`.
 *
 * @module
 */

import { formatIp, parseIp, type SocketAddress } from "./addr.ts";
import { type CoreClient, SocketCore, type SocketCoreOptions } from "./core.ts";
import { Errno } from "./errno.ts";

/** The factories of the preview2-shim `io` namespace the adapter needs (pass the shim's `io`). */
export interface IoShim {
  /** Makes a `wasi:io/streams` input-stream from a handler. */
  inputStreamCreate(handler: unknown): unknown;
  /** Makes a `wasi:io/streams` output-stream from a handler. */
  outputStreamCreate(handler: unknown): unknown;
  /** Makes a `wasi:io/poll` pollable from `{ ready(), wait() }`. */
  pollableCreate(source: { ready(): boolean; wait(): Promise<unknown> }): unknown;
  /** Makes a `wasi:io/error` error. */
  ioErrorCreate?(message: string): unknown;
}

/** Options of {@link createWasiSockets}. */
export interface WasiSocketsOptions extends SocketCoreOptions {
  /** The wasmnet client the component's sockets go through. */
  client: CoreClient;
  /** The preview2-shim `io` namespace (`import { io } from "@bytecodealliance/preview2-shim"`). */
  io: IoShim;
}

/** `wasi:sockets/network.ip-address` as jco represents it. */
export type IpAddress = { tag: "ipv4"; val: number[] } | { tag: "ipv6"; val: number[] };

/** `wasi:sockets/network.ip-socket-address` as jco represents it. */
export type IpSocketAddress =
  | { tag: "ipv4"; val: { port: number; address: number[] } }
  | { tag: "ipv6"; val: { port: number; flowInfo: number; address: number[]; scopeId: number } };

/** `wasi:sockets/network.error-code` for an errno from the core. */
export function errorCodeFor(errno: number): string {
  switch (errno) {
    case Errno.ACCES:
    case Errno.PERM:
      return "access-denied";
    case Errno.CONNREFUSED:
      return "connection-refused";
    case Errno.CONNRESET:
    case Errno.PIPE:
      return "connection-reset";
    case Errno.CONNABORTED:
      return "connection-aborted";
    case Errno.TIMEDOUT:
      return "timeout";
    case Errno.ADDRINUSE:
      return "address-in-use";
    case Errno.ADDRNOTAVAIL:
      return "address-not-bindable";
    case Errno.HOSTUNREACH:
    case Errno.NETUNREACH:
    case Errno.NETDOWN:
      return "remote-unreachable";
    case Errno.MFILE:
      return "new-socket-limit";
    case Errno.NOBUFS:
      return "out-of-memory";
    case Errno.NOTSUP:
    case Errno.AFNOSUPPORT:
      return "not-supported";
    case Errno.INVAL:
      return "invalid-argument";
    case Errno.AGAIN:
      return "would-block";
    case Errno.NOENT:
      return "name-unresolvable";
    default:
      return "unknown";
  }
}

/** Converts jco's `ip-socket-address` to the core's form; throws `invalid-argument` when malformed. */
export function fromIpSocketAddress(a: IpSocketAddress): SocketAddress {
  if (a?.tag === "ipv4" && a.val.address?.length === 4) {
    return { family: 4, address: a.val.address.join("."), port: a.val.port };
  }
  if (a?.tag === "ipv6" && a.val.address?.length === 8) {
    const bytes = new Uint8Array(16);
    a.val.address.forEach((w, i) => {
      bytes[2 * i] = w >> 8;
      bytes[2 * i + 1] = w & 0xff;
    });
    return { family: 6, address: formatIp(bytes), port: a.val.port };
  }
  throw "invalid-argument";
}

/** Converts an IP text to jco's `ip-address`. */
export function toIpAddress(text: string): IpAddress {
  const ip = parseIp(text);
  if (!ip) throw "invalid-argument";
  if (ip.family === 4) return { tag: "ipv4", val: Array.from(ip.bytes) };
  const words = [];
  for (let i = 0; i < 8; i++) words.push((ip.bytes[2 * i] << 8) | ip.bytes[2 * i + 1]);
  return { tag: "ipv6", val: words };
}

/** Converts the core's address to jco's `ip-socket-address`. */
export function toIpSocketAddress(a: SocketAddress): IpSocketAddress {
  const ip = toIpAddress(a.address);
  if (ip.tag === "ipv4") return { tag: "ipv4", val: { port: a.port, address: ip.val } };
  return { tag: "ipv6", val: { port: a.port, flowInfo: 0, address: ip.val, scopeId: 0 } };
}

type TcpState =
  | "unbound"
  | "bind-started"
  | "bound"
  | "listen-started"
  | "listening"
  | "connect-started"
  | "connected"
  | "closed";

/** The `wasi:sockets` namespaces for `new WASIShim({ sockets })`. */
export interface WasiSockets {
  /** `wasi:sockets/network`. */
  network: { Network: unknown; networkErrorCode(error: unknown): string | undefined };
  /** `wasi:sockets/instance-network`. */
  instanceNetwork: { instanceNetwork(): unknown };
  /** `wasi:sockets/tcp`. */
  tcp: { TcpSocket: unknown };
  /** `wasi:sockets/tcp-create-socket`. */
  tcpCreateSocket: { createTcpSocket(family: "ipv4" | "ipv6"): unknown };
  /** `wasi:sockets/ip-name-lookup`. */
  ipNameLookup: { ResolveAddressStream: unknown; resolveAddresses(network: unknown, name: string): unknown };
  /** `wasi:sockets/udp`. */
  udp: { UdpSocket: unknown; IncomingDatagramStream: unknown; OutgoingDatagramStream: unknown };
  /** `wasi:sockets/udp-create-socket`. */
  udpCreateSocket: { createUdpSocket(family: "ipv4" | "ipv6"): unknown };
  /** The core under these sockets (to close everything when the component is done). */
  core: SocketCore;
}

const symbolDispose: symbol = (Symbol as unknown as { dispose?: symbol }).dispose ?? Symbol.for("dispose");

/** Builds the `wasi:sockets` namespaces over `client`. */
export function createWasiSockets(options: WasiSocketsOptions): WasiSockets {
  const core = new SocketCore(options.client, options);
  const io = options.io;
  const ioError = (errno: number) => {
    const message = `wasmnet: ${errorCodeFor(errno)} (errno ${errno})`;
    return io.ioErrorCreate ? io.ioErrorCreate(message) : new Error(message);
  };
  const failed = (errno: number) => ({ tag: "last-operation-failed", val: ioError(errno) });

  class Network {}
  const theNetwork = new Network();
  const checkNetwork = (n: unknown) => {
    if (!(n instanceof Network)) throw "invalid-argument";
  };

  const readiness = (handle: number, interest: "read" | "write") =>
    io.pollableCreate({
      ready: () => core.ready([{ handle, interest }]).length > 0,
      wait: () => core.poll([{ handle, interest }], null),
    });

  function streams(handle: number): [unknown, unknown] {
    const recv = (len: bigint, wait: boolean) => {
      const n = Number(len > 0x100000n ? 0x100000n : len);
      const handleResult = (r: { errno: number; data?: Uint8Array }) => {
        if (r.errno === Errno.AGAIN) return new Uint8Array(0);
        if (r.errno === Errno.BADF) throw { tag: "closed" };
        if (r.errno) throw failed(r.errno);
        if (r.data!.length === 0 && n > 0) throw { tag: "closed" };
        return r.data!;
      };
      const r = core.recv(handle, n, false, wait);
      return r instanceof Promise ? r.then(handleResult) : handleResult(r);
    };
    const send = (buf: Uint8Array, wait: boolean) => {
      const handleResult = (r: { errno: number }) => {
        if (r.errno === Errno.BADF) throw { tag: "closed" };
        if (r.errno) throw failed(r.errno);
      };
      const r = core.send(handle, buf, wait);
      return r instanceof Promise ? r.then(handleResult) : handleResult(r);
    };
    const input = io.inputStreamCreate({
      read: (len: bigint) => recv(len, false),
      blockingRead: (len: bigint) => recv(len, true),
      subscribe: () => readiness(handle, "read"),
      drop: () => {},
    });
    const output = io.outputStreamCreate({
      checkWrite: () => {
        const ready = core.ready([{ handle, interest: "write" }]);
        if (ready.length && ready[0].errno) throw failed(ready[0].errno);
        if (core.state(handle) === undefined) throw { tag: "closed" };
        return ready.length ? 65536n : 0n;
      },
      write: (buf: Uint8Array) => send(buf, false),
      blockingWriteAndFlush: (buf: Uint8Array) => send(buf, true),
      flush: () => {},
      blockingFlush: () => {},
      subscribe: () => readiness(handle, "write"),
      drop: () => {},
    });
    return [input, output];
  }

  class TcpSocket {
    #handle: number;
    #family: 4 | 6;
    #state: TcpState = "unbound";
    #pending?: Promise<number>;
    #pendingResult?: number;
    #backlog = 128;
    #opts = {
      keepAlive: false,
      keepAliveIdle: 7_200_000_000_000n,
      keepAliveInterval: 75_000_000_000n,
      keepAliveCount: 9,
      hopLimit: 64,
      receiveBufferSize: 65536n,
      sendBufferSize: 65536n,
    };

    constructor(handle: number, family: 4 | 6, state: TcpState = "unbound") {
      this.#handle = handle;
      this.#family = family;
      this.#state = state;
    }

    #expect(...states: TcpState[]): void {
      if (!states.includes(this.#state)) throw "invalid-state";
    }

    #track(p: Promise<number> | number): void {
      this.#pendingResult = undefined;
      if (typeof p === "number") {
        this.#pendingResult = p;
        this.#pending = Promise.resolve(p);
        return;
      }
      this.#pending = p;
      p.then((r) => this.#pendingResult = r);
    }

    startBind(network: unknown, localAddress: IpSocketAddress): void {
      checkNetwork(network);
      this.#expect("unbound");
      const a = fromIpSocketAddress(localAddress);
      if (a.family !== this.#family) throw "invalid-argument";
      const errno = core.bind(this.#handle, a.address, a.port);
      if (errno) throw errorCodeFor(errno);
      this.#state = "bind-started";
    }

    finishBind(): void {
      if (this.#state !== "bind-started") throw "not-in-progress";
      this.#state = "bound";
    }

    startConnect(network: unknown, remoteAddress: IpSocketAddress): void {
      checkNetwork(network);
      this.#expect("unbound", "bound");
      const a = fromIpSocketAddress(remoteAddress);
      if (a.family !== this.#family) throw "invalid-argument";
      if (a.port === 0 || a.address === "0.0.0.0" || a.address === "::") throw "invalid-argument";
      const r = core.connect(this.#handle, a.address, a.port, true);
      this.#track(r);
      this.#state = "connect-started";
    }

    finishConnect(): [unknown, unknown] {
      if (this.#state !== "connect-started") throw "not-in-progress";
      if (this.#pendingResult === undefined) throw "would-block";
      const errno = this.#pendingResult;
      this.#pending = undefined;
      if (errno) {
        this.#state = "closed";
        throw errorCodeFor(errno);
      }
      this.#state = "connected";
      return streams(this.#handle);
    }

    startListen(): void {
      this.#expect("bound");
      this.#track(core.listen(this.#handle, this.#backlog));
      this.#state = "listen-started";
    }

    finishListen(): void {
      if (this.#state !== "listen-started") throw "not-in-progress";
      if (this.#pendingResult === undefined) throw "would-block";
      const errno = this.#pendingResult;
      this.#pending = undefined;
      if (errno) {
        this.#state = "bound";
        throw errorCodeFor(errno);
      }
      this.#state = "listening";
    }

    accept(): [TcpSocket, unknown, unknown] {
      this.#expect("listening");
      const r = core.acceptNow(this.#handle);
      if (r.errno) throw errorCodeFor(r.errno);
      const child = new TcpSocket(r.handle!, r.peer!.family, "connected");
      const [input, output] = streams(r.handle!);
      return [child, input, output];
    }

    localAddress(): IpSocketAddress {
      if (this.#state === "unbound" || this.#state === "bind-started" || this.#state === "closed") {
        throw "invalid-state";
      }
      const r = core.localAddress(this.#handle);
      if (r.errno) throw errorCodeFor(r.errno);
      return toIpSocketAddress(r.addr!);
    }

    remoteAddress(): IpSocketAddress {
      this.#expect("connected");
      const r = core.peerAddress(this.#handle);
      if (r.errno) throw errorCodeFor(r.errno);
      return toIpSocketAddress(r.addr!);
    }

    isListening(): boolean {
      return this.#state === "listening";
    }

    addressFamily(): "ipv4" | "ipv6" {
      return this.#family === 4 ? "ipv4" : "ipv6";
    }

    setListenBacklogSize(value: bigint): void {
      if (value === 0n) throw "invalid-argument";
      if (this.#state === "listen-started" || this.#state === "connect-started") throw "invalid-state";
      if (this.#state === "connected") throw "invalid-state";
      this.#backlog = Number(value > 1024n ? 1024n : value);
    }

    keepAliveEnabled(): boolean {
      return this.#opts.keepAlive;
    }
    setKeepAliveEnabled(value: boolean): void {
      this.#opts.keepAlive = value;
    }
    keepAliveIdleTime(): bigint {
      return this.#opts.keepAliveIdle;
    }
    setKeepAliveIdleTime(value: bigint): void {
      if (value <= 0n) throw "invalid-argument";
      this.#opts.keepAliveIdle = value;
    }
    keepAliveInterval(): bigint {
      return this.#opts.keepAliveInterval;
    }
    setKeepAliveInterval(value: bigint): void {
      if (value <= 0n) throw "invalid-argument";
      this.#opts.keepAliveInterval = value;
    }
    keepAliveCount(): number {
      return this.#opts.keepAliveCount;
    }
    setKeepAliveCount(value: number): void {
      if (value <= 0) throw "invalid-argument";
      this.#opts.keepAliveCount = value;
    }
    hopLimit(): number {
      return this.#opts.hopLimit;
    }
    setHopLimit(value: number): void {
      if (value <= 0) throw "invalid-argument";
      this.#opts.hopLimit = value;
    }
    receiveBufferSize(): bigint {
      return this.#opts.receiveBufferSize;
    }
    setReceiveBufferSize(value: bigint): void {
      if (value <= 0n) throw "invalid-argument";
      this.#opts.receiveBufferSize = value;
    }
    sendBufferSize(): bigint {
      return this.#opts.sendBufferSize;
    }
    setSendBufferSize(value: bigint): void {
      if (value <= 0n) throw "invalid-argument";
      this.#opts.sendBufferSize = value;
    }

    /** Ready when a started operation has finished, or (listening) a connection waits, else at once. */
    subscribe(): unknown {
      if (this.#state === "listening") return readiness(this.#handle, "read");
      if ((this.#state === "connect-started" || this.#state === "listen-started") && this.#pending) {
        const pending = this.#pending;
        return io.pollableCreate({ ready: () => this.#pendingResult !== undefined, wait: () => pending });
      }
      return io.pollableCreate({ ready: () => true, wait: () => Promise.resolve() });
    }

    shutdown(how: "receive" | "send" | "both"): void {
      this.#expect("connected");
      const errno = core.shutdown(this.#handle, how === "receive" ? 1 : how === "send" ? 2 : 3);
      if (errno) throw errorCodeFor(errno);
    }

    [symbolDispose](): void {
      core.close(this.#handle);
      this.#state = "closed";
    }
  }

  const createTcpSocket = (family: "ipv4" | "ipv6") => {
    if (family !== "ipv4" && family !== "ipv6") throw "not-supported";
    const r = core.open(family === "ipv4" ? 4 : 6);
    if (r.errno) throw errorCodeFor(r.errno);
    const sock = new TcpSocket(r.handle!, family === "ipv4" ? 4 : 6);
    return sock;
  };

  class ResolveAddressStream {
    #addrs?: string[];
    #error?: string;
    #wait: Promise<void>;
    constructor(name: string) {
      this.#wait = core.resolve(name).then((r) => {
        if (r.errno) this.#error = r.errno === Errno.NOTSUP ? "name-unresolvable" : errorCodeFor(r.errno);
        else this.#addrs = [...r.addrs!];
      });
    }
    resolveNextAddress(): IpAddress | undefined {
      if (this.#error) {
        const e = this.#error;
        this.#error = undefined;
        this.#addrs = [];
        throw e;
      }
      if (!this.#addrs) throw "would-block";
      const next = this.#addrs.shift();
      return next === undefined ? undefined : toIpAddress(next);
    }
    subscribe(): unknown {
      const done = () => this.#addrs !== undefined || this.#error !== undefined;
      return io.pollableCreate({ ready: done, wait: () => this.#wait });
    }
    [symbolDispose](): void {}
  }

  class IncomingDatagramStream {
    #handle: number;
    #remote?: SocketAddress;
    constructor(handle: number, remote?: SocketAddress) {
      this.#handle = handle;
      this.#remote = remote;
    }
    receive(maxResults: bigint): { data: Uint8Array; remoteAddress: IpSocketAddress }[] {
      const out = [];
      while (BigInt(out.length) < maxResults) {
        const r = core.recvFrom(this.#handle, 65535, false, false) as {
          errno: number;
          data?: Uint8Array;
          from?: SocketAddress;
        };
        if (r.errno === Errno.AGAIN) break;
        if (r.errno) {
          if (out.length) break;
          throw errorCodeFor(r.errno);
        }
        const from = r.from!;
        if (this.#remote && (from.address !== this.#remote.address || from.port !== this.#remote.port)) {
          continue;
        }
        out.push({ data: r.data!, remoteAddress: toIpSocketAddress(from) });
      }
      return out;
    }
    subscribe(): unknown {
      return readiness(this.#handle, "read");
    }
    [symbolDispose](): void {}
  }

  class OutgoingDatagramStream {
    #handle: number;
    #remote?: SocketAddress;
    constructor(handle: number, remote?: SocketAddress) {
      this.#handle = handle;
      this.#remote = remote;
    }
    checkSend(): bigint {
      const ready = core.ready([{ handle: this.#handle, interest: "write" }]);
      if (ready.length && ready[0].errno) throw errorCodeFor(ready[0].errno);
      return 64n;
    }
    send(datagrams: { data: Uint8Array; remoteAddress?: IpSocketAddress }[]): bigint {
      let sent = 0n;
      for (const d of datagrams) {
        let to: SocketAddress | undefined = this.#remote;
        if (d.remoteAddress !== undefined) {
          const a = fromIpSocketAddress(d.remoteAddress);
          if (this.#remote && (a.address !== this.#remote.address || a.port !== this.#remote.port)) {
            if (sent) break;
            throw "invalid-argument";
          }
          to = a;
        }
        if (!to) {
          if (sent) break;
          throw "invalid-argument";
        }
        const r = core.sendTo(this.#handle, d.data, to.address, to.port, false) as { errno: number };
        if (r.errno) {
          if (sent) break;
          throw errorCodeFor(r.errno);
        }
        sent++;
      }
      return sent;
    }
    subscribe(): unknown {
      return readiness(this.#handle, "write");
    }
    [symbolDispose](): void {}
  }

  class UdpSocket {
    #handle: number;
    #family: 4 | 6;
    #state: "unbound" | "bind-started" | "bound" = "unbound";
    #remote?: SocketAddress;
    #hopLimit = 64;
    #recvBuf = 65536n;
    #sendBuf = 65536n;
    constructor(handle: number, family: 4 | 6) {
      this.#handle = handle;
      this.#family = family;
    }
    startBind(network: unknown, localAddress: IpSocketAddress): void {
      checkNetwork(network);
      if (this.#state !== "unbound") throw "invalid-state";
      const a = fromIpSocketAddress(localAddress);
      if (a.family !== this.#family) throw "invalid-argument";
      const errno = core.bind(this.#handle, a.address, a.port);
      if (errno) throw errorCodeFor(errno);
      this.#state = "bind-started";
    }
    finishBind(): void {
      if (this.#state !== "bind-started") throw "not-in-progress";
      this.#state = "bound";
    }
    stream(remoteAddress?: IpSocketAddress): [IncomingDatagramStream, OutgoingDatagramStream] {
      if (this.#state !== "bound") throw "invalid-state";
      let remote: SocketAddress | undefined;
      if (remoteAddress !== undefined) {
        remote = fromIpSocketAddress(remoteAddress);
        if (remote.family !== this.#family) throw "invalid-argument";
        if (remote.port === 0 || remote.address === "0.0.0.0" || remote.address === "::") {
          throw "invalid-argument";
        }
      }
      const errno = core.setUdpPeer(this.#handle, remote?.address ?? null, remote?.port ?? 0);
      if (errno) throw errorCodeFor(errno);
      this.#remote = remote;
      return [
        new IncomingDatagramStream(this.#handle, remote),
        new OutgoingDatagramStream(this.#handle, remote),
      ];
    }
    localAddress(): IpSocketAddress {
      if (this.#state !== "bound") throw "invalid-state";
      const r = core.localAddress(this.#handle);
      if (r.errno) throw errorCodeFor(r.errno);
      return toIpSocketAddress(r.addr!);
    }
    remoteAddress(): IpSocketAddress {
      if (!this.#remote) throw "invalid-state";
      return toIpSocketAddress(this.#remote);
    }
    addressFamily(): "ipv4" | "ipv6" {
      return this.#family === 4 ? "ipv4" : "ipv6";
    }
    unicastHopLimit(): number {
      return this.#hopLimit;
    }
    setUnicastHopLimit(value: number): void {
      if (value <= 0) throw "invalid-argument";
      this.#hopLimit = value;
    }
    receiveBufferSize(): bigint {
      return this.#recvBuf;
    }
    setReceiveBufferSize(value: bigint): void {
      if (value <= 0n) throw "invalid-argument";
      this.#recvBuf = value;
    }
    sendBufferSize(): bigint {
      return this.#sendBuf;
    }
    setSendBufferSize(value: bigint): void {
      if (value <= 0n) throw "invalid-argument";
      this.#sendBuf = value;
    }
    subscribe(): unknown {
      return io.pollableCreate({ ready: () => true, wait: () => Promise.resolve() });
    }
    [symbolDispose](): void {
      core.close(this.#handle);
    }
  }

  const createUdpSocket = (family: "ipv4" | "ipv6") => {
    if (family !== "ipv4" && family !== "ipv6") throw "not-supported";
    const r = core.open(family === "ipv4" ? 4 : 6, "dgram");
    if (r.errno) throw errorCodeFor(r.errno);
    return new UdpSocket(r.handle!, family === "ipv4" ? 4 : 6);
  };

  return {
    network: { Network, networkErrorCode: () => undefined },
    instanceNetwork: { instanceNetwork: () => theNetwork },
    tcp: { TcpSocket },
    tcpCreateSocket: { createTcpSocket },
    ipNameLookup: {
      ResolveAddressStream,
      resolveAddresses: (network: unknown, name: string) => {
        checkNetwork(network);
        if (!name || name.length > 255 || /[\s/]/.test(name)) throw "invalid-argument";
        return new ResolveAddressStream(name);
      },
    },
    udp: { UdpSocket, IncomingDatagramStream, OutgoingDatagramStream },
    udpCreateSocket: { createUdpSocket },
    core,
  };
}
