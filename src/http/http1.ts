/**
 * Just enough HTTP/1.1 for a WebSocket server that owns its connections: read one request head (bounded
 * in bytes, the caller bounds it in time), turn it into a `Request`, and write a plain `Response` back
 * (`Connection: close`: one request per connection, no bodies read). Pure parsing lives in
 * {@link parseRequestHead} (table-tested); the rest is a thin shell over a `Deno.Conn`.
 *
 * @module
 */

/** Largest request head accepted (request line and headers); a larger one gets 431. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Longest request target accepted; a longer one gets 414 (RFC 9112 §3). */
export const MAX_TARGET = 8192;
/** Most header lines accepted. */
export const MAX_HEADER_COUNT = 100;

/** A parsed request head. */
export interface RequestHead {
  method: string;
  target: string;
  headers: Headers;
}

/** Why a head was refused: the HTTP status to answer with. */
export interface HeadError {
  status: 400 | 414 | 431 | 505;
  reason: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Parses the head `text` (up to, not including, the blank line). Strict: anything odd is a 400. */
export function parseRequestHead(text: string): RequestHead | HeadError {
  const lines = text.split("\r\n");
  // The target is visible ASCII (RFC 3986 characters; Deno.serve refuses controls and bytes over 0x7e too).
  const requestLine = /^([A-Z]{1,16}) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/.exec(lines[0]);
  if (!requestLine) return { status: 400, reason: "bad request line" };
  if (requestLine[2].length > MAX_TARGET) return { status: 414, reason: "request target too long" };
  if (requestLine[3] !== "1") return { status: 505, reason: "HTTP/1.x only" };
  if (lines.length - 1 > MAX_HEADER_COUNT) return { status: 431, reason: "too many headers" };
  const headers = new Headers();
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    if (colon <= 0) return { status: 400, reason: "bad header line" };
    const name = lines[i].slice(0, colon);
    // Only SP and HTAB are optional whitespace (RFC 9110 §5.6.3); String.trim would also eat controls and
    // NBSP, so `Origin: https://a.example\xa0` would pass for that origin.
    const value = lines[i].slice(colon + 1).replace(OWS_EDGES, "");
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return { status: 400, reason: "bad header" };
    const lower = name.toLowerCase();
    if (lower === "host" && headers.has("host")) return { status: 400, reason: "more than one Host" };
    // The server reads no bodies: a body's bytes would be taken for the WebSocket's first frames.
    if (lower === "transfer-encoding" || (lower === "content-length" && value !== "0")) {
      return { status: 400, reason: "a request body is not accepted" };
    }
    try {
      headers.append(name, value);
    } catch {
      return { status: 400, reason: "bad header" };
    }
  }
  return { method: requestLine[1], target: requestLine[2], headers };
}

const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

/** True for a {@link HeadError}. */
export function isHeadError<T extends object>(head: T | HeadError): head is HeadError {
  return "status" in head && "reason" in head;
}

/**
 * Reads one request head from `conn`: the head and the bytes read past it, a {@link HeadError}, or null
 * when the connection ended first. Never holds more than {@link MAX_HEAD_BYTES} plus one read.
 */
export async function readRequestHead(
  conn: Deno.Conn,
): Promise<{ head: RequestHead; rest: Uint8Array } | HeadError | null> {
  // Read straight into one buffer that doubles as it fills (a head trickled a byte at a time costs linear
  // work, not a copy of everything so far per read), at most MAX_HEAD_BYTES plus one read.
  let got = new Uint8Array(READ_BYTES);
  let length = 0;
  for (;;) {
    if (got.length - length < READ_BYTES) {
      const grown = new Uint8Array(Math.min(2 * got.length, MAX_HEAD_BYTES + 4 + READ_BYTES));
      grown.set(got.subarray(0, length));
      got = grown;
    }
    const n = await conn.read(got.subarray(length, length + READ_BYTES));
    if (n === null) return null;
    const end = indexOfBlankLine(got.subarray(0, length + n), Math.max(0, length - 3));
    length += n;
    if (end >= 0) {
      if (end > MAX_HEAD_BYTES) return { status: 431, reason: "request head too large" };
      // latin1: header bytes map one to one onto characters, as Headers expects
      const head = parseRequestHead(new TextDecoder("latin1").decode(got.subarray(0, end)));
      if (isHeadError(head)) return head;
      return { head, rest: got.slice(end + 4, length) };
    }
    if (length > MAX_HEAD_BYTES) return { status: 431, reason: "request head too large" };
  }
}

/** Bytes asked of one `read` while reading a head. */
const READ_BYTES = 4096;

function indexOfBlankLine(bytes: Uint8Array, from: number): number {
  for (let i = from; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

/** The `Request` for a head that arrived on a connection to `localHost` (the URL's host when none is sent). */
export function toRequest(head: RequestHead, localHost: string): Request {
  const host = head.headers.get("host") ?? localHost;
  // The target as sent (as Deno.serve has it): resolving it against the host instead would read
  // `//evil/tcp/x` as host `evil`, path `/tcp/x`, routing past a proxy that matched on the path it saw.
  // An absolute-form target (RFC 9112 §3.2.2, from forward proxies) is routed by its path; the host stays
  // the Host header's (only the path and query are read). Anything else that is not origin-form: "/".
  const absolute = /^(?:https?|wss?):\/\/[^/?#]*(.*)$/i.exec(head.target);
  const rest = absolute ? absolute[1] : head.target;
  const path = rest.startsWith("/") ? rest : absolute && rest.startsWith("?") ? `/${rest}` : "/";
  return new Request(new URL(`http://${hostForUrl(host, localHost)}${path}`), {
    method: head.method,
    headers: head.headers,
  });
}

/** A Host header usable in a URL; anything unparsable falls back to the listener's address. */
function hostForUrl(host: string, fallback: string): string {
  try {
    return new URL(`http://${host}/`).host;
  } catch {
    return fallback;
  }
}

const STATUS_TEXT: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  414: "URI Too Long",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** Largest response body written (the server's own answers are a line of text). */
const MAX_RESPONSE_BODY = 1024 * 1024;

/** Serializes `response` (status, headers, body up to 1 MiB) with `Connection: close`. */
export async function encodeResponse(response: Response, method = "GET"): Promise<Uint8Array> {
  const body = method === "HEAD" ? new Uint8Array(0) : new Uint8Array(await response.arrayBuffer());
  const clipped = body.subarray(0, MAX_RESPONSE_BODY);
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? "Status"}`];
  for (const [name, value] of response.headers) {
    if (name === "content-length" || name === "connection" || name === "transfer-encoding") continue;
    lines.push(`${name}: ${value}`);
  }
  lines.push(`content-length: ${clipped.length}`, "connection: close");
  const head = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(head.length + clipped.length);
  out.set(head);
  out.set(clipped, head.length);
  return out;
}

/** The plain status answer for a refused head or connection. */
export function statusResponse(status: number, reason: string): Uint8Array {
  const body = `wasmnet: ${reason}\n`;
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Writes all of `bytes` (or gives up when the connection fails). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
}
