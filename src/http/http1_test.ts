import assert from "node:assert/strict";
import { encodeResponse, isHeadError, parseRequestHead, readRequestHead, toRequest } from "./http1.ts";

Deno.test("request heads: a good upgrade parses; odd ones are refused with a status", () => {
  const ok = parseRequestHead("GET /wisp/ HTTP/1.1\r\nHost: a:1\r\nUpgrade: websocket\r\nX: 1\r\nx: 2");
  assert.ok(!isHeadError(ok));
  assert.equal(ok.method, "GET");
  assert.equal(ok.target, "/wisp/");
  assert.equal(ok.headers.get("x"), "1, 2");
  const refused: [string, number][] = [
    ["GET / HTTP/2.0", 505],
    ["GET  / HTTP/1.1", 400],
    ["get / HTTP/1.1", 400],
    ["GET / HTTP/1.1\r\nNo colon", 400],
    ["GET / HTTP/1.1\r\n: empty name", 400],
    ["GET / HTTP/1.1\r\nBad Name: x", 400],
    ["GET / HTTP/1.1\r\nX: a\x00b", 400],
    ["GET / HTTP/1.1" + "\r\nX: y".repeat(101), 431],
  ];
  for (const [text, status] of refused) {
    const head = parseRequestHead(text);
    assert.ok(isHeadError(head), JSON.stringify(text));
    assert.equal(head.status, status, JSON.stringify(text));
  }
});

Deno.test("toRequest: path and Host kept; a bad Host or absolute target falls back", () => {
  const head = parseRequestHead("GET /tcp/a:1?token=x HTTP/1.1\r\nHost: example.com:9000");
  assert.ok(!isHeadError(head));
  assert.equal(toRequest(head, "127.0.0.1:1").url, "http://example.com:9000/tcp/a:1?token=x");
  const bad = parseRequestHead("GET http://evil/ HTTP/1.1\r\nHost: a b");
  assert.ok(!isHeadError(bad));
  assert.equal(toRequest(bad, "127.0.0.1:1").url, "http://127.0.0.1:1/");
});

Deno.test("responses: status line, headers, length, close", async () => {
  const bytes = await encodeResponse(new Response("no\n", { status: 404, headers: { "x-a": "b" } }));
  const text = new TextDecoder().decode(bytes);
  assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(text, /x-a: b\r\n/);
  assert.match(text, /content-length: 3\r\nconnection: close\r\n\r\nno\n$/);
});

Deno.test("request heads: what would make the request ambiguous is refused (RFC 9112)", () => {
  const refused: [string, number][] = [
    // Two Host lines: which authority is meant? (RFC 9112 §3.2: MUST answer 400; Deno.serve does too.)
    ["GET / HTTP/1.1\r\nHost: a\r\nHost: b", 400],
    ["GET / HTTP/1.1\r\nhost: a\r\nHOST: a", 400],
    // A body: the server reads none, so its bytes would be taken for WebSocket frames.
    ["GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5", 400],
    // Controls other than HTAB are not field content, at the edges of a value either (they were trimmed).
    ["GET / HTTP/1.1\r\nHost: a\r\nOrigin: \x0bhttps://a.example", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\x0c", 400],
    // obs-fold, bare CR, space before the colon.
    ["GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2", 400],
    ["GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2", 400],
    ["GET / HTTP/1.1\r\nHost : a", 400],
  ];
  for (const [text, status] of refused) {
    const head = parseRequestHead(text);
    assert.ok(isHeadError(head), JSON.stringify(text));
    assert.equal(head.status, status, JSON.stringify(text));
  }
  const fine = parseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX:\t v \t");
  assert.ok(!isHeadError(fine));
  assert.equal(fine.headers.get("x"), "v", "only SP and HTAB are trimmed");
  // A byte like NBSP (0xa0, obs-text) is content: kept, so `Origin: https://a.example\xa0` is not that origin.
  const nbsp = parseRequestHead("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\xa0");
  assert.ok(!isHeadError(nbsp));
  assert.notEqual(nbsp.headers.get("origin"), "https://a.example");
});

Deno.test("toRequest: the path is the target as sent, as Deno.serve has it (`//x/tcp/...` is not `/tcp/...`)", () => {
  for (const target of ["//evil/tcp/10.0.0.1:22", "//evil:1/wisp/", "/\\evil/tcp/a:1"]) {
    const head = parseRequestHead(`GET ${target} HTTP/1.1\r\nHost: h:1`);
    assert.ok(!isHeadError(head));
    const url = new URL(toRequest(head, "127.0.0.1:1").url);
    assert.equal(url.host, "h:1", target);
    assert.ok(url.pathname.startsWith("//"), `${target} -> ${url.pathname}`);
  }
});

/** A `Deno.Conn` that hands out `bytes` `step` bytes per read. */
function trickle(bytes: Uint8Array, step: number): Deno.Conn {
  let at = 0;
  return {
    read(buf: Uint8Array) {
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(step, buf.length, bytes.length - at);
      buf.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  } as unknown as Deno.Conn;
}

Deno.test("readRequestHead: any read size; bytes after the head (the first frames) are kept; 431 past 16 KiB", async () => {
  const enc = new TextEncoder();
  const head = "GET /x HTTP/1.1\r\nHost: a\r\nX-Pad: " + "v".repeat(9000) + "\r\n\r\n";
  for (const step of [1, 3, 4096, 100_000]) {
    const read = await readRequestHead(trickle(enc.encode(head + "FRAMES"), step));
    assert.ok(read !== null && !isHeadError(read), `step ${step}`);
    assert.equal(read.head.headers.get("x-pad")?.length, 9000);
    // What came in the read that ended the head is kept for the WebSocket (small reads: a part of it).
    const rest = new TextDecoder("latin1").decode(read.rest);
    assert.ok("FRAMES".startsWith(rest), `step ${step}`);
    if (step >= 4096) assert.equal(rest, "FRAMES", `step ${step}`);
  }
  const big = "GET / HTTP/1.1\r\nX: " + "v".repeat(17_000) + "\r\n\r\n";
  for (const step of [1, 4096]) {
    const read = await readRequestHead(trickle(enc.encode(big), step));
    assert.ok(read !== null && isHeadError(read) && read.status === 431, `step ${step}`);
  }
  assert.equal(await readRequestHead(trickle(enc.encode("GET / HTTP/1.1\r\n"), 5)), null, "ended first");
});

Deno.test("request heads: the target is visible ASCII (a raw control or non-ASCII byte is a 400, as Deno.serve has it)", () => {
  for (const target of ["/\x00", "/a\x01b", "/\x7f", "/\xe9", "/tcp/a\x1b:1"]) {
    const head = parseRequestHead(`GET ${target} HTTP/1.1\r\nHost: a`);
    assert.ok(isHeadError(head) && head.status === 400, JSON.stringify(target));
  }
  const ok = parseRequestHead("GET /tcp/%00?x=%e9&y=~!$&'()*+,;=:@ HTTP/1.1\r\nHost: a");
  assert.ok(!isHeadError(ok));
});

Deno.test("request heads: a target over 8 KiB is 414 URI Too Long (RFC 9112 §3), not a plain 400", () => {
  const head = parseRequestHead(`GET /${"a".repeat(8192)} HTTP/1.1\r\nHost: a`);
  assert.ok(isHeadError(head) && head.status === 414);
  assert.ok(!isHeadError(parseRequestHead(`GET /${"a".repeat(8191)} HTTP/1.1\r\nHost: a`)));
});

Deno.test("toRequest: an absolute-form target is routed by its path, as Deno.serve routes it (RFC 9112 §3.2.2)", () => {
  const cases: [string, string][] = [
    ["http://other:5/wisp/?q=1", "/wisp/?q=1"],
    ["HTTP://other/tcp/a:1", "/tcp/a:1"],
    ["ws://other?x", "/?x"],
    ["http://other", "/"],
  ];
  for (const [target, path] of cases) {
    const head = parseRequestHead(`GET ${target} HTTP/1.1\r\nHost: h:1`);
    assert.ok(!isHeadError(head));
    const url = new URL(toRequest(head, "127.0.0.1:1").url);
    assert.equal(url.pathname + url.search, path, target);
  }
});
