/**
 * The server's log lines: decisions (src/log.ts), one access line per ended session, and operational events
 * (listening, reload, drain), at a level (`--log-level`) and in a format (`--log-format json|text`).
 *
 * JSON: one object per line, `time`, `level`, `event` first. Text: `TIME LEVEL EVENT key=value …` (logfmt:
 * values with spaces, quotes or `=` are quoted). Neither carries payload bytes or secrets: callers pass
 * only the fields below, and tokens, passwords and data never reach them.
 *
 * @module
 */

import type { DecisionLog, DecisionRecord } from "../core/log.ts";

/** How much is logged: `debug` < `info` (decisions, access lines, events) < `warn` < `error`. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** How a line is written. */
export type LogFormat = "json" | "text";

/** Every level, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** One ended session, as its access line says. */
export interface AccessRecord {
  /** Session id (as in its decision lines), `-` when the front end has none. */
  session: string;
  /** The endpoint's name: `wasmnet`, `wisp`, `websockify`, `emscripten-posix`. */
  frontend: string;
  /** The framing its subprotocol named (`none`, `wasmnet.v2`, `wisp-v2`, `binary`, …). */
  framing: string;
  client: string;
  /** Seconds from the upgrade to the close, to the millisecond. */
  duration_secs: number;
  /** WebSocket message bytes from the browser. */
  bytes_up: number;
  /** WebSocket message bytes to the browser. */
  bytes_down: number;
  /** Sockets it opened (connected TCP and TLS, UDP, listeners; accepted connections not counted). */
  sockets: number;
  /** WebSocket close code (1006: the connection failed without a close frame). */
  close_code: number;
  /** Which replica served it (`[cluster] name`; host name and worker index by default), when named. */
  replica?: string;
}

/** Fields of an operational event line: plain values only. */
export type EventFields = Record<string, string | number | boolean | string[] | undefined>;

/** Writes the server's lines at a level, in a format. */
export interface Logger {
  /** Decision lines (level info). */
  readonly decision: DecisionLog;
  /** One line per ended session (level info). */
  access(record: AccessRecord): void;
  /** An operational event, e.g. `log("warn", "reload_failed", { error })`. */
  log(level: LogLevel, event: string, fields?: EventFields): void;
  /** Whether `level` is written. */
  enabled(level: LogLevel): boolean;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go (default `console.log` for debug/info, `console.error` for warn/error). */
  write?: (line: string, level: LogLevel) => void;
  /** The clock (tests). */
  now?: () => Date;
}

/** A logger writing at `level` and above, in `format` (defaults: info, json). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = LOG_LEVELS.indexOf(options.level ?? "info");
  const format = options.format ?? "json";
  const write = options.write ??
    ((line: string, level: LogLevel) =>
      (level === "warn" || level === "error" ? console.error : console.log)(line));
  const now = options.now ?? (() => new Date());
  const enabled = (level: LogLevel) => LOG_LEVELS.indexOf(level) >= min;
  const emit = (level: LogLevel, event: string, fields: object) => {
    if (!enabled(level)) return;
    const time = now().toISOString();
    write(
      format === "json"
        ? JSON.stringify({ time, level, event, ...fields })
        : textLine(time, level, event, fields),
      level,
    );
  };
  return {
    decision: (record: DecisionRecord) => emit("info", "decision", record),
    access: (record) => emit("info", "access", record),
    log: (level, event, fields = {}) => emit(level, event, fields),
    enabled,
  };
}

/** `TIME LEVEL EVENT k=v …`, logfmt quoting. */
function textLine(time: string, level: string, event: string, fields: object): string {
  const parts = [time, level, event];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${logfmtValue(Array.isArray(value) ? value.join(",") : String(value))}`);
  }
  return parts.join(" ");
}

function logfmtValue(value: string): string {
  return value !== "" && !/[\s"=\\]/.test(value) ? value : JSON.stringify(value);
}

/** Parses `--log-level`; null when it is not a level. */
export function parseLogLevel(text: string): LogLevel | null {
  return (LOG_LEVELS as readonly string[]).includes(text) ? text as LogLevel : null;
}
