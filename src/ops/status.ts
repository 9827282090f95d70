/**
 * What the status page shows (`/status.json`, drawn by `/status`): live sessions, the busiest targets,
 * recent refusals with the rule that decided, and totals. Target names and client addresses are here and
 * never in metric labels; only the admin listener serves them. Every list is bounded.
 *
 * @module
 */

import type { DecisionRecord } from "../core/log.ts";
import type { ServerMetrics, SessionMeter } from "./metrics.ts";
import { SERVER_VERSION } from "./version.ts";

/** Refusals kept for the page. */
export const RECENT_REFUSALS = 50;
/** Distinct targets counted; when full, the least used half is forgotten. */
export const TRACKED_TARGETS = 1000;
/** Sessions listed (the oldest first); the count is always exact. */
export const LISTED_SESSIONS = 200;

/** One refusal as the page lists it. */
export interface RefusalEntry {
  time: string;
  client: string;
  op: string;
  target: string;
  rule: string;
  reason?: string;
}

/** The page's data. */
export interface StatusSnapshot {
  version: string;
  uptime_secs: number;
  draining: boolean;
  policy: string;
  totals: {
    sessions_open: number;
    sessions_total: number;
    bytes_up: number;
    bytes_down: number;
    decisions_allow: number;
    decisions_deny: number;
    refusals: number;
  };
  sessions: {
    id: string;
    frontend: string;
    framing: string;
    client: string;
    age_secs: number;
    sockets: number;
    bytes_up: number;
    bytes_down: number;
  }[];
  targets: { target: string; connects: number }[];
  refusals: RefusalEntry[];
}

/** Collects the page's lists from the decision log. One per server. */
export class StatusBoard {
  readonly #refusals: RefusalEntry[] = [];
  readonly #targets = new Map<string, number>();
  #allow = 0;
  #deny = 0;
  #sessionsTotal = 0;
  #closedBytesUp = 0;
  #closedBytesDown = 0;
  readonly #started = performance.now();

  /** Notes one decision (every decision the server logs passes here). */
  decided(record: DecisionRecord): void {
    if (record.decision === "deny") {
      this.#deny++;
      if (this.#refusals.length >= RECENT_REFUSALS) this.#refusals.shift();
      this.#refusals.push({
        time: new Date().toISOString(),
        client: record.client,
        op: record.op,
        target: record.target,
        rule: record.rule,
        reason: record.reason,
      });
    } else if (record.decision === "allow") {
      this.#allow++;
      if (record.op !== "resolve") this.#countTarget(record.target);
    }
  }

  /** Notes a session's start and end (for totals that outlive the session). */
  sessionOpened(): void {
    this.#sessionsTotal++;
  }

  /** Adds a closed session's bytes to the totals. */
  sessionClosed(meter: SessionMeter): void {
    this.#closedBytesUp += meter.bytesUp;
    this.#closedBytesDown += meter.bytesDown;
  }

  /** The page's data now. */
  snapshot(
    metrics: ServerMetrics,
    info: { draining: boolean; policy: string; refusals: number },
  ): StatusSnapshot {
    const live = [...metrics.liveSessions];
    let up = this.#closedBytesUp, down = this.#closedBytesDown;
    for (const m of live) (up += m.bytesUp), (down += m.bytesDown);
    const sessions = live.slice(0, LISTED_SESSIONS).map((m) => ({
      id: m.id,
      frontend: m.frontend,
      framing: m.framing,
      client: m.clientIp,
      age_secs: Math.round(m.ageMs / 100) / 10,
      sockets: m.socketsOpened,
      bytes_up: m.bytesUp,
      bytes_down: m.bytesDown,
    }));
    const targets = [...this.#targets].sort((a, b) => b[1] - a[1]).slice(0, 10)
      .map(([target, connects]) => ({ target, connects }));
    return {
      version: SERVER_VERSION,
      uptime_secs: Math.round((performance.now() - this.#started) / 1000),
      draining: info.draining,
      policy: info.policy,
      totals: {
        sessions_open: live.length,
        sessions_total: this.#sessionsTotal,
        bytes_up: up,
        bytes_down: down,
        decisions_allow: this.#allow,
        decisions_deny: this.#deny,
        refusals: info.refusals,
      },
      sessions,
      targets,
      refusals: [...this.#refusals].reverse(),
    };
  }

  #countTarget(target: string): void {
    const n = this.#targets.get(target);
    if (n !== undefined) return void this.#targets.set(target, n + 1);
    if (this.#targets.size >= TRACKED_TARGETS) {
      const keep = [...this.#targets].sort((a, b) => b[1] - a[1]).slice(0, TRACKED_TARGETS / 2);
      this.#targets.clear();
      for (const [t, c] of keep) this.#targets.set(t, c);
    }
    this.#targets.set(target, 1);
  }
}
