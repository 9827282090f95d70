/**
 * Servers for the Wisp tests and the benchmark, each started and stopped by its caller:
 * wasmnet with a configurable Wisp endpoint, the reference wisp-js server, a UDP echo, and a TCP listener
 * whose backlog is full (connects to it time out).
 *
 * @module
 */

import http from "node:http";
import dgram from "node:dgram";
import type { AddressInfo } from "node:net";
// Full npm: specifiers, not import-map entries: `deno task` installs every import-map npm package
// into deno.lock, the server's runtime lockfile that `deno compile` embeds (tests/packaging/).
// deno-lint-ignore no-import-prefix
import { logging as wispjsLogging, server as wispjsServer } from "npm:@mercuryworkshop/wisp-js@0.5.0/server";
import type { DecisionRecord } from "../../src/core/log.ts";
import { Policy } from "../../src/policy/mod.ts";
import { Server, wasmnetEndpoint } from "../../src/server.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { wispEndpoint, type WispEndpointOptions } from "../../src/frontends/wisp/endpoint.ts";

/** A running wasmnet server with a Wisp endpoint. */
export interface WispTestServer {
  /** `ws://127.0.0.1:port/wisp/` */
  wispUrl: string;
  /** `ws://127.0.0.1:port/` */
  url: string;
  port: number;
  server: Server;
  /** Every decision logged, in order. */
  decisions: DecisionRecord[];
  close(): Promise<void>;
}

/** Starts wasmnet on 127.0.0.1 (free port) serving Wisp with `wisp` options (default policy: allow all). */
export async function startWispServer(
  policy: Policy = Policy.allowAll(),
  options: { resolver?: Resolver; wisp?: WispEndpointOptions } = {},
): Promise<WispTestServer> {
  const decisions: DecisionRecord[] = [];
  const server = new Server(
    { hostname: "127.0.0.1", port: 0, policy, log: (r) => decisions.push(r), resolver: options.resolver },
    [wispEndpoint(options.wisp), wasmnetEndpoint],
  );
  const ac = new AbortController();
  const running = await server.serve({ signal: ac.signal });
  return {
    wispUrl: `${running.url}wisp/`,
    url: running.url,
    port: running.addr.port,
    server,
    decisions,
    close: async () => {
      ac.abort();
      await running.finished;
    },
  };
}

/** The reference wisp-js 0.5.0 server (Node APIs, runs under Deno), for comparisons and the benchmark. */
export interface WispJsServer {
  /** `ws://127.0.0.1:port/` (wisp-js serves Wisp at any path ending in `/`). */
  wispUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the wisp-js server on 127.0.0.1. Its options are module-global: loopback and private targets are
 * allowed here so it can reach local echo servers (its defaults block them).
 */
export async function startWispJsServer(options: { motd?: string } = {}): Promise<WispJsServer> {
  const opts = wispjsServer.options as Record<string, unknown>;
  opts.allow_loopback_ips = true;
  opts.allow_private_ips = true;
  opts.wisp_motd = options.motd ?? null;
  wispjsLogging.set_level(wispjsLogging.ERROR);
  const sockets = new Set<import("node:net").Socket>();
  const hs = http.createServer();
  hs.on("upgrade", (req, socket, head) => {
    sockets.add(socket as import("node:net").Socket);
    socket.on("close", () => sockets.delete(socket as import("node:net").Socket));
    wispjsServer.routeRequest(req, socket, head);
  });
  await new Promise<void>((resolve) => hs.listen(0, "127.0.0.1", () => resolve()));
  const port = (hs.address() as AddressInfo).port;
  return {
    wispUrl: `ws://127.0.0.1:${port}/`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => hs.close(() => resolve()));
    },
  };
}

/** A UDP echo server on 127.0.0.1. */
export async function startUdpEcho(): Promise<{ port: number; received: number; close(): Promise<void> }> {
  const s = dgram.createSocket("udp4");
  const echo = { port: 0, received: 0, close: () => new Promise<void>((r) => s.close(() => r())) };
  s.on("message", (m, r) => {
    echo.received++;
    s.send(m, r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  echo.port = s.address().port;
  return echo;
}

/**
 * A TCP listener on 127.0.0.1 that never accepts and whose backlog is already full, so further connects get
 * no SYN-ACK and time out (Linux drops SYNs to a full accept queue). Deno cannot set a listen backlog, so a
 * `perl` process (perl-base is essential on Debian) holds the socket with `listen(S, 0)`; one connection from
 * here fills the queue.
 */
export async function startBlackholeListener(): Promise<{ port: number; close(): Promise<void> }> {
  const script =
    'use Socket; socket(S, PF_INET, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die;' +
    ' listen(S, 0) or die; my ($p) = unpack_sockaddr_in(getsockname(S)); $| = 1; print "$p\\n"; <STDIN>;';
  const child = new Deno.Command("perl", {
    args: ["-e", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("perl exited before printing its port");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const port = Number(text.trim());
  const filler = await Deno.connect({ hostname: "127.0.0.1", port }); // takes the one backlog slot
  return {
    port,
    close: async () => {
      filler.close();
      const w = child.stdin.getWriter();
      await w.close();
      await child.stdout.cancel();
      await child.status;
    },
  };
}

/** A TCP port on 127.0.0.1 with nothing listening (connects are refused). */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/**
 * A TCP server on 127.0.0.1 that accepts each connection, sends `hi`, then resets it (SO_LINGER 0 makes
 * `close` send RST). A `perl` process does it, since Deno cannot set SO_LINGER.
 */
export async function startResetServer(): Promise<{ port: number; close(): Promise<void> }> {
  const script =
    'use Socket; socket(S, PF_INET, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die;' +
    ' listen(S, 16) or die; my ($p) = unpack_sockaddr_in(getsockname(S)); $| = 1; print "$p\\n";' +
    ' while (accept(C, S)) { syswrite(C, "hi"); select(undef, undef, undef, 0.2);' +
    ' setsockopt(C, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)); close(C); }';
  const child = new Deno.Command("perl", { args: ["-e", script], stdout: "piped", stderr: "inherit" })
    .spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("perl exited before printing its port");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    port: Number(text.trim()),
    close: async () => {
      child.kill("SIGTERM");
      await child.stdout.cancel();
      await child.status;
    },
  };
}
