/**
 * The `/status` page in Debian's Chromium with live data: an open session (front end, client, sockets,
 * bytes), the target it reached among the busiest, a denied connect among the recent refusals with the
 * rule that decided, and the totals. The page refreshes itself: a session opened after it loaded appears
 * without a reload. The screenshot is kept as `tests/artifacts/status_page.png`.
 */

import assert from "node:assert/strict";
import { Policy } from "../../src/policy/mod.ts";
import { runInPage } from "../browser/harness.ts";
import { b64, startTcpEchoServer, TestClient, unb64 } from "../helpers.ts";
import { startOpsServer } from "./ops_helpers.ts";

const ARTIFACTS = new URL("../artifacts/", import.meta.url).pathname;

/** Runs in the page: waits until the tables show what `expect` names, then returns what they show. */
const PAGE_MODULE = `
export default async (expect) => {
  const text = (id) => [...document.querySelectorAll("#" + id + " tr")].map((tr) =>
    [...tr.children].map((td) => td.textContent));
  const deadline = Date.now() + 20000;
  const seen = () => {
    const sessions = text("sessions"), refusals = text("refusals"), targets = text("targets");
    return sessions.filter((r) => r[1] === "wasmnet").length >= expect.sessions &&
      refusals.some((r) => r[4] === expect.rule) &&
      targets.some((r) => r[0] === expect.target && r[1] === String(expect.connects));
  };
  while (!seen()) {
    if (Date.now() > deadline) throw new Error("status page never showed the data: " + document.body.innerText);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    title: document.title,
    version: document.getElementById("version").textContent,
    totals: Object.fromEntries([...document.querySelectorAll("#totals div")].map((d) =>
      [d.dataset.total, d.querySelector("b").textContent])),
    sessions: text("sessions"),
    targets: text("targets"),
    refusals: text("refusals"),
    error: document.getElementById("error").textContent,
  };
};
`;

Deno.test("status page: live sessions, busiest targets, refusals with their rule and totals, in Chromium", async () => {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const echo = startTcpEchoServer();
  const srv = await startOpsServer(
    Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["127.0.0.1"] } }),
  );
  const first = new TestClient(`${srv.ws}/`);
  const second = new TestClient(`${srv.ws}/`);
  try {
    await first.opened;
    first.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    await first.event("connected", 1);
    first.json({ op: "send", id: 1, data: b64("shown on the page") });
    assert.equal(unb64((await first.event("data", 1)).data), "shown on the page");
    first.json({ op: "connect", id: 2, addr: "10.9.8.7", port: 5432 });
    await first.event("denied", 2);

    // The second session opens once the page has loaded: it must appear by the page's own refresh.
    setTimeout(async () => {
      await second.opened;
      second.json({ op: "connect", id: 1, addr: "127.0.0.1", port: echo.port });
    }, 2500);
    const { result, pageErrors, consoleErrors } = await runInPage<{
      title: string;
      version: string;
      totals: Record<string, string>;
      sessions: string[][];
      targets: string[][];
      refusals: string[][];
      error: string;
    }>({
      pageUrl: `${srv.admin}/status`,
      module: PAGE_MODULE,
      args: {
        sessions: 2,
        rule: 'network.deny[0] "10.0.0.0/8"',
        target: `127.0.0.1:${echo.port}`,
        connects: 2,
      },
      screenshot: `${ARTIFACTS}status_page.png`,
    });
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleErrors, []);
    assert.equal(result.title, "wasmnet status");
    assert.match(result.version, /^\d+\.\d+\.\d+$/);
    assert.equal(result.error, "");
    assert.equal(result.sessions.length, 2);
    const row = result.sessions[0]; // the oldest first
    assert.deepEqual(row.slice(1, 4), ["wasmnet", "json", "127.0.0.1"]);
    assert.equal(row[5], "1", "one socket opened (the denied connect opened none)");
    assert.match(row[6], /^\d+ B$/, "bytes up");
    assert.match(row[7], /^\d+ B$/, "bytes down");
    assert.deepEqual(result.targets[0], [`127.0.0.1:${echo.port}`, "2"]);
    const refusal = result.refusals.find((r) => r[4] === 'network.deny[0] "10.0.0.0/8"')!;
    assert.deepEqual(refusal.slice(1, 4), ["127.0.0.1", "connect", "10.9.8.7:5432"]);
    assert.equal(result.totals["sessions open"], "2");
    assert.equal(result.totals["denied"], "1");
    assert.ok((await Deno.stat(`${ARTIFACTS}status_page.png`)).size > 10_000, "a real screenshot");
  } finally {
    await first.close();
    await second.close().catch(() => {});
    await srv.close();
    await echo.close();
  }
});
