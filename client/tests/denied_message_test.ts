/** How a refusal reads: the policy's, or the server's Deno permission sandbox's (not "denied by policy"). */

import { WasmnetClient, WasmnetError } from "../mod.ts";

/** A WebSocket stand-in that opens at once and answers every connect with `denied` carrying `code`. */
function deniedWith(code: string, msg: string) {
  return class {
    readyState = 0;
    bufferedAmount = 0;
    binaryType = "blob";
    protocol = "";
    #listeners: Record<string, ((event: unknown) => void)[]> = {};
    constructor() {
      setTimeout(() => {
        this.readyState = 1;
        this.#emit("open", {});
      }, 0);
    }
    addEventListener(type: string, listener: (event: unknown) => void) {
      (this.#listeners[type] ??= []).push(listener);
    }
    send(data: string | Uint8Array) {
      const req = JSON.parse(data as string);
      const reply = JSON.stringify({ ev: "denied", id: req.id, msg, code });
      setTimeout(() => this.#emit("message", { data: reply }), 0);
    }
    close() {
      this.readyState = 3;
      this.#emit("close", { code: 1000, reason: "" });
    }
    #emit(type: string, event: unknown) {
      for (const l of this.#listeners[type] ?? []) l(event);
    }
  };
}

for (
  const [code, msg, says] of [
    ["POLICY_DENIED", "blocked range 10.0.0.0/8", /denied by policy: blocked range/],
    [
      "PERMISSION_DENIED",
      "refused by the server's runtime permissions (Deno's --deny-net, …), not by its policy",
      /10\.1\.2\.3:80 denied: refused by the server's runtime permissions/,
    ],
  ] as const
) {
  Deno.test(`client: a ${code} refusal reads as such`, async () => {
    const client = new WasmnetClient("ws://fake", { WebSocket: deniedWith(code, msg) });
    await client.ready();
    const error = await client.connect("10.1.2.3", 80).then(() => null, (e) => e);
    if (!(error instanceof WasmnetError) || error.kind !== "denied") throw new Error(String(error));
    if (!says.test(error.message)) throw new Error(error.message);
    if (code === "PERMISSION_DENIED" && /by policy/.test(error.message.split(": ")[1])) {
      throw new Error(`says policy: ${error.message}`);
    }
    await client.disconnect();
  });
}
