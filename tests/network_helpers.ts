/**
 * Test peers for UDP, DNS and TLS, all on loopback and all stopped by the test that starts them: a UDP echo
 * server, a throwaway PKI made with the `openssl` CLI (a CA and certificates for test names), and a TLS echo
 * server.
 *
 * @module
 */

import dgram from "node:dgram";

/** A UDP socket on loopback for tests. */
export interface UdpPeer {
  port: number;
  /** Datagrams received, in order, with their source. */
  received: { data: Uint8Array; addr: string; port: number }[];
  /** Sends one datagram from this peer. */
  send(data: Uint8Array, port: number, addr?: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts a UDP socket on 127.0.0.1; with `echo`, every datagram is sent back to its source unchanged. */
export async function startUdpPeer(echo = true): Promise<UdpPeer> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  const received: UdpPeer["received"] = [];
  socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    received.push({ data: new Uint8Array(msg), addr: rinfo.address, port: rinfo.port });
    if (echo) socket.send(msg, rinfo.port, rinfo.address);
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    port: socket.address().port,
    received,
    send: (data, port, addr = "127.0.0.1") =>
      new Promise((resolve, reject) =>
        socket.send(data, port, addr, (err) => (err ? reject(err) : resolve()))
      ),
    close: () => {
      socket.close();
      return closed;
    },
  };
}

/** A certificate and its key, PEM. */
export interface CertPair {
  cert: string;
  key: string;
}

/** A throwaway PKI in a temporary directory. */
export interface TestPki {
  dir: string;
  /** Path of the CA's certificate (give it to the policy's `[tls] ca_files`). */
  caFile: string;
  /** A certificate for `tls.test` and 127.0.0.1, signed by the CA. */
  good: CertPair;
  /** A certificate for `other.test` only, signed by the CA. */
  wrongName: CertPair;
  /** A certificate for `tls.test` that expired yesterday, signed by the CA. */
  expired: CertPair;
  /** A certificate for `tls.test` signed by a different, unknown CA. */
  unknownCa: CertPair;
  /** Removes the directory. */
  remove(): Promise<void>;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    dir,
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=wasmnet test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
}

async function makeLeaf(
  dir: string,
  name: string,
  ca: string,
  sans: string,
  days: string,
): Promise<CertPair> {
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  await openssl(dir, "req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    // a serial per certificate (no shared serial file: the leaves are made in parallel)
    "-set_serial",
    String(crypto.getRandomValues(new Uint32Array(1))[0] + 1),
    "-out",
    `${name}.pem`,
    "-days",
    days,
    "-extfile",
    `${name}.ext`,
  );
  return {
    cert: await Deno.readTextFile(`${dir}/${name}.pem`),
    key: await Deno.readTextFile(`${dir}/${name}.key`),
  };
}

/** Makes a CA and the certificates of {@link TestPki} with `openssl` (needs the `openssl` CLI on PATH). */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "wasmnet-pki-" });
  try {
    await Promise.all([makeCa(dir, "ca"), makeCa(dir, "rogue")]);
    const [good, wrongName, expired, unknownCa] = await Promise.all([
      makeLeaf(dir, "good", "ca", "DNS:tls.test,IP:127.0.0.1", "2"),
      makeLeaf(dir, "wrong", "ca", "DNS:other.test", "2"),
      makeLeaf(dir, "expired", "ca", "DNS:tls.test", "-1"),
      makeLeaf(dir, "unknown", "rogue", "DNS:tls.test", "2"),
    ]);
    return {
      dir,
      caFile: `${dir}/ca.pem`,
      good,
      wrongName,
      expired,
      unknownCa,
      remove: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
}

/** A TLS server on loopback for tests. */
export interface TlsPeer {
  port: number;
  /** Handshakes that failed on the server's side (the client refused the certificate). */
  failedHandshakes: number;
  close(): Promise<void>;
}

/**
 * Starts a TLS server on 127.0.0.1 with `pair`. Each connection gets `handle` (default: echo every byte
 * back); a connection whose handshake fails is counted and closed.
 */
export function startTlsServer(
  pair: CertPair,
  handle: (conn: Deno.TlsConn) => Promise<void> = (conn) => conn.readable.pipeTo(conn.writable),
): TlsPeer {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: pair.cert, key: pair.key });
  const conns = new Set<Deno.TlsConn>();
  const tasks = new Set<Promise<void>>();
  const peer: TlsPeer = {
    port: listener.addr.port,
    failedHandshakes: 0,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by the handler
        }
      }
      await Promise.allSettled([loop, ...tasks]);
    },
  };
  const serve = async (conn: Deno.TlsConn) => {
    try {
      await conn.handshake();
    } catch {
      peer.failedHandshakes++;
      return;
    }
    await handle(conn);
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const task = serve(conn).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch {
            // already closed
          }
          conns.delete(conn);
          tasks.delete(task);
        });
        tasks.add(task);
      }
    } catch {
      // listener closed
    }
  })();
  return peer;
}
