/**
 * The shared limits store in Redis, through `ioredis` (npm). Each operation is one Lua script, so a check and
 * its update are atomic across every replica; time inside the scripts is Redis's own `TIME`, so replicas with
 * skewed clocks still agree on when a lease ends.
 *
 * Keys (all under the configured prefix, default `wasmnet:`):
 * - `<prefix>lease:<counter>`: a sorted set, member = session id, score = lease expiry (ms). The key's own
 *   expiry is pushed to the newest lease, so an idle key disappears by itself.
 * - `<prefix>bw:<key>`: a hash `{tokens, at}`: one token bucket, expiring once it would be full again.
 *
 * Redis replies are untrusted input: every reply is checked for the shape its script returns, and anything
 * else is a {@link StoreError} (handled as an outage), never a number taken on faith.
 *
 * ioredis is loaded only when a store is opened, so a server without `[cluster] redis` installs nothing.
 *
 * @module
 */

import { type Counter, type LimitStore, StoreError } from "./store.ts";

/** Takes a lease on every KEYS[i] (cap ARGV[i+2]) for member ARGV[1], or none; returns 0 or the full key's index. */
export const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, member)
  redis.call('PEXPIRE', key, lease)
end
return 0
`;

/** Sets the lease of member ARGV[i+1] on KEYS[i] to now + ARGV[1] (re-adding it if the store lost it). */
export const RENEW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease)
end
return #KEYS
`;

/** Removes member ARGV[1] from every KEYS[i]. */
export const RELEASE_LUA = `
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return #KEYS
`;

/** Token bucket KEYS[1] (rate ARGV[1] bytes/s, burst ARGV[2]): grants up to ARGV[3] bytes, returns the grant. */
export const BANDWIDTH_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local grant = math.floor(math.max(0, math.min(want, tokens)))
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return grant
`;

/** Most (member, key) pairs renewed by one script call, so no single call blocks Redis for long. */
const RENEW_BATCH = 512;

/** Where the store is and how to reach it; built from `[cluster]` by {@link redisOptionsFrom}. */
export interface RedisStoreOptions {
  /** `redis://host:port[/db]` or `rediss://…` (no password, no query). */
  url: string;
  /** From the environment variable `[cluster] password_env` names; never from the file. */
  password?: string;
  /** Prefix of every key (default `wasmnet:`). */
  prefix?: string;
  /** For `rediss://`: the CA (PEM) that signed the server's certificate; default: the system roots. */
  ca?: string;
  /** A command not answered within this is an outage (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Told about connection errors (the store reconnects by itself). */
  onError?: (error: Error) => void;
  /** Told when the connection is ready again (after a start or a reconnect). */
  onReady?: () => void;
}

/** The minimal surface of an ioredis client this store uses (kept small so a fake could stand in). */
interface RedisClient {
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  status: string;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  script(subcommand: "LOAD", script: string): Promise<unknown>;
}

/** A {@link LimitStore} in Redis. Open with {@link RedisStore.open}. */
export class RedisStore implements LimitStore {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #shas = new Map<string, string>();

  private constructor(client: RedisClient, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  /**
   * Connects (ioredis reconnects by itself afterwards). Resolves even when Redis is down at start: the first
   * operations then fail with {@link StoreError} and the caller's `on_store_failure` applies.
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const target = parseRedisUrl(options.url);
    const { Redis } = await import("ioredis");
    const client = new Redis({
      host: target.host,
      port: target.port,
      db: target.db,
      password: options.password,
      tls: target.tls ? tlsOptions(target.host, options.ca) : undefined,
      lazyConnect: true,
      enableOfflineQueue: false, // fail at once while disconnected instead of queueing admissions
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    }) as unknown as RedisClient;
    client.on("error", (err) => options.onError?.(err as Error));
    client.on("ready", () => options.onReady?.());
    const store = new RedisStore(client, options.prefix ?? "wasmnet:");
    await client.connect().catch((err) => options.onError?.(err as Error));
    return store;
  }

  /** True while connected. */
  get connected(): boolean {
    return this.#client.status === "ready";
  }

  async acquire(member: string, counters: readonly Counter[], leaseMs: number): Promise<number> {
    const reply = await this.#run(
      ACQUIRE_LUA,
      counters.map((c) => this.#leaseKey(c.key)),
      [member, leaseMs, ...counters.map((c) => c.cap)],
    );
    return checkedInteger(reply, 0, counters.length, "acquire");
  }

  async release(member: string, keys: readonly string[]): Promise<void> {
    const reply = await this.#run(RELEASE_LUA, keys.map((k) => this.#leaseKey(k)), [member]);
    checkedInteger(reply, keys.length, keys.length, "release");
  }

  async renew(held: ReadonlyMap<string, readonly string[]>, leaseMs: number): Promise<void> {
    let keys: string[] = [];
    let members: string[] = [];
    const flush = async () => {
      if (keys.length === 0) return;
      const reply = await this.#run(RENEW_LUA, keys, [leaseMs, ...members]);
      checkedInteger(reply, keys.length, keys.length, "renew");
      keys = [];
      members = [];
    };
    for (const [member, counterKeys] of held) {
      for (const key of counterKeys) {
        keys.push(this.#leaseKey(key));
        members.push(member);
      }
      if (keys.length >= RENEW_BATCH) await flush();
    }
    await flush();
  }

  async takeBandwidth(key: string, bytesPerSec: number, burst: number, want: number): Promise<number> {
    const reply = await this.#run(BANDWIDTH_LUA, [`${this.#prefix}bw:${key}`], [
      Math.max(1, Math.round(bytesPerSec)),
      Math.max(1, Math.round(burst)),
      Math.max(0, Math.round(want)),
    ]);
    return checkedInteger(reply, 0, Math.max(0, Math.round(want)), "bandwidth");
  }

  async close(): Promise<void> {
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  #leaseKey(counter: string): string {
    return `${this.#prefix}lease:${counter}`;
  }

  /** EVALSHA with the script's hash; loads the script on NOSCRIPT (a restarted Redis has none). */
  async #run(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      const sha = this.#shas.get(script);
      if (sha !== undefined) {
        try {
          return await this.#client.evalsha(sha, keys.length, ...keys, ...args);
        } catch (err) {
          if (!String((err as Error)?.message).startsWith("NOSCRIPT")) throw err;
        }
      }
      const loaded = await this.#client.script("LOAD", script);
      if (typeof loaded !== "string" || !/^[0-9a-f]{40}$/.test(loaded)) {
        throw new StoreError("redis answered SCRIPT LOAD with something that is not a SHA-1");
      }
      this.#shas.set(script, loaded);
      return await this.#client.evalsha(loaded, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`redis: ${String((err as Error)?.message ?? err).slice(0, 200)}`, { cause: err });
    }
  }
}

/** A reply that must be an integer in [min, max]; anything else is a {@link StoreError}. */
export function checkedInteger(reply: unknown, min: number, max: number, what: string): number {
  if (typeof reply !== "number" || !Number.isInteger(reply) || reply < min || reply > max) {
    const shown = typeof reply === "string" ? JSON.stringify(reply.slice(0, 40)) : typeof reply;
    throw new StoreError(`redis answered ${what} with ${shown}, not an integer from ${min} to ${max}`);
  }
  return reply;
}

/** The parts of a `redis://` / `rediss://` URL, checked. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  tls: boolean;
}

/**
 * Parses `redis://host[:port][/db]` or `rediss://…`. Returns a problem text for anything else, including a
 * password or user in the URL (it belongs in the environment) and query options (ioredis would take them
 * as client options).
 */
export function parseRedisUrlChecked(text: string): RedisTarget | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `${JSON.stringify(text.slice(0, 80))} is not a URL like "redis://127.0.0.1:6379"` };
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return { problem: `must start with redis:// or rediss://, got ${JSON.stringify(url.protocol)}` };
  }
  if (url.username !== "" || url.password !== "") {
    return { problem: "must not carry a user or password: set cluster.password_env instead" };
  }
  if (url.search !== "" || url.hash !== "") return { problem: "must not have a query or fragment" };
  if (url.hostname === "") return { problem: "must name a host" };
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,2}$/.test(path)) return { problem: `database must be 0-99, got "${path}"` };
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? 6379 : Number(url.port),
    db: path === "" ? 0 : Number(path),
    tls: url.protocol === "rediss:",
  };
}

/** TLS options for `rediss://`: SNI for a name (never for an IP, which Node refuses), and the CA if given. */
function tlsOptions(host: string, ca: string | undefined): Record<string, unknown> {
  const isIp = /^[\d.]+$/.test(host) || host.includes(":");
  return { ...(isIp ? {} : { servername: host }), ...(ca ? { ca: [ca] } : {}) };
}

function parseRedisUrl(text: string): RedisTarget {
  const parsed = parseRedisUrlChecked(text);
  if ("problem" in parsed) throw new StoreError(`cluster.redis ${parsed.problem}`);
  return parsed;
}
