/**
 * Run by ipv6_prefix_test.ts inside a network namespace of its own, where `lo` holds fd00::1 to fd00::9 (one
 * /64): a server on fd00::1 with `max_handshakes_per_ip = 2`, and idle connections from different addresses
 * of that /64. Prints the HTTP status each connection got (0: none, still held) as one JSON line.
 *
 * @module
 */

import net from "node:net";
import { Policy } from "../../src/policy/mod.ts";
import { Server } from "../../src/server.ts";

const policy = Policy.fromConfig({ server: { max_handshakes_per_ip: 2, header_timeout_secs: 5 } });
const server = Server.builder().host("fd00::1").port(0).policy(policy).log(() => {}).build();
const ac = new AbortController();
const running = await server.serve({ signal: ac.signal });

/** An idle connection from `localAddress`: resolves with the status the server sent within 1 s, else 0. */
function idle(localAddress: string): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "fd00::1", port: running.addr.port, localAddress });
    let got = "";
    const timer = setTimeout(() => resolve({ status: 0, socket }), 1000);
    socket.on("data", (chunk) => {
      got += chunk.toString("latin1");
      clearTimeout(timer);
      resolve({ status: Number(got.split(" ")[1]), socket });
    });
    socket.on("error", () => {});
  });
}

const held = [];
for (const address of ["fd00::2", "fd00::3", "fd00::4", "fd00::5"]) held.push(await idle(address));
console.log(JSON.stringify(held.map((h) => h.status)));
for (const h of held) h.socket.destroy();
ac.abort();
await running.finished;
