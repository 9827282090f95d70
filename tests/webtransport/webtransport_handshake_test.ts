/**
 * Clients that fail or vanish must not take the WebTransport listener down: after a failed QUIC handshake
 * (Deno's `QuicListener.accept()` rejects for it; an accept loop that took that for "stopped" served nobody
 * afterwards) and after a client that upgraded and vanished without a word (its connection times out), a
 * real session is still admitted. The clients run in subprocesses with `--unstable-net`, so the test command needs no
 * unstable flag.
 */

import { makeWebTransportCert, spawnWebTransportServer } from "./helpers.ts";

Deno.test("webtransport: a failed handshake or a vanished client does not stop the listener", async () => {
  const cert = await makeWebTransportCert();
  const server = await spawnWebTransportServer(cert, "");
  try {
    const client = (...extra: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--unstable-net",
          "--allow-net",
          new URL("./handshake_client.ts", import.meta.url).pathname,
          String(server.wtPort),
          cert.hash,
          ...extra,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const vanished = await client("vanish");
    if (!vanished.success) throw new Error(`vanishing client: ${new TextDecoder().decode(vanished.stderr)}`);
    // Its connection times out on the server after the client's idle timeout (10 s) or the hello's (10 s).
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const out = await client();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) throw new Error(`client failed: ${new TextDecoder().decode(out.stderr)}`);
    const result = JSON.parse(text);
    if (!String(result.refused).startsWith("failed")) throw new Error(`bad ALPN was not refused: ${text}`);
    if (JSON.stringify(result.answer) !== JSON.stringify({ ok: true, v2: false })) {
      throw new Error(`the next session was not admitted: ${text}`);
    }
  } finally {
    await server.stop();
    await Deno.remove(cert.dir, { recursive: true });
  }
});
