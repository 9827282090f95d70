/**
 * A WebSocket client by hand over raw TCP, for what a normal client cannot do: send any header (Origin),
 * see the HTTP status of a refused upgrade, and stop reading altogether (to fill the server's buffers).
 *
 * @module
 */

/** The server's answer to a handshake, and the open connection when it was 101. */
export interface RawHandshake {
  status: number;
  headers: string;
  conn: Deno.TcpConn;
  /** Bytes read past the end of the headers (the start of the first frames). */
  rest: Uint8Array;
}

/**
 * A session the server answered with 101, after 300 ms for the server's own start-up work to settle, so an
 * RSS baseline taken next is the session's, not the start-up's. Throws if the upgrade was refused.
 */
export async function settledSession(port: number, path = "/"): Promise<RawHandshake> {
  const h = await rawHandshake(port, path);
  if (h.status !== 101) throw new Error(`upgrade to ${path} answered ${h.status}, not 101`);
  await new Promise((r) => setTimeout(r, 300));
  return h;
}

/** Sends a WebSocket upgrade with `headers` and reads the status line and headers. The caller closes `conn`. */
export async function rawHandshake(
  port: number,
  path = "/",
  headers: Record<string, string> = {},
): Promise<RawHandshake> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    `Sec-WebSocket-Key: ${crypto.getRandomValues(new Uint8Array(16)).toBase64()}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  await write(conn, new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  let got = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    const next = new Uint8Array(got.length + n);
    next.set(got);
    next.set(buf.subarray(0, n), got.length);
    got = next;
    const text = new TextDecoder().decode(got);
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = text.slice(0, end);
      const status = Number(head.split(" ")[1]);
      return { status, headers: head, conn, rest: got.subarray(new TextEncoder().encode(head).length + 4) };
    }
  }
  return { status: 0, headers: "", conn, rest: got };
}

/** Only the status of a handshake (the connection is closed). */
export async function handshakeStatus(port: number, path = "/", headers: Record<string, string> = {}) {
  const h = await rawHandshake(port, path, headers);
  h.conn.close();
  return h.status;
}

/** A masked client frame (text opcode 1, binary 2) carrying `payload`. */
export function clientFrame(opcode: 1 | 2 | 8, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + 4 + len);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (ext === 2) view.setUint16(2, len);
  if (ext === 8) view.setBigUint64(2, BigInt(len));
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, 2 + ext);
  for (let i = 0; i < len; i++) out[2 + ext + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/** Writes all of `bytes`. */
export async function write(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
}

/** One frame from the server (opcode and payload). */
export interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

/** The whole server frames at the start of `bytes` (unmasked, lengths up to 16 bits here), and the rest. */
export function serverFrames(bytes: Uint8Array): { frames: ServerFrame[]; rest: Uint8Array } {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (bytes.length - at >= 2) {
    let len = bytes[at + 1] & 0x7f, head = 2;
    if (len === 126) {
      if (bytes.length - at < 4) break;
      len = (bytes[at + 2] << 8) | bytes[at + 3];
      head = 4;
    }
    if (bytes.length - at < head + len) break;
    frames.push({ opcode: bytes[at] & 0x0f, payload: bytes.slice(at + head, at + head + len) });
    at += head + len;
  }
  return { frames, rest: bytes.slice(at) };
}
