/**
 * Protocol v2 (flow control) on the wire: the subprotocol both sides name, and the window every socket
 * starts with. The `credit` request and event themselves are in `messages.ts`; docs/protocol.md ("Flow
 * control (v2)") is the prose form.
 *
 * @module
 */

/** The `Sec-WebSocket-Protocol` value a client offers (and the server answers) to speak protocol v2. */
export const PROTOCOL_V2 = "wasmnet.v2";

/** Credit each side holds for each new socket before any grant: 64 KiB in each direction. */
export const INITIAL_WINDOW = 64 * 1024;

/** Largest single grant (the binary framing carries it in 4 bytes). */
export const MAX_GRANT = 0xffff_ffff;
