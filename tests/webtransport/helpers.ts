/**
 * Test helpers for WebTransport: a certificate Chromium accepts by hash (ECDSA P-256, 10 days, made with
 * `openssl`), a free UDP port, and the server as a subprocess with `--unstable-net` (so the test command
 * itself needs no unstable flag).
 *
 * @module
 */

import dgram from "node:dgram";
import { type CliProcess, spawnCli } from "../helpers.ts";

/** A certificate and key written to a temporary directory. */
export interface TestCertificate {
  dir: string;
  cert: string;
  key: string;
  /** SHA-256 of the DER, base64 (what the server advertises). */
  hash: string;
}

/**
 * Makes a self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, valid 10 days, in `dir` (default:
 * a new temporary directory, which the caller removes).
 */
export async function makeWebTransportCert(dir?: string): Promise<TestCertificate> {
  dir ??= await Deno.makeTempDir({ prefix: "wasmnet-wt-" });
  const cert = `${dir}/cert.pem`, key = `${dir}/key.pem`;
  const made = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "10",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!made.success) throw new Error(`openssl failed: ${new TextDecoder().decode(made.stderr)}`);
  const pem = await Deno.readTextFile(cert);
  const der = Uint8Array.fromBase64(
    pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, ""),
  );
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", der)).toBase64();
  return { dir, cert, key, hash };
}

/** The CLI flags that turn WebTransport on at `port` with `cert`. */
export function webTransportFlags(port: number, cert: TestCertificate): string[] {
  return ["--webtransport", String(port), "--webtransport-cert", cert.cert, "--webtransport-key", cert.key];
}

/** A UDP port that was free a moment ago (bound and released). */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * `cli.ts` with WebTransport on a free UDP port, under `policyToml` (plus `extraArgs`), as a subprocess with
 * `--unstable-net`; ready once stdout matches `waitFor` (default: the WebTransport banner line).
 */
export async function spawnWebTransportServer(
  cert: TestCertificate | "generated",
  policyToml: string,
  extraArgs: string[] = [],
  waitFor: RegExp = /webtransport: udp port \d+/,
): Promise<CliProcess & { wtPort: number; hash: string }> {
  const policy = await Deno.makeTempFile({ prefix: "wasmnet-wt-policy-", suffix: ".toml" });
  await Deno.writeTextFile(policy, policyToml);
  const wtPort = await freeUdpPort();
  const server = await spawnCli(
    [
      "--policy",
      policy,
      ...(cert === "generated" ? ["--webtransport", String(wtPort)] : webTransportFlags(wtPort, cert)),
      ...extraArgs,
    ],
    {
      denoFlags: ["--unstable-net", "--allow-net", "--allow-read", "--allow-env"],
      waitFor,
    },
  );
  const hash = /certificate sha-256 (\S+)/.exec(server.banner)![1];
  const stop = server.stop;
  return { ...server, wtPort, hash, stop: () => stop().finally(() => Deno.remove(policy)) };
}
