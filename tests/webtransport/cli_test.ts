/**
 * `--webtransport` on the command line: usage errors exit 2 with a message, a server without Deno's
 * `--unstable-net` refuses to start (exit 1) saying so, and with it the banner names the UDP port and the
 * certificate's hash, which `/.well-known/wasmnet` advertises.
 */

import { makeWebTransportCert, spawnWebTransportServer } from "./helpers.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function runCli(denoFlags: string[], args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags, CLI, "--host", "127.0.0.1", "--port", "0", ...args],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

function expect(got: { code: number; stderr: string }, code: number, message: RegExp, what: string): void {
  if (got.code !== code || !message.test(got.stderr)) {
    throw new Error(`${what}: expected exit ${code} and ${message}, got ${got.code}: ${got.stderr}`);
  }
}

Deno.test("cli --webtransport: usage errors, no --unstable-net, and the banner", async () => {
  const cert = await makeWebTransportCert();
  const flags = ["--allow-net", "--allow-read", "--allow-env"];
  try {
    expect(
      await runCli(flags, ["--webtransport", "9443", "--webtransport-cert", cert.cert]),
      2,
      /--webtransport-cert and --webtransport-key go together/,
      "cert without key",
    );
    expect(await runCli(flags, ["--webtransport", "0"]), 2, /UDP port 1-65535/, "port 0");
    expect(await runCli(flags, ["--webtransport", "x"]), 2, /UDP port 1-65535/, "not a port");
    const wt = ["--webtransport", "9443", "--webtransport-cert", cert.cert, "--webtransport-key", cert.key];
    expect(await runCli(flags, [...wt, "--workers", "2"]), 2, /does not work with --workers/, "workers");
    expect(await runCli(flags, wt), 1, /--unstable-net/, "no --unstable-net");
    expect(
      await runCli(["--unstable-net", ...flags], [
        "--webtransport",
        "9443",
        "--webtransport-cert",
        `${cert.dir}/none.pem`,
        "--webtransport-key",
        cert.key,
      ]),
      1,
      /none\.pem/,
      "missing cert file",
    );
    const server = await spawnWebTransportServer(cert, "");
    try {
      if (
        !server.banner.includes(`webtransport: udp port ${server.wtPort}, certificate sha-256 ${cert.hash}`)
      ) {
        throw new Error(`banner: ${server.banner}`);
      }
      const doc = await fetch(`http://127.0.0.1:${server.port}/.well-known/wasmnet`).then((r) => r.json());
      const want = {
        url: `https://127.0.0.1:${server.wtPort}/`,
        certificateHashes: [{ algorithm: "sha-256", value: cert.hash }],
      };
      if (JSON.stringify(doc.webtransport) !== JSON.stringify(want)) {
        throw new Error(`well-known: ${JSON.stringify(doc)}`);
      }
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(cert.dir, { recursive: true });
  }
});

Deno.test("cli --webtransport without a certificate makes one and advertises its hash", async () => {
  const server = await spawnWebTransportServer("generated", "");
  try {
    if (!/\(generated, self-signed, valid until \S+: restart before then\)/.test(server.banner)) {
      throw new Error(`banner: ${server.banner}`);
    }
    const doc = await fetch(`http://127.0.0.1:${server.port}/.well-known/wasmnet`).then((r) => r.json());
    if (doc.webtransport.certificateHashes[0].value !== server.hash) throw new Error(JSON.stringify(doc));
  } finally {
    await server.stop();
  }
});

Deno.test("/.well-known/wasmnet: an allowed origin gets a ticket and CORS; others 403 without CORS", async () => {
  const cert = await makeWebTransportCert();
  const server = await spawnWebTransportServer(cert, `[server]\nallowed_origins = ["https://app.example"]\n`);
  try {
    const ask = (origin?: string) =>
      fetch(`http://127.0.0.1:${server.port}/.well-known/wasmnet`, { headers: origin ? { origin } : {} });
    const ok = await ask("https://app.example");
    const doc = await ok.json();
    const cors = ok.headers.get("access-control-allow-origin");
    if (ok.status !== 200 || typeof doc.webtransport.ticket !== "string" || cors !== "https://app.example") {
      throw new Error(`allowed origin: ${ok.status} ${cors} ${JSON.stringify(doc)}`);
    }
    for (const origin of ["https://evil.example", undefined]) {
      const refused = await ask(origin);
      await refused.body?.cancel();
      if (refused.status !== 403 || refused.headers.has("access-control-allow-origin")) {
        throw new Error(
          `origin ${origin}: ${refused.status} ${refused.headers.get("access-control-allow-origin")}`,
        );
      }
    }
  } finally {
    await server.stop();
    await Deno.remove(cert.dir, { recursive: true });
  }
});
