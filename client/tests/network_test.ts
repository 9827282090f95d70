/**
 * The client's UDP, DNS and TLS methods against the real wasmnet server, a UDP echo server and a TLS server
 * (with a CA made by `openssl`) on loopback, in both framings.
 */

import { Policy } from "../../mod.ts";
import type { Resolver } from "../../src/core/sockets/resolver.ts";
import { startServer, type TestServer } from "../../tests/helpers.ts";
import { makeTestPki, startTlsServer, startUdpPeer, type TestPki } from "../../tests/network_helpers.ts";
import { WasmnetClient, WasmnetError } from "../mod.ts";

function assertEquals<T>(actual: T, expected: T, message = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message} expected ${e}, got ${a}`);
}
async function rejection(p: Promise<unknown>): Promise<WasmnetError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof WasmnetError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}
const text = (b: Uint8Array) => new TextDecoder().decode(b);
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const resolver: Resolver = (name) => {
  const table: Record<string, string[]> = {
    "echo.test": ["127.0.0.1"],
    "tls.test": ["127.0.0.1"],
    "inside.test": ["10.0.0.1"],
  };
  return table[name] ? Promise.resolve([...table[name]]) : Promise.reject(new Error(`${name}: not found`));
};

async function withServer(
  pki: TestPki | undefined,
  fn: (server: TestServer) => Promise<void>,
): Promise<void> {
  const policy = Policy.fromConfig({
    network: { deny: ["10.0.0.0/8"], allow: ["*"] },
    tls: { ca_files: pki ? [pki.caFile] : [] },
  });
  const server = await startServer(policy, { resolver });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

for (const binary of [false, true]) {
  const framing = binary ? "binary" : "json";

  Deno.test(`client ${framing}: resolve answers allowed addresses; a blocked-only name is denied`, async () => {
    await withServer(undefined, async (server) => {
      const client = new WasmnetClient(server.url, { binary });
      try {
        await client.ready();
        assertEquals(await client.resolve("echo.test"), ["127.0.0.1"]);
        const denied = await rejection(client.resolve("inside.test"));
        assertEquals(denied.kind, "denied");
        const failed = await rejection(client.resolve("nothing.test"));
        assertEquals(failed.kind, "failed");
      } finally {
        await client.disconnect();
      }
    });
  });

  Deno.test(`client ${framing}: connectUdp, send, onData, sendTo, onDataFrom, close`, async () => {
    const echo = await startUdpPeer();
    const other = await startUdpPeer();
    try {
      await withServer(undefined, async (server) => {
        const client = new WasmnetClient(server.url, { binary });
        try {
          await client.ready();
          const udp = await client.connectUdp("echo.test", echo.port);
          if (!(udp.port > 0)) throw new Error(`udp_bound port ${udp.port}`);
          const got: string[] = [];
          const froms: [string, string, number][] = [];
          client.onData(udp.id, (d) => got.push(text(d)));
          client.onDataFrom(udp.id, (d, addr, port) => froms.push([text(d), addr, port]));
          for (const d of ["a", "bb", "ccc"]) client.send(udp.id, d);
          client.sendTo(udp.id, "127.0.0.1", other.port, "elsewhere");
          await until(() => got.length === 3 && froms.length === 1, "datagrams");
          assertEquals(got.sort(), ["a", "bb", "ccc"]);
          assertEquals(froms, [["elsewhere", "127.0.0.1", other.port]]);
          assertEquals(echo.received.map((r) => text(r.data)).sort(), ["a", "bb", "ccc"]);
          await client.close(udp.id);
          const denied = await rejection(client.connectUdp("inside.test", 53));
          assertEquals(denied.kind, "denied");
        } finally {
          await client.disconnect();
        }
      });
    } finally {
      await echo.close();
      await other.close();
    }
  });

  Deno.test(`client ${framing}: openDatagramSocket streams datagrams both ways, with their sources`, async () => {
    const echo = await startUdpPeer();
    const other = await startUdpPeer();
    try {
      await withServer(undefined, async (server) => {
        const client = new WasmnetClient(server.url, { binary });
        try {
          await client.ready();
          const socket = client.openDatagramSocket("echo.test", echo.port);
          const { readable, writable, localPort } = await socket.opened;
          if (!(localPort > 0)) throw new Error(`local port ${localPort}`);
          const writer = writable.getWriter();
          await writer.write(new TextEncoder().encode("first"));
          await writer.write("second");
          await writer.write({ data: "third", remoteAddress: "127.0.0.1", remotePort: other.port });
          const reader = readable.getReader();
          const got: [string, string, number][] = [];
          while (got.length < 3) {
            const { value, done } = await reader.read();
            if (done) break;
            got.push([text(value.data), value.remoteAddress, value.remotePort]);
          }
          got.sort((a, b) => a[0].localeCompare(b[0]));
          assertEquals(got, [
            ["first", "echo.test", echo.port],
            ["second", "echo.test", echo.port],
            ["third", "127.0.0.1", other.port],
          ]);
          assertEquals(echo.received.map((r) => r.port), [localPort, localPort]);
          reader.releaseLock();
          writer.releaseLock();
          await socket.close();
          await socket.closed;
          const denied = client.openDatagramSocket("inside.test", 53);
          assertEquals((await rejection(denied.opened)).kind, "denied");
          assertEquals((await rejection(denied.closed)).kind, "denied");
        } finally {
          await client.disconnect();
        }
      });
    } finally {
      await echo.close();
      await other.close();
    }
  });

  Deno.test(`client ${framing}: a datagram socket's full readable drops new datagrams instead of growing`, async () => {
    const echo = await startUdpPeer();
    try {
      await withServer(undefined, async (server) => {
        const client = new WasmnetClient(server.url, { binary });
        try {
          await client.ready();
          const socket = client.openDatagramSocket("127.0.0.1", echo.port, { readableHighWaterMark: 2 });
          const { readable, writable } = await socket.opened;
          const writer = writable.getWriter();
          for (let i = 0; i < 5; i++) await writer.write(String(i));
          await until(() => echo.received.length === 5 && socket.dropped === 3, "3 dropped");
          const reader = readable.getReader();
          const first = await reader.read();
          const second = await reader.read();
          assertEquals([text(first.value!.data), text(second.value!.data)].length, 2);
          reader.releaseLock();
          writer.releaseLock();
          await socket.close();
        } finally {
          await client.disconnect();
        }
      });
    } finally {
      await echo.close();
    }
  });

  Deno.test(`client ${framing}: connectTls fetches plaintext; a bad certificate rejects with TLS_FAILED`, async () => {
    const pki = await makeTestPki();
    const good = startTlsServer(pki.good);
    const bad = startTlsServer(pki.expired);
    try {
      await withServer(pki, async (server) => {
        const client = new WasmnetClient(server.url, { binary });
        try {
          await client.ready();
          const id = await client.connectTls("tls.test", good.port);
          const got: string[] = [];
          client.onData(id, (d) => got.push(text(d)));
          client.send(id, "ping over TLS");
          await until(() => got.join("") === "ping over TLS", "TLS echo");
          await client.close(id);

          const socket = client.openSocket("tls.test", good.port, { tls: true });
          const { readable, writable } = await socket.opened;
          const writer = writable.getWriter();
          await writer.write(new TextEncoder().encode("stream ping"));
          const reader = readable.getReader();
          let echoed = "";
          while (echoed.length < 11) {
            const { value, done } = await reader.read();
            if (done) break;
            echoed += text(value);
          }
          assertEquals(echoed, "stream ping");
          reader.releaseLock();
          writer.releaseLock();
          await socket.close();

          const failed = await rejection(client.connectTls("tls.test", bad.port));
          assertEquals(failed.kind, "failed");
          if (!binary) assertEquals(failed.code, "TLS_FAILED");
        } finally {
          await client.disconnect();
        }
      });
    } finally {
      await good.close();
      await bad.close();
      await pki.remove();
    }
  });
}
