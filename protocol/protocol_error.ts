/**
 * The error the event decoders throw on a message they cannot read. In a file of its own so the client can
 * export it without the rest of the package (its npm build's `.d.ts` declares whole modules).
 *
 * @module
 */

/** A message from the server that a client cannot read (thrown by the event decoders). */
export class ProtocolError extends Error {
  /** Names the error so logs say what went wrong. */
  override name = "ProtocolError";
}
