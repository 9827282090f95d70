/**
 * The TCP targets every contender relays to, in their own process so their CPU is not the server's. One
 * port; the first byte a connection sends picks the work:
 *
 * - `E` echo: every byte back.
 * - `D` + 8-byte big-endian N: the target sends N bytes, then waits for the client to close.
 * - `U` + 8-byte big-endian N: the target reads N bytes, then sends one byte `K` and closes.
 *
 * Prints `{"port":N}` on stdout once listening; runs until killed.
 *
 * @module
 */

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(JSON.stringify({ port: listener.addr.port }));

const BLOCK = new Uint8Array(256 * 1024).fill(0x61);

async function readExactly(conn: Deno.Conn, buf: Uint8Array): Promise<boolean> {
  let at = 0;
  while (at < buf.length) {
    const n = await conn.read(buf.subarray(at));
    if (n === null) return false;
    at += n;
  }
  return true;
}

async function handle(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const mode = new Uint8Array(1);
  if (!await readExactly(conn, mode)) return;
  if (mode[0] === 0x45) { // E
    const buf = new Uint8Array(256 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      let at = 0;
      while (at < n) at += await conn.write(buf.subarray(at, n));
    }
  }
  const header = new Uint8Array(8);
  if (!await readExactly(conn, header)) return;
  let left = Number(new DataView(header.buffer).getBigUint64(0));
  if (mode[0] === 0x44) { // D
    while (left > 0) left -= await conn.write(BLOCK.subarray(0, Math.min(BLOCK.length, left)));
    // Stay open until the client closes: websockify drops data still in flight when the target closes.
    await conn.read(new Uint8Array(1));
  } else if (mode[0] === 0x55) { // U
    const buf = new Uint8Array(256 * 1024);
    while (left > 0) {
      const n = await conn.read(buf);
      if (n === null) return;
      left -= n;
    }
    await conn.write(new Uint8Array([0x4b]));
  }
}

for await (const conn of listener) {
  handle(conn).catch(() => {}).finally(() => {
    try {
      conn.close();
    } catch {
      // closed
    }
  });
}
