/**
 * End to end: the real server's `/posix` endpoint, driven by a raw WebSocket client that writes the C
 * structs of Emscripten's POSIX socket proxy by hand (independently of `posix_codec.ts`), against TCP
 * peers on loopback. Fast; the browser run with a real Emscripten build is emscripten_browser_test.ts.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { startServer, startTcpEchoServer, startTcpServer, type TestServer } from "../helpers.ts";

// Function codes, errno (Emscripten 3.1.6 numbering) and musl constants, written out independently.
const SOCKET = 1, SHUTDOWN = 3, BIND = 4, CONNECT = 5, LISTEN = 6, ACCEPT = 7, GETSOCKNAME = 8;
const SEND = 10, RECV = 11, GETSOCKOPT = 16, SETSOCKOPT = 17, GETADDRINFO = 18, SOCKETPAIR = 2;
const EACCES = 2, EAGAIN = 6, EBADF = 8, ECONNREFUSED = 14, EMFILE = 33, EOPNOTSUPP = 138;
const EPROTONOSUPPORT = 66, EAFNOSUPPORT = 5, EISCONN = 30;
const EAI_NONAME = -2, EAI_FAIL = -4;
const SOCK_NONBLOCK = 0o4000, MSG_PEEK = 2;

interface Reply {
  callId: number;
  ret: number;
  errno: number;
  bytes: Uint8Array;
}

/** A raw client for the proxy protocol: each call is one message, each answer is matched by call id. */
class PosixClient {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  #nextId = 1;
  #waiting = new Map<number, (r: Reply) => void>();

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("websocket error"));
    });
    this.closed = new Promise((resolve) => this.ws.addEventListener("close", (e) => resolve(e)));
    this.ws.onmessage = (e) => {
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      const v = new DataView(bytes.buffer);
      const reply = {
        callId: v.getInt32(0, true),
        ret: v.getInt32(4, true),
        errno: v.getInt32(8, true),
        bytes,
      };
      this.#waiting.get(reply.callId)?.(reply);
      this.#waiting.delete(reply.callId);
    };
  }

  /** Sends call `fn` with int32 fields and a raw tail; resolves with the answer. */
  call(
    fn: number,
    ints: number[],
    tail: Uint8Array = new Uint8Array(),
    callId = this.#nextId++,
  ): Promise<Reply> {
    const out = new Uint8Array(8 + ints.length * 4 + tail.length);
    const v = new DataView(out.buffer);
    v.setInt32(0, callId, true);
    v.setInt32(4, fn, true);
    ints.forEach((n, i) => v.setInt32(8 + i * 4, n, true));
    out.set(tail, 8 + ints.length * 4);
    const answer = new Promise<Reply>((resolve) => this.#waiting.set(callId, resolve));
    this.ws.send(out);
    return answer;
  }

  /** Skips a call id (as the 3.1.6 client's broken getsockname does) and returns it. */
  skipId(): number {
    return this.#nextId++;
  }

  /** Waits for the answer to `callId` without sending anything. */
  answerTo(callId: number): Promise<Reply> {
    return new Promise<Reply>((resolve) => this.#waiting.set(callId, resolve));
  }

  socket(type = 1): Promise<Reply> {
    return this.call(SOCKET, [2, type, 0]);
  }
  connect(fd: number, ip: string, port: number): Promise<Reply> {
    return this.call(CONNECT, [fd, 16], sin(ip, port));
  }
  send(fd: number, text: string | Uint8Array): Promise<Reply> {
    const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
    return this.call(SEND, [fd, data.length, 0], data);
  }
  recv(fd: number, length: number, flags = 0): Promise<Reply> {
    return this.call(RECV, [fd, length, flags]);
  }
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

function sin(ip: string, port: number): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setUint16(0, 2, true);
  v.setUint16(2, port, false);
  ip.split(".").forEach((part, i) => (out[4 + i] = Number(part)));
  return out;
}

function text(reply: Reply, offset = 12): string {
  return new TextDecoder().decode(reply.bytes.subarray(offset));
}

function getaddrinfoTail(node: string, service: string, hints: number[] | null): Uint8Array {
  const out = new Uint8Array(2048 + 128 + 20);
  out.set(new TextEncoder().encode(node), 0);
  out.set(new TextEncoder().encode(service), 2048);
  const v = new DataView(out.buffer);
  if (hints) [1, ...hints].forEach((n, i) => v.setInt32(2048 + 128 + i * 4, n, true));
  return out;
}

/** Addresses in a getaddrinfo answer, as `ip:port` (IPv4 only, enough here). */
function addrinfoAddresses(reply: Reply): string[] {
  const v = new DataView(reply.bytes.buffer);
  const count = v.getInt32(12 + 2048, true);
  const out: string[] = [];
  let at = 12 + 2048 + 4;
  for (let i = 0; i < count; i++) {
    const len = v.getInt32(at + 16, true);
    const addr = reply.bytes.subarray(at + 20, at + 20 + len);
    out.push(`${[...addr.subarray(4, 8)].join(".")}:${(addr[2] << 8) | addr[3]}`);
    at += 20 + len;
  }
  return out;
}

async function withProxy(
  body: (c: PosixClient, srv: TestServer, echo: { port: number }) => Promise<void>,
  policy = Policy.allowAll(),
): Promise<void> {
  const names: Record<string, string[]> = { "echo.test": ["127.0.0.1"], "private.test": ["10.9.8.7"] };
  const srv = await startServer(policy, {
    resolver: (name) =>
      names[name] ? Promise.resolve(names[name]) : Promise.reject(new Error(`no such name ${name}`)),
  });
  const echo = startTcpEchoServer();
  const c = new PosixClient(`ws://127.0.0.1:${srv.port}/posix/`);
  try {
    await c.opened;
    await body(c, srv, echo);
  } finally {
    await c.close();
    await echo.close();
    await srv.close();
  }
}

Deno.test("posix proxy: socket, blocking connect, send, recv, shutdown", async () => {
  await withProxy(async (c, _srv, echo) => {
    const s = await c.socket();
    assert.equal(s.ret, 4096, "virtual socket numbers start above Emscripten's file descriptors");
    assert.deepEqual([(await c.connect(s.ret, "127.0.0.1", echo.port)).ret], [0]);
    assert.equal((await c.connect(s.ret, "127.0.0.1", echo.port)).errno, EISCONN);
    // A recv sent first blocks until data arrives; the send (another "thread") is answered meanwhile.
    const pending = c.recv(s.ret, 100);
    const sent = await c.send(s.ret, "hello proxy");
    assert.equal(sent.ret, 11);
    const got = await pending;
    assert.equal(got.ret, 11);
    assert.equal(text(got), "hello proxy");
    assert.equal((await c.call(SHUTDOWN, [s.ret, 2])).ret, 0);
    const after = await c.send(s.ret, "x");
    assert.deepEqual([after.ret, after.errno], [-1, EBADF], "shutdown(SHUT_RDWR) frees the socket number");
  });
});

Deno.test("posix proxy: denied, refused, and unsupported calls get the errno a C program expects", async () => {
  const denied = startTcpEchoServer();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusedPort = closed.addr.port;
  closed.close();
  const policy = Policy.fromConfig({ network: { deny: [`127.0.0.1:${denied.port}`], allow: ["*"] } });
  try {
    await withProxy(async (c, srv) => {
      const s = (await c.socket()).ret;
      const d = await c.connect(s, "127.0.0.1", denied.port);
      assert.deepEqual([d.ret, d.errno], [-1, EACCES]);
      assert.equal(denied.accepted, 0);
      assert.ok(srv.decisions.some((r) => r.op === "connect" && r.decision === "deny"));
      const so = await c.call(GETSOCKOPT, [s, 1, 4, 4]);
      assert.equal(
        new DataView(so.bytes.buffer).getInt32(12, true),
        EACCES,
        "SO_ERROR holds the failed connect",
      );
      const r = await c.connect(s, "127.0.0.1", refusedPort);
      assert.deepEqual([r.ret, r.errno], [-1, ECONNREFUSED]);
      assert.equal((await c.connect(9999, "127.0.0.1", refusedPort)).errno, EBADF);
      assert.equal((await c.call(SOCKET, [2, 3, 0])).errno, EPROTONOSUPPORT, "SOCK_RAW is not offered");
      assert.equal((await c.call(SOCKET, [1, 1, 0])).errno, EAFNOSUPPORT, "AF_UNIX is not offered");
      const pair = await c.call(SOCKETPAIR, [1, 1, 0]);
      assert.deepEqual(
        [pair.errno, pair.bytes.length],
        [EOPNOTSUPP, 20],
        "padded to what the client waits for",
      );
      assert.equal((await c.call(SETSOCKOPT, [s, 6, 1, 4, 1])).ret, 0, "TCP_NODELAY is accepted");
    }, policy);
  } finally {
    await denied.close();
  }
});

Deno.test("posix proxy: getaddrinfo is policy-checked", async () => {
  const policy = Policy.fromConfig({ network: { deny: ["blocked.test", "10.0.0.0/8"], allow: ["*"] } });
  await withProxy(async (c, srv) => {
    const hints = [0, 2, 1, 0];
    const ok = await c.call(GETADDRINFO, [], getaddrinfoTail("echo.test", "8080", hints));
    assert.equal(ok.ret, 0);
    assert.deepEqual(addrinfoAddresses(ok), ["127.0.0.1:8080"]);
    assert.equal((await c.call(GETADDRINFO, [], getaddrinfoTail("blocked.test", "80", hints))).ret, EAI_FAIL);
    assert.equal((await c.call(GETADDRINFO, [], getaddrinfoTail("private.test", "", null))).ret, EAI_FAIL);
    assert.equal(
      (await c.call(GETADDRINFO, [], getaddrinfoTail("nowhere.test", "80", hints))).ret,
      EAI_NONAME,
    );
    const literal = await c.call(GETADDRINFO, [], getaddrinfoTail("192.0.2.7", "443", hints));
    assert.deepEqual(addrinfoAddresses(literal), ["192.0.2.7:443"]);
    const passive = await c.call(GETADDRINFO, [], getaddrinfoTail("", "9000", [1, 2, 1, 0]));
    assert.deepEqual(addrinfoAddresses(passive), ["0.0.0.0:9000"]);
    const gai = srv.decisions.filter((d) => d.op === "getaddrinfo").map((d) => `${d.target} ${d.decision}`);
    assert.deepEqual(gai, [
      "echo.test:8080 allow",
      "blocked.test:80 deny",
      "private.test deny",
      "nowhere.test:80 error",
    ]);
  }, policy);
});

Deno.test("posix proxy: bind, listen, accept, and a bind the policy refuses", async () => {
  const policy = Policy.fromConfig({
    network: { allow: ["*"], deny: [], bind_addrs: ["127.0.0.1"], bind_ports: "20000-65535" },
  });
  await withProxy(async (c) => {
    const ls = (await c.socket()).ret;
    const low = await c.call(BIND, [ls, 16], sin("127.0.0.1", 1000));
    assert.deepEqual([low.ret, low.errno], [-1, EACCES], "bind_ports refuses port 1000");
    assert.equal((await c.call(BIND, [ls, 16], sin("127.0.0.1", 0))).ret, 0);
    assert.equal((await c.call(LISTEN, [ls, 4])).ret, 0);
    const name = await c.call(GETSOCKNAME, [ls, 16]);
    const port = (name.bytes[18] << 8) | name.bytes[19];
    assert.ok(port >= 20000, `port ${port} from bind_ports`);
    const accepting = c.call(ACCEPT, [ls, 16]);
    const peer = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const a = await accepting;
      assert.ok(a.ret > ls, "accept answers a new socket number");
      const v = new DataView(a.bytes.buffer);
      assert.equal(v.getInt32(12, true), 16, "address length");
      assert.equal((a.bytes[18] << 8) | a.bytes[19], peer.localAddr.port, "the peer's address");
      await peer.write(new TextEncoder().encode("ping"));
      assert.equal(text(await c.recv(a.ret, 10)), "ping");
      assert.equal((await c.send(a.ret, "pong")).ret, 4);
      const buf = new Uint8Array(4);
      await peer.read(buf);
      assert.equal(new TextDecoder().decode(buf), "pong");
      assert.equal((await c.call(SHUTDOWN, [a.ret, 2])).ret, 0);
      assert.equal(await peer.read(buf), null, "the program's shutdown closes the connection");
      const auto = (await c.socket()).ret;
      assert.equal(
        (await c.call(LISTEN, [auto, 1])).ret,
        0,
        "listen() without bind() binds an ephemeral port",
      );
      const autoName = await c.call(GETSOCKNAME, [auto, 16]);
      assert.ok(((autoName.bytes[18] << 8) | autoName.bytes[19]) >= 20000);
    } finally {
      peer.close();
    }
  }, policy);
});

Deno.test("posix proxy: non-blocking recv, MSG_PEEK, limits, and the empty getsockname message", async () => {
  const policy = Policy.fromConfig({ network: { allow: ["*"], deny: [], max_connections: 2 } });
  const greeter = startTcpServer(async (conn) => {
    await conn.write(new TextEncoder().encode("welcome"));
    await conn.read(new Uint8Array(1)).catch(() => null);
  });
  try {
    await withProxy(async (c) => {
      const s = (await c.socket(1 | SOCK_NONBLOCK)).ret;
      assert.equal((await c.connect(s, "127.0.0.1", greeter.port)).ret, 0);
      let first = await c.recv(s, 100, MSG_PEEK);
      for (let i = 0; i < 50 && first.errno === EAGAIN; i++) {
        await new Promise((r) => setTimeout(r, 20));
        first = await c.recv(s, 100, MSG_PEEK);
      }
      assert.equal(text(first), "welcome", "peeked");
      assert.equal(text(await c.recv(s, 3)), "wel", "peek left the bytes in place");
      assert.equal(text(await c.recv(s, 100)), "come");
      assert.equal((await c.recv(s, 100)).errno, EAGAIN, "non-blocking: nothing there");
      assert.equal((await c.socket()).ret, 4097);
      assert.equal((await c.socket()).errno, EMFILE, "max_connections = 2");
      // The 3.1.6 client sends getsockname() as an empty message under the next call id.
      const missing = c.skipId();
      const answer = c.answerTo(missing);
      c.ws.send(new Uint8Array());
      const r = await answer;
      assert.deepEqual([r.ret, r.errno], [-1, EOPNOTSUPP]);
      assert.ok(r.bytes.length >= 16, "long enough for getsockname's answer");
    }, policy);
  } finally {
    await greeter.close();
  }
});

Deno.test("posix proxy: closing the WebSocket closes every socket, even with a recv blocked", async () => {
  let closedByProxy!: () => void;
  const sawClose = new Promise<void>((r) => (closedByProxy = r));
  const peer = startTcpServer(async (conn) => {
    const n = await conn.read(new Uint8Array(10)).catch(() => null);
    if (n === null) closedByProxy();
  });
  try {
    await withProxy(async (c) => {
      const s = (await c.socket()).ret;
      assert.equal((await c.connect(s, "127.0.0.1", peer.port)).ret, 0);
      c.recv(s, 10); // never answered: the session goes away first
      await new Promise((r) => setTimeout(r, 50));
      await c.close();
      await sawClose;
    });
  } finally {
    await peer.close();
  }
});

Deno.test("posix proxy: socket_idle_timeout_secs ends a silent connection with ETIMEDOUT", async () => {
  const ETIMEDOUT = 73;
  const policy = Policy.fromConfig({ network: { allow: ["*"], deny: [], socket_idle_timeout_secs: 1 } });
  await withProxy(async (c, _srv, echo) => {
    const s = (await c.socket()).ret;
    assert.equal((await c.connect(s, "127.0.0.1", echo.port)).ret, 0);
    const started = Date.now();
    const r = await c.recv(s, 10);
    assert.deepEqual([r.ret, r.errno], [-1, ETIMEDOUT]);
    assert.ok(Date.now() - started >= 900, "after about a second of silence");
  }, policy);
});

Deno.test("posix proxy: UDP (connect/send/recv, sendto/recvfrom), policy-checked per destination", async () => {
  const dgram = (await import("node:dgram")).default;
  const echo = dgram.createSocket("udp4");
  echo.on(
    "message",
    (msg: Uint8Array, rinfo: { port: number; address: string }) => echo.send(msg, rinfo.port, rinfo.address),
  );
  await new Promise<void>((resolve) => echo.bind(0, "127.0.0.1", () => resolve()));
  const port = echo.address().port;
  const deniedPort = port === 65535 ? port - 1 : port + 1;
  const policy = Policy.fromConfig({ network: { deny: [`127.0.0.1:${deniedPort}`], allow: ["*"] } });
  const SENDTO = 12, RECVFROM = 13, SOCK_DGRAM = 2;
  const sendto = (c: PosixClient, fd: number, ip: string, to: number, text: string) => {
    const data = new TextEncoder().encode(text);
    const tail = new Uint8Array(256 + data.length);
    tail.set(sin(ip, to), 0);
    tail.set(data, 256);
    return c.call(SENDTO, [fd, data.length, 0, 16], tail);
  };
  try {
    await withProxy(async (c, srv) => {
      const u = (await c.socket(SOCK_DGRAM)).ret;
      assert.equal((await c.connect(u, "127.0.0.1", port)).ret, 0);
      assert.equal((await c.send(u, "datagram one")).ret, 12);
      assert.equal(text(await c.recv(u, 100)), "datagram one");
      assert.equal((await c.send(u, "abcdef")).ret, 6);
      const cut = await c.recv(u, 3);
      assert.deepEqual(
        [cut.ret, text(cut)],
        [3, "abc"],
        "a datagram is truncated to the buffer, as UDP does",
      );
      const type = await c.call(GETSOCKOPT, [u, 1, 3, 4]);
      assert.equal(new DataView(type.bytes.buffer).getInt32(12, true), SOCK_DGRAM);

      const v = (await c.socket(SOCK_DGRAM)).ret;
      assert.equal((await sendto(c, v, "127.0.0.1", port, "via sendto")).ret, 10);
      const from = await c.call(RECVFROM, [v, 100, 0, 16]);
      const fv = new DataView(from.bytes.buffer);
      assert.equal(from.ret, 10);
      assert.deepEqual([fv.getInt32(12, true), fv.getInt32(16, true)], [10, 16], "data and address lengths");
      assert.equal(new TextDecoder().decode(from.bytes.subarray(20, 30)), "via sendto");
      assert.equal((from.bytes[32] << 8) | from.bytes[33], port, "the sender's port");
      const denied = await sendto(c, v, "127.0.0.1", deniedPort, "nope");
      assert.deepEqual([denied.ret, denied.errno], [-1, EACCES]);
      const ops = srv.decisions.map((d) => `${d.op} ${d.target} ${d.decision}`);
      assert.ok(ops.includes(`connect_udp 127.0.0.1:${port} allow`), ops.join("\n"));
      assert.ok(ops.includes(`send_to 127.0.0.1:${deniedPort} deny`), ops.join("\n"));
    }, policy);
  } finally {
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  }
});

Deno.test("posix proxy: recvfrom never returns a datagram from a source the policy refuses (issue 13)", async () => {
  const dgram = (await import("node:dgram")).default;
  const echo = dgram.createSocket("udp4");
  let serverSide = 0;
  echo.on("message", (msg: Uint8Array, rinfo: { port: number; address: string }) => {
    serverSide = rinfo.port;
    echo.send(msg, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => echo.bind(0, "127.0.0.1", () => resolve()));
  const stranger = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => stranger.bind(0, "127.0.0.1", () => resolve()));
  const port = echo.address().port;
  // Only 127.0.0.1:A is allowed; the stranger is 127.0.0.1 on another port.
  const policy = Policy.fromConfig({ network: { deny: [], allow: [`127.0.0.1:${port}`] } });
  const SENDTO = 12, RECVFROM = 13, SOCK_DGRAM = 2;
  const sendto = (c: PosixClient, fd: number, to: number, text: string) => {
    const data = new TextEncoder().encode(text);
    const tail = new Uint8Array(256 + data.length);
    tail.set(sin("127.0.0.1", to), 0);
    tail.set(data, 256);
    return c.call(SENDTO, [fd, data.length, 0, 16], tail);
  };
  try {
    await withProxy(async (c) => {
      const v = (await c.socket(SOCK_DGRAM)).ret;
      assert.equal((await sendto(c, v, port, "first")).ret, 5);
      const first = await c.call(RECVFROM, [v, 100, 0, 16]);
      assert.equal(new TextDecoder().decode(first.bytes.subarray(20, 25)), "first");
      // The stranger writes to the server's socket, then the target answers again.
      await new Promise<void>((r) =>
        stranger.send(new TextEncoder().encode("from B"), serverSide, "127.0.0.1", () => r())
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await sendto(c, v, port, "second")).ret, 6);
      const next = await c.call(RECVFROM, [v, 100, 0, 16]);
      assert.equal(new TextDecoder().decode(next.bytes.subarray(20, 20 + next.ret)), "second");
      const at = 20 + next.ret; // the source address follows the data
      assert.equal(
        (next.bytes[at + 2] << 8) | next.bytes[at + 3],
        port,
        "from the allowed target, not the stranger",
      );
    }, policy);
  } finally {
    await new Promise<void>((resolve) => echo.close(() => resolve()));
    await new Promise<void>((resolve) => stranger.close(() => resolve()));
  }
});
