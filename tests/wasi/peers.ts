/**
 * Test helper: a tiny HTTP/1.1 server on loopback for the C HTTP client to fetch from.
 *
 * @module
 */

/** A running HTTP server. */
export interface HttpPeer {
  port: number;
  close(): Promise<void>;
}

/** Serves `body` (plus a `path=` line naming the requested path) on 127.0.0.1 with a free port. */
export function startHttpServer(body: string): HttpPeer {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) =>
      new Response(`${body}path=${new URL(req.url).pathname}\n`, {
        headers: { "content-type": "text/plain" },
      }),
  );
  return {
    port: server.addr.port,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}
