import { generateCertificate, GENERATED_VALIDITY_DAYS } from "./certificate.ts";

Deno.test("generateCertificate: openssl reads an ECDSA P-256 certificate valid 13 days for the names", async () => {
  const now = new Date("2026-12-01T12:00:00Z");
  const { cert, key, notAfter } = await generateCertificate(["localhost", "127.0.0.1", "::1"], now);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, cert);
    await Deno.writeTextFile(`${dir}/key.pem`, key);
    const run = async (...args: string[]) => {
      const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
      if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
      return new TextDecoder().decode(out.stdout);
    };
    const text = await run("x509", "-in", `${dir}/cert.pem`, "-noout", "-text");
    for (
      const want of [
        /Signature Algorithm: ecdsa-with-SHA256/,
        /ASN1 OID: prime256v1/,
        /Not Before: Dec {2}1 11:00:00 2026 GMT/,
        /Not After : Dec 14 11:00:00 2026 GMT/,
        /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/,
        /Issuer: CN\s?=\s?wasmnet/,
      ]
    ) {
      if (!want.test(text)) throw new Error(`expected ${want} in:\n${text}`);
    }
    // Self-signed: the signature verifies against its own key; the key is the certificate's.
    await run(
      "verify",
      "-CAfile",
      `${dir}/cert.pem`,
      "-check_ss_sig",
      "-attime",
      String(now.getTime() / 1000),
      `${dir}/cert.pem`,
    );
    const fromCert = await run("x509", "-in", `${dir}/cert.pem`, "-noout", "-pubkey");
    const fromKey = await run("pkey", "-in", `${dir}/key.pem`, "-pubout");
    if (fromCert !== fromKey) throw new Error("the key does not belong to the certificate");
    if (notAfter.getTime() - now.getTime() + 3600_000 !== GENERATED_VALIDITY_DAYS * 86_400_000) {
      throw new Error(`notAfter ${notAfter.toISOString()}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
