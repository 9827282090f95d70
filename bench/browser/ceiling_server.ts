/**
 * The page's own WebSocket ceiling: a WebSocket server with no TCP behind it, so a browser bench can tell
 * what the page itself can send and receive. `deno run --allow-net bench/browser/ceiling_server.ts <port>`.
 *
 * The first message on each WebSocket (text) picks the work, like the TCP targets' first byte:
 * - `D <n>`: the server sends `n` bytes in 64 KiB binary messages (keeping its buffer under 8 MiB).
 * - `U <n>`: the server counts `n` bytes of binary messages, then sends one byte `K`.
 * - `E`: every binary message back.
 *
 * @module
 */

const port = Number(Deno.args[0]);
const BLOCK = new Uint8Array(64 * 1024).fill(0x61);
const HIGH = 8 * 1024 * 1024;

/** Sends `n` bytes in 64 KiB messages, waiting while the socket's buffer is over {@link HIGH}. */
async function sendBulk(socket: WebSocket, n: number): Promise<void> {
  let left = n;
  while (left > 0 && socket.readyState === WebSocket.OPEN) {
    const size = Math.min(BLOCK.length, left);
    socket.send(size === BLOCK.length ? BLOCK : BLOCK.subarray(0, size));
    left -= size;
    // Deno has no drain event; a 1 ms timer (about 2 ms in Deno) is the same poll the relays use.
    while (socket.bufferedAmount > HIGH) await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log(JSON.stringify({ port })) }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  let mode: "D" | "U" | "E" | undefined;
  let left = 0;
  socket.onmessage = (e) => {
    if (mode === undefined) {
      const [m, n] = String(e.data).split(" ");
      if (m !== "D" && m !== "U" && m !== "E") return socket.close(1008, "unknown mode");
      mode = m;
      left = Number(n ?? 0);
      if (mode === "D") sendBulk(socket, left).catch(() => {});
      return;
    }
    if (mode === "E") socket.send(e.data);
    else if (mode === "U") {
      left -= (e.data as ArrayBuffer).byteLength;
      if (left <= 0) socket.send(new Uint8Array([0x4b]));
    }
  };
  socket.onerror = () => {};
  return response;
});
