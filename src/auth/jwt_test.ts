import assert from "node:assert/strict";
import {
  Authenticator,
  importHs256Key,
  narrowingFromClaims,
  signHs256,
  TokenError,
  verifyHs256,
} from "./mod.ts";
import { encodeBase64Url } from "./jwt.ts";

const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef");
const NOW = 1_800_000_000;

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TokenError, String(err));
    return err.reason;
  }
  assert.fail("expected a TokenError");
}

Deno.test("a good token verifies and returns its payload", async () => {
  const key = await importHs256Key(SECRET);
  const token = await signHs256({ sub: "u1", exp: NOW + 60 }, key);
  assert.deepEqual(await verifyHs256(token, key, NOW), { sub: "u1", exp: NOW + 60 });
});

Deno.test("bad signature, other key, tampered payload, alg none, expired, no exp, nbf, malformed", async () => {
  const key = await importHs256Key(SECRET);
  const other = await importHs256Key(new TextEncoder().encode("another secret that is 32 bytes!"));
  const good = await signHs256({ exp: NOW + 60 }, key);
  const [h, , s] = good.split(".");
  const tampered = `${h}.${
    encodeBase64Url(new TextEncoder().encode(JSON.stringify({ exp: NOW + 9999 })))
  }.${s}`;
  const none = `${encodeBase64Url(new TextEncoder().encode('{"alg":"none"}'))}.${good.split(".")[1]}.`;
  assert.equal(
    await refusal(verifyHs256(await signHs256({ exp: NOW + 60 }, other), key, NOW)),
    "bad_signature",
  );
  assert.equal(await refusal(verifyHs256(tampered, key, NOW)), "bad_signature");
  assert.equal(await refusal(verifyHs256(none, key, NOW)), "malformed");
  assert.equal(await refusal(verifyHs256(await signHs256({ exp: NOW - 60 }, key), key, NOW)), "expired");
  assert.equal(await refusal(verifyHs256(await signHs256({ sub: "x" }, key), key, NOW)), "expired");
  assert.equal(
    await refusal(verifyHs256(await signHs256({ exp: NOW + 60, nbf: NOW + 30 }, key), key, NOW)),
    "not_yet_valid",
  );
  for (const junk of ["", "a.b", "a.b.c.d", "###.a.b", `${h}.%%%.${s}`, "x".repeat(9000)]) {
    assert.ok(
      ["malformed", "bad_signature"].includes(await refusal(verifyHs256(junk, key, NOW))),
      junk.slice(0, 20),
    );
  }
});

Deno.test("claims become a narrowing; unknown keys and bad values refuse the token", () => {
  const n = narrowingFromClaims({
    wasmnet: { targets: ["example.com:443", "10.0.0.0/8"], max_connections: 3, max_bandwidth_mbps: 2 },
  });
  assert.equal(n.source, "token");
  assert.deepEqual(n.targets?.map((r) => r.text), ["example.com:443", "10.0.0.0/8"]);
  assert.equal(n.max_connections, 3);
  assert.equal(n.max_bandwidth_mbps, 2);
  assert.deepEqual(narrowingFromClaims({ sub: "x" }), { source: "token" });
  for (
    const bad of [
      { wasmnet: 3 },
      { wasmnet: { target: ["x"] } },
      { wasmnet: { targets: "x" } },
      { wasmnet: { targets: ["a b"] } },
      { wasmnet: { max_connections: 0 } },
      { wasmnet: { max_connections: 1.5 } },
    ]
  ) {
    assert.throws(
      () => narrowingFromClaims(bad),
      (e) => e instanceof TokenError && e.reason === "bad_claims",
    );
  }
});

Deno.test("Authenticator: missing token refused only when required; tokens ignored without a secret", async () => {
  const required = new Authenticator(SECRET, true);
  assert.equal(await refusal(required.check("")), "missing");
  const optional = new Authenticator(SECRET, false);
  assert.equal(await optional.check(""), null);
  const key = await importHs256Key(SECRET);
  const narrowing = await optional.check(
    await signHs256({ exp: Date.now() / 1000 + 60, wasmnet: { max_connections: 2 } }, key),
  );
  assert.equal(narrowing?.max_connections, 2);
  assert.equal(await new Authenticator(null, false).check("whatever"), null);
});

Deno.test("base64url is decoded strictly: unused low bits set in the last character refuse the token", async () => {
  const key = await importHs256Key(SECRET);
  const token = await signHs256({ exp: NOW + 60 }, key);
  assert.deepEqual(await verifyHs256(token, key, NOW), { exp: NOW + 60 });
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // The 32-byte signature is 43 characters: its last one carries 4 bits of data and 2 unused ones.
  const [head, body, sig] = token.split(".");
  const last = ALPHABET.indexOf(sig.at(-1)!);
  assert.equal(last & 3, 0, "a canonical encoder leaves the unused bits zero");
  for (const extra of [1, 2, 3]) {
    const respelt = `${head}.${body}.${sig.slice(0, -1)}${ALPHABET[last | extra]}`;
    assert.notEqual(respelt, token);
    assert.equal(await refusal(verifyHs256(respelt, key, NOW)), "bad_signature", `extra bits ${extra}`);
  }
  // A part of length 4n+1 can never be base64url.
  assert.equal(await refusal(verifyHs256(`${head}.${body}.${sig}A`, key, NOW)), "bad_signature");
});

Deno.test("several tokens: each must be valid, and all their narrowings apply", async () => {
  const key = await importHs256Key(SECRET);
  const auth = new Authenticator(SECRET, true);
  const good = await signHs256({ exp: NOW + 60, wasmnet: { max_connections: 3 } }, key);
  const other = await signHs256({ exp: NOW + 60, wasmnet: { max_connections: 5 } }, key);
  const expired = await signHs256({ exp: NOW - 600 }, key);
  assert.equal(await refusal(auth.verifyAll([good, expired], NOW)), "expired");
  assert.equal(await refusal(auth.verifyAll([expired, good], NOW)), "expired");
  assert.equal((await auth.verifyAll([good, other], NOW)).narrowings.length, 2);
  assert.equal(await refusal(auth.verifyAll([good, good, good], NOW)), "malformed");
});
