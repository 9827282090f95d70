/**
 * What the server counts per session, in one place: each admitted upgrade gets a {@link SessionMeter}
 * (opened by `upgradeToPort` with the framing its front end chose) and a socket observer that counts the
 * sockets the core opens for it; every decision is counted and kept for the status page; an ended session
 * gets its access line. The server wires this in when it has an admin listener or an access log.
 *
 * @module
 */

import type { DecisionLog, DecisionRecord } from "../core/log.ts";
import type { SocketObserver } from "../core/observer.ts";
import { observeUpgrade } from "../core/websocket.ts";
import type { AdminSource } from "./admin.ts";
import type { AccessRecord } from "./logger.ts";
import { framingLabel, type ServerMetrics, type SessionMeter } from "./metrics.ts";
import { StatusBoard } from "./status.ts";

/** One upgrade's metering: the observer to hand the front end, and its meter once the WebSocket is up. */
export interface MeteredUpgrade {
  observer: SocketObserver;
  current: SessionMeter | undefined;
}

/** The server's side of what the status page, `/metrics` and the access log need. */
export class SessionMetering {
  readonly metrics: ServerMetrics;
  readonly board: StatusBoard = new StatusBoard();
  readonly #accessLog: ((record: AccessRecord) => void) | undefined;
  readonly #replica: string | undefined;

  /** Counts into `metrics`; ended sessions go to `accessLog` (with `replica`, when named). */
  constructor(metrics: ServerMetrics, accessLog?: (record: AccessRecord) => void, replica?: string) {
    this.metrics = metrics;
    this.#accessLog = accessLog;
    this.#replica = replica;
  }

  /** `log` with every decision counted (by op, outcome, rule) and kept for the status page first. */
  decisions(log: DecisionLog): DecisionLog {
    const metrics = this.metrics, board = this.board;
    return (record: DecisionRecord) => (metrics.decided(record), board.decided(record), log(record));
  }

  /** Meters the upgrade of `request` to a session of `frontend` from `clientIp`. */
  meterUpgrade(request: Request, frontend: string, clientIp: string): MeteredUpgrade {
    const all = this.metrics.sockets;
    const metered: MeteredUpgrade = {
      current: undefined,
      observer: {
        opened: (kind) => {
          if (metered.current) metered.current.socketsOpened++;
          all.opened(kind);
        },
        closed: all.closed,
        connected: all.connected,
        failed: all.failed,
      },
    };
    observeUpgrade(request, (protocol) => {
      const meter = this.metrics.openSession(
        frontend,
        framingLabel(protocol),
        clientIp,
        (m) => this.#ended(m),
      );
      this.board.sessionOpened();
      return (metered.current = meter);
    });
    return metered;
  }

  /** What the admin listener serves; `metricsText` replaces `/metrics` (a supervisor's merged text). */
  adminSource(state: {
    notReady: () => string | null;
    draining: () => boolean;
    policy: () => string;
    metricsText?: () => Promise<string> | undefined;
  }): AdminSource {
    return {
      metrics: () => state.metricsText?.() ?? this.metrics.render(),
      notReady: state.notReady,
      status: () =>
        this.board.snapshot(this.metrics, {
          draining: state.draining(),
          policy: state.policy(),
          refusals: this.metrics.refusalCount,
        }),
    };
  }

  /** A metered session ended: its totals stay on the status page, and it gets its access line. */
  #ended(meter: SessionMeter): void {
    this.board.sessionClosed(meter);
    this.#accessLog?.({
      session: meter.id,
      frontend: meter.frontend,
      framing: meter.framing,
      client: meter.clientIp,
      duration_secs: Math.round(meter.ageMs) / 1000,
      bytes_up: meter.bytesUp,
      bytes_down: meter.bytesDown,
      sockets: meter.socketsOpened,
      close_code: meter.closeCode ?? 1006,
      ...(this.#replica !== undefined ? { replica: this.#replica } : {}),
    });
  }
}
