/**
 * Debian's websockify, the reference the websockify mode is checked against.
 *
 * @module
 */

/** Starts websockify on a free loopback port in front of `127.0.0.1:targetPort`; waits until it listens. */
export async function startWebsockify(
  targetPort: number,
): Promise<{ port: number; url: string; stop: () => Promise<void> }> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const child = new Deno.Command("websockify", {
    args: [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  };
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, url: `ws://127.0.0.1:${port}/`, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stop();
  throw new Error("websockify did not start listening");
}
