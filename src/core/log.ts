/**
 * Structured decision log: one JSON line per decision to connect, bind or refuse, naming the rule that
 * decided. Never carries secrets or payload bytes.
 *
 * @module
 */

import type { Decision } from "../policy/decision.ts";

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

/** A policy decision's part of a record: the outcome, the rule, and the reason when it refused. */
export function outcomeOf(decision: Decision): Pick<DecisionRecord, "decision" | "rule" | "reason"> {
  return {
    decision: decision.allowed ? "allow" : "deny",
    rule: decision.rule,
    reason: decision.allowed ? undefined : decision.reason,
  };
}

/** Receives decisions; the server's default writes JSON lines to stdout. */
export type DecisionLog = (record: DecisionRecord) => void;

/** A log that writes one JSON line per decision through `write` (default: `console.log`). */
export function jsonLineLog(write: (line: string) => void = console.log): DecisionLog {
  return (record) => write(JSON.stringify({ time: new Date().toISOString(), ...record }));
}

/** Decision lines one session may write at once, then per second (docs/security.md, bounds). */
export const LOG_BURST_PER_SESSION = 1000;
/** Decision lines per second a session may write once its burst is spent. */
export const LOG_LINES_PER_SEC_PER_SESSION = 100;
const TRACKED_SESSIONS = 4096;

/**
 * `log`, with the lines of one session bounded (issue 13: a client flooding refused requests must not
 * flood the log): a burst of {@link LOG_BURST_PER_SESSION}, then {@link LOG_LINES_PER_SEC_PER_SESSION};
 * what is over is counted, and the session's next line that fits is preceded by one record saying how
 * many were not written (`op: "log"`, rule `log_rate`). Records without a session (`-`) are never cut.
 */
export function rateLimitedLog(
  log: DecisionLog,
  burst = LOG_BURST_PER_SESSION,
  perSec = LOG_LINES_PER_SEC_PER_SESSION,
  now: () => number = () => performance.now(),
): DecisionLog {
  const buckets = new Map<string, { tokens: number; at: number; dropped: number }>();
  return (record) => {
    if (record.session === "-") return log(record);
    const t = now();
    let b = buckets.get(record.session);
    if (b === undefined) {
      if (buckets.size >= TRACKED_SESSIONS) buckets.delete(buckets.keys().next().value!);
      b = { tokens: burst, at: t, dropped: 0 };
      buckets.set(record.session, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * perSec);
    b.at = t;
    if (b.tokens < 1) {
      b.dropped++;
      return;
    }
    b.tokens--;
    if (b.dropped > 0) {
      log({
        session: record.session,
        client: record.client,
        op: "log",
        target: "-",
        decision: "error",
        rule: "log_rate",
        reason: `${b.dropped} decisions of this session not logged (over ${perSec} lines/s)`,
      });
      b.dropped = 0;
    }
    log(record);
  };
}

/** `log` with `replica` stamped on every record (docs/deployment.md). */
export function withReplica(log: DecisionLog, replica: string): DecisionLog {
  return (record) => log({ ...record, replica });
}

/** A log that drops everything (tests, embedding without logs). */
export const silentLog: DecisionLog = () => {};
