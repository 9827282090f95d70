/**
 * The WebTransport front end (opt-in, `[webtransport]` / `--webtransport PORT`): a QUIC listener on its own
 * UDP port whose sessions speak the wasmnet protocol (session.ts), admitted by the same checks as a
 * WebSocket (origin, caps, token) before any session is set up, and advertised at `/.well-known/wasmnet`.
 *
 * Needs Deno's `--unstable-net` (2.9.6: `Deno.QuicEndpoint`, `Deno.upgradeWebTransport`). Deno answers the
 * browser's CONNECT with 200 itself, so a refusal is the first message on the control stream (the hello
 * answer, with the HTTP status it would have been), and the origin arrives as a ticket (ticket.ts).
 *
 * @module
 */

import type { WebTransportConfig } from "../../policy/config.ts";
import { decideOrigin, type Policy } from "../../policy/mod.ts";
import { observerFor } from "../../core/websocket.ts";
import { messageLimits } from "../../core/limits.ts";
import { acceptedWithoutUpgrade, type Closable, type EndpointContext } from "../endpoint.ts";
import {
  decodeHello,
  encodeHelloAnswer,
  frame,
  FrameReader,
  type HelloAnswer,
  WEBTRANSPORT_PROTOCOL_VERSION,
} from "@wasmnet/protocol/webtransport";
import { type BidiStream, streamLimitFor, type WebTransportPort, WebTransportSession } from "./session.ts";
import { OriginTickets } from "./ticket.ts";
import { generateCertificate } from "./certificate.ts";

/** The path of the discovery document. */
export const WELL_KNOWN_PATH = "/.well-known/wasmnet";

/** Time a client has from the QUIC handshake to its hello; past it the connection is closed. */
export const HELLO_TIMEOUT_MS = 10_000;

/** How long a refused client has to read the refusal and close before the server closes. */
const REFUSAL_LINGER_MS = 3_000;

/**
 * How the front end asks the server to admit a session: the same `Admission`, meters and tracking the
 * WebSocket goes through (src/server.ts).
 */
export type AdmitFn = (
  request: Request,
  url: URL,
  clientIp: string,
  start: (ctx: EndpointContext) => Response,
) => Response | Promise<Response>;

/** What {@link WebTransportFrontEnd.start} needs. */
export interface WebTransportFrontEndOptions {
  config: WebTransportConfig;
  /** Interface to listen on (the server's). */
  hostname: string;
  policy: Policy;
  admit: AdmitFn;
  /** Aborting it stops the listener and closes every session. */
  signal: AbortSignal;
}

/** The running WebTransport listener. */
export class WebTransportFrontEnd {
  /** The UDP port bound. */
  readonly port: number;
  /** SHA-256 of the certificate (DER), base64; advertised when `pin_certificate` is on. */
  readonly certificateHash: string;
  readonly #options: WebTransportFrontEndOptions;
  readonly #endpoint: Deno.QuicEndpoint;
  readonly #tickets = new OriginTickets();
  readonly #sessions = new Set<Closable>();
  /** Connections between the QUIC handshake and the hello answer (bounded by `max_sessions`). */
  #pending = 0;
  /** Resolves when the accept loop has ended. */
  readonly finished: Promise<void>;

  private constructor(
    options: WebTransportFrontEndOptions,
    endpoint: Deno.QuicEndpoint,
    listener: Deno.QuicListener,
    hash: string,
  ) {
    this.#options = options;
    this.#endpoint = endpoint;
    this.port = endpoint.addr.port;
    this.certificateHash = hash;
    this.finished = this.#acceptLoop(listener);
    options.signal.addEventListener("abort", () => this.#stop(listener), { once: true });
  }

  /** Reads the certificate and key, binds the UDP port and starts accepting. Throws if either fails. */
  static async start(options: WebTransportFrontEndOptions): Promise<WebTransportFrontEnd> {
    const { config } = options;
    if (!("QuicEndpoint" in Deno)) {
      throw new Error("WebTransport needs Deno's --unstable-net (Deno.QuicEndpoint is not there)");
    }
    let cert: string, key: string, generatedUntil: Date | undefined;
    if (config.cert === "") {
      const names = ["localhost", "127.0.0.1", "::1", options.hostname, config.public_host]
        .filter((n, i, all) => n !== "" && n !== "0.0.0.0" && n !== "::" && all.indexOf(n) === i);
      ({ cert, key, notAfter: generatedUntil } = await generateCertificate(names));
    } else {
      cert = await Deno.readTextFile(config.cert);
      key = await Deno.readTextFile(config.key);
    }
    const hash = await certificateHash(cert);
    const endpoint = new Deno.QuicEndpoint({ hostname: options.hostname, port: config.port });
    const listener = endpoint.listen({
      cert,
      key,
      alpnProtocols: ["h3"],
      maxConcurrentBidirectionalStreams: streamLimitFor(options.policy),
    });
    const frontEnd = new WebTransportFrontEnd(options, endpoint, listener, hash);
    frontEnd.generatedUntil = generatedUntil;
    return frontEnd;
  }

  /** When the certificate was generated at start-up: when it stops being valid. */
  generatedUntil: Date | undefined;

  /** Sessions open. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * The discovery document for `request` (GET `/.well-known/wasmnet`): the session URL, the certificate
   * hash, and an origin ticket when the policy limits origins. A foreign origin gets 403 and no CORS.
   */
  async wellKnown(request: Request): Promise<Response> {
    const policy = this.#options.policy;
    const origin = request.headers.get("origin");
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "cache-control": "no-store",
      "vary": "origin",
    };
    const doc: Record<string, unknown> = { url: this.#url(request) };
    if (this.#options.config.pin_certificate) {
      doc.certificateHashes = [{ algorithm: "sha-256", value: this.certificateHash }];
    }
    if (originsLimited(policy)) {
      const decision = decideOrigin(policy, origin);
      if (!decision.allowed || origin === null) {
        return new Response(JSON.stringify({ error: decision.reason }), { status: 403, headers });
      }
      doc.ticket = await this.#tickets.issue(origin);
      headers["access-control-allow-origin"] = origin;
    } else {
      headers["access-control-allow-origin"] = "*";
    }
    return new Response(JSON.stringify({ webtransport: doc }), { headers });
  }

  #url(request: Request): string {
    const host = this.#options.config.public_host || new URL(request.url).hostname;
    return `https://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${this.port}/`;
  }

  #stop(listener: Deno.QuicListener): void {
    for (const session of this.#sessions) session.shutdown(1001, "server shutting down");
    this.#sessions.clear();
    try {
      listener.stop();
    } catch {
      // stopped already
    }
    try {
      this.#endpoint.close({ closeCode: 0, reason: "server shutting down" });
    } catch {
      // closed already
    }
  }

  async #acceptLoop(listener: Deno.QuicListener): Promise<void> {
    let failures = 0;
    for (;;) {
      let conn: Deno.QuicConn;
      try {
        conn = await listener.accept();
        failures = 0;
      } catch (err) {
        // `accept()` also rejects when one client's handshake fails or times out: that ends the client,
        // not the listener. Only a stopped listener (BadResource) ends the loop.
        if (this.#options.signal.aborted || err instanceof Deno.errors.BadResource) return;
        // A listener that keeps failing is not spun on: after 10 failures in a row, wait a little.
        if (++failures >= 10) await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (this.#pending >= this.#options.policy.config.server.max_sessions) {
        conn.close({ closeCode: 0x10c, reason: "too many connections being set up" });
        continue;
      }
      this.#pending++;
      this.#setUp(conn).catch(() => conn.close()).finally(() => this.#pending--);
    }
  }

  /** Upgrades, reads the hello, admits, and starts the session or answers the refusal. */
  async #setUp(conn: Deno.QuicConn): Promise<void> {
    const deadline = AbortSignal.timeout(HELLO_TIMEOUT_MS);
    conn.closed.catch(() => {}); // a connection that times out rejects these: never an unhandled rejection
    const wt = await raceSignal(Deno.upgradeWebTransport(conn), deadline) as unknown as
      & WebTransportPort
      & { url: string };
    wt.closed.catch(() => {});
    const streams = wt.incomingBidirectionalStreams.getReader();
    const first = await raceSignal(streams.read(), deadline);
    streams.releaseLock();
    if (first.done) return conn.close();
    const control: BidiStream = first.value;
    const reader = control.readable.getReader();
    // The same reader goes on with the session's control messages: the policy's message bound, for both.
    const frames = new FrameReader(this.#options.policy.config.server.max_message_bytes);
    let messages: Uint8Array[] = [];
    while (messages.length === 0) {
      const { value, done } = await raceSignal(reader.read(), deadline);
      if (done) return conn.close();
      messages = frames.push(value);
    }
    const [helloBytes, ...early] = messages;
    const hello = decodeHello(helloBytes);
    const answer = async (a: HelloAnswer) => {
      const writer = control.writable.getWriter();
      await writer.write(frame(encodeHelloAnswer(a)));
      writer.releaseLock();
    };
    if (hello === null || hello.wasmnet !== WEBTRANSPORT_PROTOCOL_VERSION) {
      await answer({ ok: false, status: 400, msg: "the first message must be a wasmnet hello, version 1" });
      return this.#linger(wt);
    }
    const url = new URL(wt.url);
    const clientIp = conn.remoteAddr.hostname;
    const headers = new Headers();
    if (originsLimited(this.#options.policy)) {
      const origin = await this.#tickets.verify(url.searchParams.get("ticket"));
      // Without a ticket the origin is unknown: refused, since a browser page cannot be told from a tool.
      headers.set("origin", origin ?? "null");
    }
    const request = new Request(url, { headers });
    let session: WebTransportSession | undefined;
    const response = await this.#options.admit(request, url, clientIp, (ctx) => {
      // The answer is queued before the session can write anything (writes on a stream keep their order).
      const writer = control.writable.getWriter();
      writer.write(frame(encodeHelloAnswer({ ok: true, v2: hello.v2 }))).catch(() => {});
      writer.releaseLock();
      session = new WebTransportSession(wt, { reader, writable: control.writable }, frames, early, {
        policy: ctx.policy,
        serverHost: ctx.serverHost,
        clientIp,
        log: ctx.log,
        resolver: ctx.resolver,
        v2: hello.v2,
        limits: messageLimits(ctx.policy),
        observer: observerFor(request, hello.v2 ? "wasmnet.v2" : undefined),
        core: ctx.core.session({ frontend: "webtransport", policy: ctx.policy, clientIp }),
        signal: this.#options.signal,
      });
      const untrack = ctx.track(session);
      this.#sessions.add(session);
      wt.closed.finally(() => (untrack(), this.#sessions.delete(session!))).catch(() => {});
      return acceptedWithoutUpgrade();
    });
    if (session === undefined) {
      await answer({ ok: false, status: response.status, msg: (await response.text()).trim() });
      return this.#linger(wt);
    }
  }

  /** Gives a refused client time to read the answer and close, then closes. */
  async #linger(wt: WebTransportPort): Promise<void> {
    const timer = new Promise((resolve) => setTimeout(resolve, REFUSAL_LINGER_MS));
    await Promise.race([wt.closed.catch(() => {}), timer]);
    try {
      wt.close({ closeCode: 0, reason: "refused" });
    } catch {
      // closed already
    }
  }
}

/** True when the policy limits origins (then a session needs a ticket). */
function originsLimited(policy: Policy): boolean {
  if (policy.unrestricted) return false;
  const server = policy.config.server;
  return server.require_origin || !server.allowed_origins.includes("*");
}

/** SHA-256 of the first certificate of a PEM chain (DER bytes), base64: what `serverCertificateHashes` takes. */
export async function certificateHash(pem: string): Promise<string> {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error("no PEM certificate (-----BEGIN CERTIFICATE-----) in the webtransport.cert file");
  const der = Uint8Array.fromBase64(m[1].replace(/\s+/g, ""));
  return new Uint8Array(await crypto.subtle.digest("SHA-256", der)).toBase64();
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("timed out"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
