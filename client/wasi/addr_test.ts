import assert from "node:assert/strict";
import {
  ADDR_PORT_SIZE,
  formatIp,
  parseHostPort,
  parseIp,
  readAddrPort,
  writeAddr,
  writeAddrPort,
} from "./addr.ts";

Deno.test("parseIp / formatIp: literals round-trip, names and junk are rejected", () => {
  const cases: [string, string | null][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["256.0.0.1", null],
    ["1.2.3", null],
    ["01.2.3.4x", null],
    ["::1", "::1"],
    ["::", "::"],
    ["[::1]", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["::ffff:10.0.0.1", "::ffff:10.0.0.1"],
    ["fe80::1%eth0", "fe80::1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:2:3:4:5:6:7:8:9", null],
    ["1::2::3", null],
    ["example.com", null],
    ["", null],
  ];
  for (const [text, want] of cases) {
    const ip = parseIp(text);
    assert.equal(ip ? formatIp(ip.bytes) : null, want, text);
  }
});

Deno.test("parseHostPort: the server's remote strings", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:5000"), { family: 4, address: "127.0.0.1", port: 5000 });
  assert.deepEqual(parseHostPort("[::1]:80"), { family: 6, address: "::1", port: 80 });
  assert.deepEqual(parseHostPort("::1:80"), { family: 6, address: "::1", port: 80 });
  assert.equal(parseHostPort("host:80"), null);
  assert.equal(parseHostPort("1.2.3.4:70000"), null);
  assert.equal(parseHostPort("1.2.3.4"), null);
});

Deno.test("__wasi_addr_port_t: 20 bytes, tag at 0, host-order (LE) port at 2, address at 4", () => {
  const mem = new Uint8Array(64).fill(0xee);
  const view = new DataView(mem.buffer);
  writeAddrPort(view, 8, { family: 4, address: "10.1.2.3", port: 0x1f90 });
  assert.deepEqual(
    Array.from(mem.subarray(8, 8 + ADDR_PORT_SIZE)),
    [1, 0, 0x90, 0x1f, 10, 1, 2, 3, ...new Array(12).fill(0)],
  );
  assert.equal(mem[7], 0xee);
  assert.equal(mem[28], 0xee);
  assert.deepEqual(readAddrPort(view, 8), { family: 4, address: "10.1.2.3", port: 8080 });
  writeAddrPort(view, 0, { family: 6, address: "2001:db8::7", port: 443 });
  assert.equal(mem[0], 2);
  assert.equal(view.getUint16(2, true), 443);
  assert.deepEqual(Array.from(mem.subarray(4, 8)), [0x20, 0x01, 0x0d, 0xb8]);
  assert.equal(mem[19], 7);
  assert.deepEqual(readAddrPort(view, 0), { family: 6, address: "2001:db8::7", port: 443 });
  mem[0] = 3; // unix
  assert.equal(readAddrPort(view, 0), null);
});

Deno.test("__wasi_addr_t: 18 bytes, tag at 0, address at 2", () => {
  const mem = new Uint8Array(18).fill(0xee);
  writeAddr(new DataView(mem.buffer), 0, "192.168.1.9");
  assert.deepEqual(Array.from(mem), [1, 0, 192, 168, 1, 9, ...new Array(12).fill(0)]);
});
