import assert from "node:assert/strict";
import { WasmnetError } from "../errors.ts";
import { Policy } from "../../policy/mod.ts";
import { caCertsFor, serverNameFor } from "./tls.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Deno.test("tls: the name checked is the canonical IP or the normalised host name", () => {
  assert.equal(serverNameFor("Example.COM."), "example.com");
  assert.equal(serverNameFor("0x7f.1"), "127.0.0.1");
  assert.equal(serverNameFor("[::1]"), "::1");
});

Deno.test("tls: CA files are read once per policy and cached", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/ca.pem`;
    await Deno.writeTextFile(file, PEM);
    const policy = Policy.fromConfig({ tls: { ca_files: [file] } });
    assert.deepEqual(await caCertsFor(policy), [PEM]);
    await Deno.remove(file);
    assert.deepEqual(await caCertsFor(policy), [PEM], "the second call does not read the file again");
    assert.deepEqual(await caCertsFor(Policy.defaults()), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls: a missing or non-PEM CA file is TLS_FAILED", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/junk.pem`, "not a certificate");
    for (const file of [`${dir}/missing.pem`, `${dir}/junk.pem`]) {
      const policy = Policy.fromConfig({ tls: { ca_files: [file] } });
      await assert.rejects(
        caCertsFor(policy),
        (e) => e instanceof WasmnetError && e.code === "TLS_FAILED" && e.message.includes(file),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
