import assert from "node:assert/strict";
import { encodeResponse, isHeadError, parseRequestHead, toRequest } from "./http1.ts";

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
