import assert from "node:assert/strict";
import { Errno, errnoFor } from "./errno.ts";

Deno.test("errnoFor: client errors map to what a native socket would report", () => {
  const cases: [unknown, Parameters<typeof errnoFor>[1], number][] = [
    [{ kind: "denied", code: "POLICY_DENIED" }, "connect", Errno.ACCES],
    [{ kind: "failed", code: "PERMISSION_DENIED" }, "connect", Errno.ACCES],
    [{ kind: "failed", code: "CONNECT_FAILED" }, "connect", Errno.CONNREFUSED],
    [{ kind: "failed", code: "CONNECT_TIMEOUT" }, "connect", Errno.TIMEDOUT],
    [{ kind: "failed", code: "RESOLVE_FAILED" }, "connect", Errno.HOSTUNREACH],
    [{ kind: "failed", code: "RESOLVE_FAILED" }, "resolve", Errno.NOENT],
    [{ kind: "failed", code: "LIMIT_EXCEEDED" }, "connect", Errno.MFILE],
    [{ kind: "failed", code: "BIND_FAILED" }, "bind", Errno.ADDRINUSE],
    [{ kind: "failed" }, "bind", Errno.ADDRINUSE],
    [{ kind: "failed" }, "stream", Errno.CONNRESET],
    [{ kind: "failed", code: "UNKNOWN_OP" }, "resolve", Errno.NOTSUP],
    [{ kind: "disconnected" }, "connect", Errno.NETDOWN],
    [{ kind: "closed" }, "stream", Errno.CONNRESET],
    [new Error("not a wasmnet error"), "connect", Errno.IO],
    [undefined, "connect", Errno.IO],
  ];
  for (const [error, call, want] of cases) {
    assert.equal(errnoFor(error, call), want, JSON.stringify([error, call]));
  }
});
