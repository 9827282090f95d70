/**
 * Origin tickets: how a WebTransport session proves the page's origin. Deno's `upgradeWebTransport` answers
 * the browser's CONNECT itself and shows the server only the URL, not the `Origin` header. So when the
 * policy limits origins, the page first fetches `/.well-known/wasmnet` over HTTP, where the server sees the
 * real `Origin`, checks it, and (CORS lets only that origin read the answer) hands out a short-lived ticket
 * naming it, signed with a key of this process. The session URL carries it as `?ticket=`; the session is
 * admitted as if it had sent that `Origin`. A page of another origin cannot read a ticket, as it cannot
 * forge an `Origin` header.
 *
 * @module
 */

/** How long a ticket is good for: enough to open the session right after the fetch. */
export const TICKET_TTL_MS = 60_000;

/** Issues and checks tickets with one random HMAC key (per process: tickets do not cross replicas). */
export class OriginTickets {
  readonly #key: Promise<CryptoKey>;
  readonly #now: () => number;

  /** `now` is for tests. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#key = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  }

  /** A ticket for `origin`, valid for {@link TICKET_TTL_MS}: `base64url(expiry|origin).base64url(mac)`. */
  async issue(origin: string): Promise<string> {
    const body = new TextEncoder().encode(`${this.#now() + TICKET_TTL_MS}|${origin}`);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await this.#key, body));
    return `${body.toBase64({ alphabet: "base64url", omitPadding: true })}.${
      mac.toBase64({ alphabet: "base64url", omitPadding: true })
    }`;
  }

  /** The origin a valid, unexpired ticket names; null for anything else. */
  async verify(ticket: string | null): Promise<string | null> {
    if (!ticket || ticket.length > 4096) return null;
    const [bodyText, macText, extra] = ticket.split(".");
    if (extra !== undefined || !bodyText || !macText) return null;
    let body: Uint8Array, mac: Uint8Array;
    try {
      body = Uint8Array.fromBase64(bodyText, { alphabet: "base64url" });
      mac = Uint8Array.fromBase64(macText, { alphabet: "base64url" });
    } catch {
      return null;
    }
    const ok = await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      mac as Uint8Array<ArrayBuffer>,
      body as Uint8Array<ArrayBuffer>,
    );
    if (!ok) return null;
    const text = new TextDecoder().decode(body);
    const bar = text.indexOf("|");
    const expiry = Number(text.slice(0, bar));
    if (bar < 1 || !Number.isFinite(expiry) || expiry < this.#now()) return null;
    return text.slice(bar + 1);
  }
}
