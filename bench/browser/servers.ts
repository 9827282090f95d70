/**
 * Processes the browser bench starts (temporary copy until bench/ is split into shared modules).
 *
 * @module
 */

export interface Proc {
  pid: number;
  child: Deno.ChildProcess;
  stop(): Promise<void>;
}

export function spawn(cmd: string, argv: string[], env: Record<string, string> = {}): Proc {
  const child = new Deno.Command(cmd, { args: argv, stdout: "null", stderr: "piped", env }).spawn();
  const errText = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  return {
    pid: child.pid,
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone
      }
      await child.status;
      await errText;
    },
  };
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

export async function waitForPort(port: number, proc: Proc, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  proc.child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error("the server exited at start");
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}
