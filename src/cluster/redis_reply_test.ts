/**
 * Every Redis reply is untrusted input: a fake Redis on loopback (it speaks just enough RESP for ioredis)
 * answers the store's scripts with values of the wrong shape, and each one is a StoreError (an outage for
 * admission), never a count taken on faith.
 */

import assert from "node:assert/strict";
import { RedisStore } from "./redis_store.ts";
import { StoreError } from "./store.ts";

/** A fake Redis answering EVALSHA with `reply()` (raw RESP), SCRIPT LOAD with `scriptReply`. */
function fakeRedis(reply: () => string, scriptReply = `$40\r\n${"a".repeat(40)}\r\n`) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const encoder = new TextEncoder();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        let pending = "";
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          pending += new TextDecoder().decode(buf.subarray(0, n));
          for (;;) {
            const parsed = parseCommand(pending);
            if (parsed === null) break;
            pending = pending.slice(parsed.used);
            const name = parsed.args[0]?.toUpperCase();
            const answer = name === "INFO"
              ? "$9\r\nloading:0\r\n"
              : name === "SCRIPT"
              ? scriptReply
              : name === "EVALSHA"
              ? reply()
              : "+OK\r\n";
            await conn.write(encoder.encode(answer)).catch(() => {});
          }
        }
        conns.delete(conn);
      })();
    }
  })().catch(() => {});
  return {
    url: `redis://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) c.close();
    },
  };
}

/** One RESP array of bulk strings from the front of `text`, or null when incomplete. */
function parseCommand(text: string): { args: string[]; used: number } | null {
  const head = /^\*(\d+)\r\n/.exec(text);
  if (!head) return null;
  let at = head[0].length;
  const args: string[] = [];
  for (let i = 0; i < Number(head[1]); i++) {
    const len = /^\$(\d+)\r\n/.exec(text.slice(at));
    if (!len) return null;
    at += len[0].length;
    if (text.length < at + Number(len[1]) + 2) return null;
    args.push(text.slice(at, at + Number(len[1])));
    at += Number(len[1]) + 2;
  }
  return { args, used: at };
}

const counters = [{ key: "sessions", cap: 3 }, { key: "ip:192.0.2.1", cap: 2 }];

Deno.test("a fake Redis that answers well is believed (the fake speaks enough RESP)", async () => {
  const fake = fakeRedis(() => ":0\r\n");
  const store = await RedisStore.open({ url: fake.url });
  try {
    assert.equal(await store.acquire("a", counters, 1000), 0);
  } finally {
    await store.close();
    fake.close();
  }
});

Deno.test("Redis replies of the wrong shape are StoreErrors: out of range, strings, arrays, errors, floats", async () => {
  const replies = [":99\r\n", ":-1\r\n", "$1\r\n0\r\n", "*1\r\n:0\r\n", "-ERR no\r\n", "$-1\r\n", ",0.5\r\n"];
  let next = 0;
  const fake = fakeRedis(() => replies[next]);
  const store = await RedisStore.open({ url: fake.url, commandTimeoutMs: 500 });
  try {
    for (; next < replies.length; next++) {
      await assert.rejects(store.acquire("a", counters, 1000), StoreError, JSON.stringify(replies[next]));
    }
  } finally {
    await store.close();
    fake.close();
  }
});

Deno.test("a SCRIPT LOAD answer that is not a SHA-1 is a StoreError", async () => {
  const fake = fakeRedis(() => ":0\r\n", ":1\r\n");
  const store = await RedisStore.open({ url: fake.url, commandTimeoutMs: 500 });
  try {
    await assert.rejects(store.acquire("a", counters, 1000), StoreError);
    await assert.rejects(store.takeBandwidth("ip:x", 1000, 100, 50), StoreError);
  } finally {
    await store.close();
    fake.close();
  }
});
