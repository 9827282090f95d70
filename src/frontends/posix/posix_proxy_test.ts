import assert from "node:assert/strict";
import { type ErrorCode, WasmnetError } from "../../core/errors.ts";
import { Policy } from "../../policy/mod.ts";
import { Errno } from "./posix_codec.ts";
import { CallIds, errnoForError, lookupProbePorts } from "./posix_proxy.ts";

Deno.test("errnoForError: what a C programmer expects for each failure", () => {
  const table: [ErrorCode, string, number][] = [
    ["POLICY_DENIED", "127.0.0.1:22 is in a blocked range", Errno.EACCES],
    ["PERMISSION_DENIED", "refused by the server's runtime permissions", Errno.EACCES],
    ["CONNECT_TIMEOUT", "timed out after 30000 ms", Errno.ETIMEDOUT],
    [
      "CONNECT_FAILED",
      "cannot connect to 127.0.0.1:1: Connection refused (os error 111)",
      Errno.ECONNREFUSED,
    ],
    [
      "CONNECT_FAILED",
      "cannot connect to 192.0.2.1:80: Network is unreachable (os error 101)",
      Errno.ENETUNREACH,
    ],
    ["CONNECT_FAILED", "cannot connect to 192.0.2.1:80: No route to host (os error 113)", Errno.EHOSTUNREACH],
    ["CONNECT_FAILED", "cannot connect: Connection reset by peer", Errno.ECONNRESET],
    ["BIND_FAILED", "cannot bind 127.0.0.1:80: Address already in use (os error 98)", Errno.EADDRINUSE],
    ["BIND_FAILED", "cannot bind 192.0.2.9:80: Cannot assign requested address", Errno.EADDRNOTAVAIL],
    ["LIMIT_EXCEEDED", "too many connects in flight", Errno.EAGAIN],
    ["INTERNAL", "boom", Errno.EIO],
  ];
  for (const [code, message, errno] of table) {
    assert.equal(errnoForError(new WasmnetError(code, message)), errno, `${code}: ${message}`);
  }
});

Deno.test("CallIds: finds the call id a 3.1.6 client failed to send", () => {
  const ids = new CallIds();
  for (const id of [1, 2, 3]) ids.saw(id);
  assert.equal(ids.guessMissing(), 4, "the next id when nothing is missing");
  ids.saw(5);
  ids.saw(7);
  assert.equal(ids.guessMissing(), 6, "a gap between ids that arrived");
  assert.equal(ids.guessMissing(), 8);
  ids.saw(2); // late duplicate: ignored
  assert.equal(ids.guessMissing(), 9);
  const reopened = new CallIds();
  reopened.saw(57);
  reopened.saw(58);
  assert.equal(reopened.guessMissing(), 59, "a bridge opened again keeps counting from where it was");
});

Deno.test("lookupProbePorts: ports the allow rules name, then 443 and 80", () => {
  assert.deepEqual(lookupProbePorts(Policy.allowAll()), [443, 80]);
  const policy = Policy.fromConfig({
    network: { deny: ["*"], allow: ["irc.example.com:6667", "192.0.2.0/24:22"] },
  });
  assert.deepEqual(lookupProbePorts(policy), [6667, 22, 443, 80]);
});
