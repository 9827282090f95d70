import assert from "node:assert/strict";
import { parseTargetPath, truncateReason } from "./websockify.ts";

Deno.test("parseTargetPath: /tcp/HOST:PORT in every form a page writes it", () => {
  const table: [string, unknown][] = [
    ["/tcp/example.com:6667", { host: "example.com", port: 6667 }],
    ["/tcp/127.0.0.1:80/", { host: "127.0.0.1", port: 80 }],
    ["/tcp/[::1]:443", { host: "::1", port: 443 }],
    ["/tcp/%5B2001%3Adb8%3A%3A1%5D%3A22", { host: "2001:db8::1", port: 22 }],
    ["/tcp/example.com", { problem: 'expected /tcp/HOST:PORT (IPv6 as [ADDR]:PORT), got "example.com"' }],
    ["/tcp/example.com:0", { problem: "port must be 1-65535, got 0" }],
    ["/tcp/example.com:70000", { problem: "port must be 1-65535, got 70000" }],
    ["/tcp/::1:80", { problem: 'expected /tcp/HOST:PORT (IPv6 as [ADDR]:PORT), got "::1:80"' }],
    ["/tcp/a/b:80", { problem: 'expected /tcp/HOST:PORT (IPv6 as [ADDR]:PORT), got "a/b:80"' }],
    ["/tcp/%E0%A4%A:80", { problem: "path is not valid percent-encoding" }],
    ["/other/x:1", { problem: "path must start with /tcp/" }],
  ];
  for (const [path, expected] of table) assert.deepEqual(parseTargetPath(path), expected, path);
});

Deno.test("truncateReason: close reasons fit 123 bytes without splitting a character", () => {
  assert.equal(truncateReason("short"), "short");
  const long = "é".repeat(100);
  const cut = truncateReason(long);
  assert.ok(new TextEncoder().encode(cut).length <= 123);
  assert.ok(cut.endsWith("..."));
  assert.ok(!cut.includes("\uFFFD"));
});
