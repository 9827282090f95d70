import assert from "node:assert/strict";
import { toWasmnetError, WasmnetError } from "./errors.ts";

Deno.test("errors: a Deno permission refusal names the sandbox and the resource, not Deno's advice", () => {
  const cases: [Error, string][] = [
    [
      new Deno.errors.NotCapable('Requires net access to "10.1.2.3:80", run again with the --allow-net flag'),
      'net access to "10.1.2.3:80"',
    ],
    [new Deno.errors.PermissionDenied("Requires read access to /etc/hosts"), "read access to /etc/hosts"],
    [new Deno.errors.NotCapable("something else"), "this access"],
  ];
  for (const [err, resource] of cases) {
    const mapped = toWasmnetError(err);
    assert.ok(mapped instanceof WasmnetError);
    assert.equal(mapped.code, "PERMISSION_DENIED");
    assert.ok(mapped.message.endsWith(resource), mapped.message);
    assert.match(mapped.message, /--deny-net/);
    assert.doesNotMatch(mapped.message, /run again/);
    assert.equal(mapped.cause, err);
  }
});

Deno.test("errors: other errors keep their message under the fallback code", () => {
  const mapped = toWasmnetError(new Error("boom"), "CONNECT_FAILED");
  assert.equal(mapped.code, "CONNECT_FAILED");
  assert.equal(mapped.message, "boom");
  const kept = new WasmnetError("BUFFER_FULL", "full");
  assert.equal(toWasmnetError(kept), kept);
});
