/**
 * `connect_tls`: a TCP connection to a vetted address plus a TLS handshake done by the server. The TCP
 * connection goes to the address the policy approved (via {@link dialTcp}, never a second lookup); SNI and
 * certificate verification use the name the client gave, so a certificate must be valid for that name.
 *
 * Trust: Deno's root store (Mozilla's roots by default; `DENO_TLS_CA_STORE=system` for the OS's), plus the
 * PEM files of the policy's `[tls] ca_files`, read once per policy and cached. Verification cannot be turned
 * off by a client; there is no request field for it.
 *
 * The server sees the plaintext of a `connect_tls` connection. A program that needs end-to-end TLS brings its
 * own TLS stack and uses plain `connect`.
 *
 * @module
 */

import { toWasmnetError, WasmnetError } from "../errors.ts";
import { normaliseAddress, normaliseHostName, type Policy } from "../../policy/mod.ts";
import { connectTcp, type DialContext, formatHostPort, observeFailure } from "./dial.ts";
import { observeClose } from "../observer.ts";
import { DeadlineExceeded, raceDeadline } from "./resolver.ts";

const caCache = new WeakMap<object, Promise<string[]>>();

/**
 * The extra CA roots of a policy (`[tls] ca_files`), read once and cached per policy. A file that cannot be
 * read, or holds no PEM certificate, fails every `connect_tls` with `TLS_FAILED` (and is retried on the next
 * policy, never silently skipped).
 */
export function caCertsFor(policy: Policy): Promise<string[]> {
  // Keyed by the config section, not the Policy: a live view (src/ops/live_policy.ts) reads a new section
  // after a reload, so a reload reads the new files.
  const key = policy.config.tls;
  let certs = caCache.get(key);
  if (!certs) {
    certs = readCaFiles(policy.config.tls.ca_files);
    certs.catch(() => {}); // reported by each connect_tls that awaits it
    caCache.set(key, certs);
  }
  return certs;
}

async function readCaFiles(files: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      throw new WasmnetError(
        "TLS_FAILED",
        `cannot read the CA file ${file} (tls.ca_files): ${(err as Error).message}`,
      );
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new WasmnetError("TLS_FAILED", `the CA file ${file} (tls.ca_files) holds no PEM certificate`);
    }
    out.push(text);
  }
  return out;
}

/** The name a certificate must be valid for: the canonical IP for an address, else the normalised host name. */
export function serverNameFor(host: string): string {
  return normaliseAddress(host) ?? normaliseHostName(host) ?? host;
}

/**
 * Vets and connects like {@link dialTcp}, then runs the TLS handshake against `host`, all within `timeoutMs`.
 * Throws what `dialTcp` throws, plus `TLS_FAILED` (bad certificate, handshake failure, unreadable CA file)
 * and `CONNECT_TIMEOUT` (handshake too slow). The decision is logged once, by `dialTcp`; a handshake
 * failure is logged as an `error`.
 */
export async function dialTls(
  ctx: DialContext,
  op: string,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ conn: Deno.TlsConn; address: string }> {
  const started = performance.now();
  const dialed = await observeFailure(ctx, handshakeTls(ctx, op, host, port, timeoutMs));
  ctx.observer?.connected("tls", (performance.now() - started) / 1000);
  observeClose(ctx.observer, "tls", dialed.conn);
  return dialed;
}

async function handshakeTls(
  ctx: DialContext,
  op: string,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ conn: Deno.TlsConn; address: string }> {
  let caCerts: string[];
  try {
    caCerts = await caCertsFor(ctx.policy);
  } catch (err) {
    const e = toWasmnetError(err, "TLS_FAILED");
    ctx.log({
      session: ctx.session,
      client: ctx.client,
      op,
      target: formatHostPort(host, port),
      decision: "error",
      rule: "tls.ca_files",
      reason: e.message,
    });
    // The client learns that the server's TLS setup is broken, not where its files are.
    throw new WasmnetError(
      "TLS_FAILED",
      "the server's TLS trust configuration (tls.ca_files) cannot be loaded",
    );
  }
  const started = performance.now();
  const { conn: tcp, address } = await connectTcp(ctx, op, host, port, timeoutMs);
  const remaining = Math.max(1, timeoutMs - (performance.now() - started));
  let tls: Deno.TlsConn | undefined;
  try {
    tls = await Deno.startTls(tcp, { hostname: serverNameFor(host), caCerts });
    await raceDeadline(tls.handshake(), ctx.signal, remaining);
    return { conn: tls, address };
  } catch (err) {
    try {
      (tls ?? tcp).close();
    } catch {
      // already closed
    }
    const e = err instanceof DeadlineExceeded
      ? new WasmnetError("CONNECT_TIMEOUT", `TLS handshake with ${formatHostPort(host, port)} timed out`)
      : ctx.signal.aborted
      ? new WasmnetError("CONNECT_FAILED", "connect cancelled")
      : new WasmnetError(
        "TLS_FAILED",
        `TLS with ${formatHostPort(host, port)} failed: ${(err as Error).message}`,
      );
    ctx.log({
      session: ctx.session,
      client: ctx.client,
      op,
      target: formatHostPort(host, port),
      decision: "error",
      rule: "tls",
      reason: e.message,
    });
    throw e;
  }
}
