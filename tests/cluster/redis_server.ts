/**
 * A real `redis-server` (Debian's) for one test, on a free loopback port, with no persistence: started by
 * the test, stopped by it, and restartable on the same port (empty, as a crashed Redis comes back); and
 * the other loopback peers the cluster tests and bench/cluster.ts share (a free port, a firehose).
 *
 * @module
 */

/** A running redis-server. */
export interface TestRedis {
  port: number;
  url: string;
  /** SIGTERM and wait for the exit (the port stays reserved for {@link start}). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Runs one command through redis-cli and returns its output, trimmed. */
  cli(...args: string[]): Promise<string>;
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough for a test that binds it next). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** How to start it: with a password (`requirepass`), and/or TLS only (PEM files; no plain port). */
export interface RedisOptions {
  password?: string;
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/**
 * Starts a child that listens on a port picked in advance, and makes sure the port is the child's: on a
 * busy machine another process can take a free port between the pick and the bind (then the child exits,
 * or something else answers there). Tries up to 5 ports; throws when none works within 5 s each.
 */
export async function spawnOnFreePort(
  spawn: (port: number) => Deno.ChildProcess | Promise<Deno.ChildProcess>,
): Promise<{ port: number; child: Deno.ChildProcess }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freePort();
    const child = await spawn(port);
    if (await waitForChildPort(child, port, 5000)) return { port, child };
    try {
      child.kill("SIGKILL");
    } catch {
      // it exited: the port was taken
    }
    await child.status;
  }
  throw new Error("no free port could be bound in 5 attempts");
}

/** True once `child` itself listens on `port` (per `ss`); false if it exits or the time runs out. */
async function waitForChildPort(child: Deno.ChildProcess, port: number, timeoutMs: number): Promise<boolean> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    const out = await new Deno.Command("ss", { args: ["-ltnpH", `sport = :${port}`] }).output();
    if (new TextDecoder().decode(out.stdout).includes(`pid=${child.pid},`)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** Starts redis-server on a free port; throws when it does not answer within 5 s. */
export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  let child: Deno.ChildProcess | null = null;
  const args = (port: number) => [
    ...(options.password ? ["--requirepass", options.password] : []),
    ...(options.tls
      ? [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        options.tls.certFile,
        "--tls-key-file",
        options.tls.keyFile,
        "--tls-ca-cert-file",
        options.tls.caFile,
        "--tls-auth-clients",
        "no",
      ]
      : ["--port", String(port)]),
    ...["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
  ];
  const spawn = (port: number) =>
    new Deno.Command("redis-server", { args: args(port), stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
  const first = await spawnOnFreePort(spawn);
  const port = first.port;
  child = first.child;
  // A restart must come back on the same port (the replicas know only that one).
  const start = async () => {
    child = spawn(port);
    if (!(await waitForChildPort(child, port, 5000))) {
      throw new Error(`redis-server could not bind ${port} again`);
    }
  };
  return {
    port,
    url: `${options.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    async stop() {
      if (child === null) return;
      const c: Deno.ChildProcess = child;
      child = null;
      try {
        c.kill("SIGTERM");
      } catch {
        // already gone
      }
      await c.status;
    },
    start,
    async cli(...args: string[]) {
      const out = await new Deno.Command("redis-cli", { args: ["-p", String(port), ...args] }).output();
      return new TextDecoder().decode(out.stdout).trim();
    },
  };
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}: ${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Leases in KEYS[1] that have not expired by Redis's clock (ZCARD would count expired ones too). */
const LIVE_LEASES_LUA = `local t = redis.call('TIME')
return redis.call('ZCOUNT', KEYS[1], '(' .. (t[1] * 1000 + math.floor(t[2] / 1000)), '+inf')`;

/** Polls until the shared session count in `redis` is `n` (sessions closed elsewhere have been given back). */
export async function waitForLeases(redis: TestRedis, n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const count = Number(await redis.cli("EVAL", LIVE_LEASES_LUA, "1", "wasmnet:lease:sessions"));
    if (count === n) return;
    if (Date.now() > deadline) throw new Error(`the store holds ${count} sessions, not ${n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A TCP peer that sends as fast as it can to everyone who connects, until they leave. */
export function startFirehose(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const chunk = new Uint8Array(64 * 1024);
        try {
          for (;;) await conn.write(chunk);
        } catch {
          // the session ended
        } finally {
          conns.delete(conn);
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const c of conns) c.close();
    },
  };
}

/** The line a server with `--admin` prints once its admin listener is bound. */
export const ADMIN_LINE = /admin listening on http:\/\/\S+/;

/** The admin port from a server's start-up output (after {@link ADMIN_LINE} was seen). */
export function adminPortOf(banner: string): number {
  const m = /admin listening on http:\/\/[^\s/]+:(\d+)\//.exec(banner);
  if (!m) throw new Error(`no admin line in: ${banner}`);
  return Number(m[1]);
}
