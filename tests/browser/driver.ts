/**
 * The browser side of the harness, run as its own process (`deno run -A driver.ts`) by `harness.ts`:
 * playwright-core needs more than `deno task test` grants (it probes /proc at load), and a separate process
 * keeps its Node-compat handles out of the test's leak checks.
 *
 * Talks newline-delimited JSON. stdin: one `run` request, then `reply`s to calls. stdout: `console`,
 * `pageerror` and `call` messages while the page runs, then one `done`.
 *
 * @module
 */

// Full npm: specifiers, not import-map entries: `deno task` installs every import-map npm package
// into deno.lock, the server's runtime lockfile that `deno compile` embeds (tests/packaging/).
// deno-lint-ignore no-import-prefix
import { chromium } from "npm:playwright-core@1.65.1";

/** The request the harness sends first. */
export interface DriverRun {
  type: "run";
  /** Chromium binary. */
  executablePath: string;
  /** Chromium flags. */
  args: string[];
  /** Page to open. */
  pageUrl: string;
  /** Module whose default export to run in the page. */
  moduleUrl: string;
  /** Argument for it. */
  moduleArgs: unknown;
  /** Names of functions the page may call; calls are forwarded to the harness. */
  expose: string[];
  /** Write a PNG of the page here when done, if set. */
  screenshot?: string;
}

/** Messages from the driver to the harness. */
export type DriverMessage =
  | { type: "console"; kind: string; text: string }
  | { type: "pageerror"; text: string }
  | { type: "call"; callId: number; name: string; args: unknown[] }
  | { type: "done"; ok: true; result: unknown }
  | { type: "done"; ok: false; error: string };

/** Replies from the harness to forwarded calls. */
export type DriverReply = { type: "reply"; callId: number; ok: true; value: unknown } | {
  type: "reply";
  callId: number;
  ok: false;
  error: string;
};

const encoder = new TextEncoder();
function emit(message: DriverMessage): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(message) + "\n"));
}

async function main(): Promise<void> {
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).values();
  let buffered = "";
  const nextLine = async (): Promise<string | undefined> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.next();
      if (done) return buffered || undefined;
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  const first = await nextLine();
  if (!first) return;
  const run = JSON.parse(first) as DriverRun;

  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const replies = (async () => {
    for (let line = await nextLine(); line !== undefined; line = await nextLine()) {
      if (!line.trim()) continue;
      const reply = JSON.parse(line) as DriverReply;
      const w = waiting.get(reply.callId);
      waiting.delete(reply.callId);
      if (reply.ok) w?.resolve(reply.value);
      else w?.reject(new Error(reply.error));
    }
  })();

  const browser = await chromium.launch({
    executablePath: run.executablePath,
    headless: true,
    args: run.args,
  });
  try {
    const page = await browser.newPage();
    page.on("console", (msg) => emit({ type: "console", kind: msg.type(), text: msg.text() }));
    page.on("pageerror", (error) => emit({ type: "pageerror", text: String(error) }));
    let nextCall = 1;
    for (const name of run.expose) {
      await page.exposeFunction(name, (...args: unknown[]) => {
        const callId = nextCall++;
        return new Promise((resolve, reject) => {
          waiting.set(callId, { resolve, reject });
          emit({ type: "call", callId, name, args });
        });
      });
    }
    await page.goto(run.pageUrl, { waitUntil: "load" });
    try {
      const result = await page.evaluate(async ({ url, args }) => {
        const mod = await import(url);
        return await mod.default(args);
      }, { url: run.moduleUrl, args: run.moduleArgs });
      if (run.screenshot) await page.screenshot({ path: run.screenshot, fullPage: true });
      emit({ type: "done", ok: true, result });
    } catch (error) {
      emit({ type: "done", ok: false, error: String(error instanceof Error ? error.message : error) });
    }
  } finally {
    await browser.close();
  }
  void replies;
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    emit({ type: "done", ok: false, error: `driver: ${error instanceof Error ? error.stack : error}` });
  }
  Deno.exit(0); // playwright's Node-compat handles must not keep the process alive
}
