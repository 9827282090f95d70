import assert from "node:assert/strict";
import { rateLimitedLog } from "./log.ts";

Deno.test("rateLimitedLog: a session's burst, then its rate; what is over is counted in one record", () => {
  const lines: { op: string; reason?: string; session: string }[] = [];
  let t = 0;
  const log = rateLimitedLog((r) => lines.push(r), 3, 2, () => t);
  const rec = (session: string) => ({
    session,
    client: "c",
    op: "connect",
    target: "x:1",
    decision: "deny" as const,
    rule: "r",
  });
  for (let i = 0; i < 10; i++) log(rec("a"));
  log(rec("b"));
  log({ ...rec("-"), op: "session" });
  assert.equal(lines.filter((l) => l.session === "a").length, 3, "a's burst");
  assert.equal(lines.filter((l) => l.session === "b").length, 1, "another session has its own share");
  assert.equal(lines.filter((l) => l.session === "-").length, 1, "refused sessions are never cut");
  t = 1000; // one second: two more lines for a
  log(rec("a"));
  const summary = lines.find((l) => l.op === "log");
  assert.match(summary?.reason ?? "", /^7 decisions of this session not logged/);
});
