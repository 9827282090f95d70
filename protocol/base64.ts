/**
 * Base64 for the JSON framing's `data` fields, in every runtime the client runs in: the native
 * `Uint8Array.prototype.toBase64` / `Uint8Array.fromBase64` where there are (Deno, recent browsers), a
 * portable fallback where there are not (Node 20).
 *
 * @module
 */

type Base64Native = { toBase64?: (this: Uint8Array) => string };
type Base64Static = { fromBase64?: (s: string) => Uint8Array };

/** Base64 of bytes; uses `Uint8Array.prototype.toBase64` where the runtime has it. */
export function encodeBase64(bytes: Uint8Array): string {
  // Looked up on each call, not once: a test (or a polyfill) may add or hide the native codec later.
  const native = (Uint8Array.prototype as Base64Native).toBase64;
  if (native) return native.call(bytes);
  let out = "";
  // Chunks keep String.fromCharCode's argument list short; 3-byte multiples keep the base64 seamless.
  for (let i = 0; i < bytes.length; i += 0x6000) {
    out += btoa(String.fromCharCode(...bytes.subarray(i, i + 0x6000)));
  }
  return out;
}

/** Bytes of base64 text; uses `Uint8Array.fromBase64` where the runtime has it. Throws on bad base64. */
export function decodeBase64(text: string): Uint8Array {
  const native = (Uint8Array as Base64Static).fromBase64;
  if (native) return native(text);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
