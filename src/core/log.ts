/**
 * Structured decision log: one JSON line per decision to connect, bind or refuse, naming the rule that
 * decided. Never carries secrets or payload bytes.
 *
 * @module
 */

/** One decision, as logged. */
export interface DecisionRecord {
  /** Which session (a short random id). */
  session: string;
  /** The client's IP as the server saw it. */
  client: string;
  /** What was asked: `connect`, `connect_tls`, `connect_udp`, `send_to`, `resolve`, `bind`, `wisp`, … */
  op: string;
  /** The target as the client wrote it (`host:port`). */
  target: string;
  /** The addresses the name resolved to (approved or not), when there was a lookup. */
  resolved?: string[];
  /** The outcome. `error` is used when the policy allowed it but the network failed. */
  decision: "allow" | "deny" | "error";
  /** The rule that decided, e.g. `network.deny[3] "127.0.0.0/8"`. */
  rule: string;
  /** A short reason (for deny and error). */
  reason?: string;
  /** Which replica decided (`[cluster] name`; host name and worker index by default), when it has one. */
  replica?: string;
}

/** Receives decisions; the server's default writes JSON lines to stdout. */
export type DecisionLog = (record: DecisionRecord) => void;

/** A log that writes one JSON line per decision through `write` (default: `console.log`). */
export function jsonLineLog(write: (line: string) => void = console.log): DecisionLog {
  return (record) => write(JSON.stringify({ time: new Date().toISOString(), ...record }));
}

/** `log` with `replica` stamped on every record (docs/deployment.md). */
export function withReplica(log: DecisionLog, replica: string): DecisionLog {
  return (record) => log({ ...record, replica });
}

/** A log that drops everything (tests, embedding without logs). */
export const silentLog: DecisionLog = () => {};
