/**
 * Drain: how a server stops without cutting its users off. From {@link Drain.start}, new sessions are
 * refused (the caller's admission says 503) and open ones keep working for up to the timeout; the drain ends
 * as soon as the last session ends ({@link Drain.sessionsLeft} reaching 0), or at the timeout, when every
 * session still open is finished with 1001, writing out what its client already sent first
 * (`Closable.finish`, bounded by `DRAIN_FLUSH_MS` in src/core/sockets/tcp.ts). {@link Drain.stopNow} ends
 * it at once (a second SIGTERM, the server's signal).
 *
 * @module
 */

import type { Closable } from "../frontends/endpoint.ts";
import type { EventFields, LogLevel } from "./logger.ts";

/** The drain of one server's sessions. */
export class Drain {
  readonly #sessions: Set<Closable>;
  readonly #closeAll: () => void;
  readonly #events: ((level: LogLevel, event: string, fields?: EventFields) => void) | undefined;
  #done: Promise<void> | undefined;
  #finish: ((flush: boolean) => void) | undefined;

  /** Drains `sessions` (the server's live set); `closeAll` closes them at once with 1001. */
  constructor(
    sessions: Set<Closable>,
    closeAll: () => void,
    events?: (level: LogLevel, event: string, fields?: EventFields) => void,
  ) {
    this.#sessions = sessions;
    this.#closeAll = closeAll;
    this.#events = events;
  }

  /** True from {@link start} on. */
  get active(): boolean {
    return this.#done !== undefined;
  }

  /** Starts the drain (a second call returns the first one's promise); resolves when it has ended. */
  start(timeoutMs: number): Promise<void> {
    if (this.#done) return this.#done;
    let resolve!: () => void;
    this.#done = new Promise<void>((r) => (resolve = r));
    const finish = (flush: boolean) => {
      if (this.#finish === undefined) return;
      this.#finish = undefined;
      clearTimeout(timer);
      if (!flush) return (this.#closeAll(), resolve());
      // The window is over: every session closes with 1001, writing out what its client already sent.
      const sessions = [...this.#sessions];
      this.#sessions.clear();
      Promise.all(sessions.map((s) => s.finish ? s.finish(1001, "server shutting down") : s.shutdown(1001)))
        .then(() => resolve());
    };
    const timer = setTimeout(() => {
      this.#events?.("warn", "drain_timeout", {
        sessions: this.#sessions.size,
        timeout_secs: timeoutMs / 1000,
      });
      finish(true);
    }, timeoutMs);
    this.#finish = finish;
    this.#events?.("info", "draining", { sessions: this.#sessions.size, timeout_secs: timeoutMs / 1000 });
    if (this.#sessions.size === 0) finish(false);
    return this.#done;
  }

  /** A session ended: the drain ends when none is left. */
  sessionEnded(): void {
    if (this.#sessions.size === 0) this.#finish?.(false);
  }

  /** Ends the drain now: what is still open is closed with 1001 at once. */
  stopNow(): void {
    this.#finish?.(false);
  }
}
