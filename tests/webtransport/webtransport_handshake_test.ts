/**
 * A client whose QUIC handshake fails must not stop the WebTransport listener: after it, a real session is
 * still admitted. (Deno's `QuicListener.accept()` rejects for one client's failed handshake; an accept loop
 * that took that for "stopped" served nobody afterwards.) The client runs in a subprocess with
 * `--unstable-net`, so the test command needs no unstable flag.
 */

import { makeWebTransportCert, spawnWebTransportServer } from "./helpers.ts";

Deno.test("webtransport: a failed handshake does not stop the listener", async () => {
  const cert = await makeWebTransportCert();
  const server = await spawnWebTransportServer(cert, "");
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--unstable-net",
        "--allow-net",
        new URL("./handshake_client.ts", import.meta.url).pathname,
        String(server.wtPort),
        cert.hash,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
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
