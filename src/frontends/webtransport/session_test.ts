import { decodeBinaryEvent, encodeBinaryRequest, type Event, type Request } from "@wasmnet/protocol";
import { frame, FrameReader } from "@wasmnet/protocol/webtransport";
import { Policy } from "../../policy/mod.ts";
import { type BidiStream, type WebTransportPort, WebTransportSession } from "./session.ts";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** The client's end of one stream: write requests, read events. */
class ClientEnd {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #frames = new FrameReader(1 << 20);
  #ready: Uint8Array[] = [];
  constructor(writer: WritableStream<Uint8Array>, reader: ReadableStream<Uint8Array>) {
    this.#writer = writer.getWriter();
    this.#reader = reader.getReader();
  }
  send(request: Request): Promise<void> {
    return this.#writer.write(frame(encodeBinaryRequest(request)));
  }
  raw(bytes: Uint8Array): Promise<void> {
    return this.#writer.write(bytes);
  }
  async next(): Promise<Event> {
    while (this.#ready.length === 0) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("stream ended");
      this.#ready = this.#frames.push(value);
    }
    return decodeBinaryEvent(this.#ready.shift()!);
  }
}

/** A WebTransport stand-in: the client opens streams with {@link open}; `closedWith` says how it ended. */
function fakeTransport() {
  let incoming!: ReadableStreamDefaultController<BidiStream>;
  let closed!: () => void;
  const state = { closedWith: undefined as string | undefined };
  const wt: WebTransportPort = {
    incomingBidirectionalStreams: new ReadableStream({ start: (c) => void (incoming = c) }),
    datagrams: { readable: new ReadableStream(), writable: new WritableStream(), maxDatagramSize: 1200 },
    close: (info) => {
      state.closedWith ??= info?.reason ?? "";
      closed();
    },
    closed: new Promise<void>((resolve) => (closed = resolve)),
  };
  const pair = () => {
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const down = new TransformStream<Uint8Array, Uint8Array>();
    return {
      server: { readable: up.readable, writable: down.writable },
      client: new ClientEnd(up.writable, down.readable),
    };
  };
  const open = (): ClientEnd => {
    const { server, client } = pair();
    incoming.enqueue(server);
    return client;
  };
  return { wt, open, pair, state };
}

function startSession() {
  const t = fakeTransport();
  const control = t.pair();
  const session = new WebTransportSession(
    t.wt,
    { reader: control.server.readable.getReader(), writable: control.server.writable },
    new FrameReader(2048),
    [],
    {
      policy: Policy.fromConfig({ network: { deny: ["10.0.0.0/8"], allow: ["*"] } }),
      serverHost: "127.0.0.1",
      clientIp: "127.0.0.1",
      v2: false,
      limits: { maxMessageBytes: 2048, idleMs: 0 },
    },
  );
  return { ...t, control: control.client, session };
}

Deno.test("webtransport session: a socket's events go on the stream its connect came on; others on control", async () => {
  const { open, control, session } = startSession();
  const socket = open();
  await socket.send({ op: "connect", id: 1, addr: "10.1.2.3", port: 80 });
  const denied = await socket.next();
  assertEquals(
    [denied.ev, denied.id, (denied as { code?: string }).code],
    ["denied", 1, undefined],
    "denied on its stream",
  );
  // The binding ended with the failed open: a request naming id 1 now is answered on the control stream.
  await socket.send({ op: "close", id: 1 });
  const unknown = await control.next();
  assertEquals([unknown.ev, unknown.id], ["error", 1], "later answers for the id on control");
  // The same stream carries the next socket (the client reuses streams).
  await socket.send({ op: "connect", id: 2, addr: "10.9.9.9", port: 80 });
  assertEquals((await socket.next()).id, 2, "the reused stream carries socket 2");
  session.shutdown();
});

Deno.test("webtransport session: a frame over max_message_bytes on any stream closes the session", async () => {
  const { open, session, state } = startSession();
  const socket = open();
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, 4096);
  await socket.raw(header);
  for (let i = 0; i < 100 && !session.closed; i++) await new Promise((r) => setTimeout(r, 5));
  assertEquals(session.closed, true, "closed");
  assertEquals(
    /4096 bytes is over the 2048-byte limit/.test(state.closedWith ?? ""),
    true,
    `reason: ${state.closedWith}`,
  );
  assertEquals(session.session.closed, true, "the wasmnet session underneath is closed too");
});
