/**
 * The baseline: the barest WebSocket-to-TCP relay on this runtime, one WebSocket per TCP connection to a
 * fixed target, no protocol, no policy. `deno run -A bench/bare_relay.ts <port> <target-port>`.
 *
 * @module
 */

const [port, target] = Deno.args.map(Number);
Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log(JSON.stringify({ port })) }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  const tcp = Deno.connect({ hostname: "127.0.0.1", port: target });
  tcp.then((c) => c.setNoDelay(true), () => socket.close());
  let writes = Promise.resolve();
  socket.onmessage = (e) => {
    const bytes = new Uint8Array(e.data as ArrayBuffer);
    writes = writes.then(async () => {
      const conn = await tcp;
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    }).catch(() => {});
  };
  socket.onclose = () => tcp.then((c) => c.close()).catch(() => {});
  socket.onopen = async () => {
    try {
      for await (const chunk of (await tcp).readable) {
        socket.send(chunk);
        while (socket.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 1));
      }
      socket.close();
    } catch {
      // either side closed
    }
  };
  return response;
});
