import { OriginTickets, TICKET_TTL_MS } from "./ticket.ts";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

Deno.test("OriginTickets: a ticket names its origin until it expires; tampered or foreign ones are null", async () => {
  let now = 1_000_000;
  const tickets = new OriginTickets(() => now);
  const ticket = await tickets.issue("https://app.example");
  assertEquals(await tickets.verify(ticket), "https://app.example", "fresh");
  now += TICKET_TTL_MS - 1;
  assertEquals(await tickets.verify(ticket), "https://app.example", "just before expiry");
  now += 2;
  assertEquals(await tickets.verify(ticket), null, "expired");
  now = 1_000_000;
  const [body, mac] = ticket.split(".");
  const forged = new TextEncoder().encode(`${now + TICKET_TTL_MS}|https://evil.example`)
    .toBase64({ alphabet: "base64url", omitPadding: true });
  const cases: [string, string | null][] = [
    ["another origin under the same mac", `${forged}.${mac}`],
    ["no mac", body],
    ["empty", ""],
    ["null", null],
    ["three parts", `${ticket}.x`],
    ["not base64", "%%%.%%%"],
    ["another process's ticket", await new OriginTickets(() => now).issue("https://app.example")],
  ];
  for (const [what, t] of cases) assertEquals(await tickets.verify(t), null, what);
});
