/**
 * The server's metrics, in one prom-client registry rendered as Prometheus text ({@link ServerMetrics.render}).
 *
 * The data path never calls prom-client: it adds to plain numbers ({@link SessionMeter}, {@link FrontEndTotals}),
 * and the registry reads them when it is scraped (`collect()`), so counting a message costs two additions.
 * Labels are bounded: front end and framing (a fixed set each), op, outcome, and the policy rule that decided
 * (at most {@link MAX_RULE_LABELS} distinct; the rest are counted under `other`). No target host and no client
 * address is ever a label; those are on the status page, which only the admin listener serves.
 *
 * prom-client's default Node.js metrics are left out: under Deno some fail `promtool check metrics`
 * (`nodejs_active_handles_total` is a gauge named `_total`). Process memory and event-loop delay are
 * measured here instead, under correct names.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DecisionRecord } from "../core/log.ts";
import type { ErrorCode } from "../core/errors.ts";
import type { SocketKind, SocketObserver } from "../core/observer.ts";
import { SERVER_VERSION } from "./version.ts";

/** Distinct `rule` label values kept; later ones are counted as `other` (a reload may add new rules). */
export const MAX_RULE_LABELS = 256;

/** Why an upgrade was refused before it happened (the `reason` label of `wasmnet_refusals_total`). */
export type RefusalKind =
  | "origin"
  | "token"
  | "caps"
  | "store"
  | "size"
  | "malformed"
  | "draining"
  | "endpoint";

const REFUSAL_KINDS: readonly RefusalKind[] = [
  "origin",
  "token",
  "caps",
  "store",
  "size",
  "malformed",
  "draining",
  "endpoint",
];

/** WebSocket subprotocols that name a framing; anything else a front end answers with is `other`. */
const KNOWN_FRAMINGS = new Set(["wasmnet.v2", "wisp-v2", "binary", "base64", "json"]);

/** The `framing` label for the subprotocol a front end answered with (bounded: never the client's string). */
export function framingLabel(protocol: string | undefined): string {
  if (protocol === undefined || protocol === "") return "none";
  return KNOWN_FRAMINGS.has(protocol) ? protocol : "other";
}

/** Counts of one front end and framing, added to on the data path and read at scrape time. */
export interface FrontEndTotals {
  readonly frontend: string;
  readonly framing: string;
  opened: number;
  open: number;
  /** WebSocket message bytes from the browser. */
  bytesUp: number;
  /** WebSocket message bytes to the browser. */
  bytesDown: number;
  /** Times a session stopped reading its sockets because its WebSocket send buffer was full. */
  sendBufferPauses: number;
}

/** One live session as the metrics, the status page and the access log see it. */
export class SessionMeter {
  /** The session id used in logs (set by the front end once known; `-` until then). */
  id = "-";
  readonly frontend: string;
  readonly clientIp: string;
  /** `performance.now()` at the upgrade. */
  readonly startedAt: number;
  /** Wall-clock start, for the status page. */
  readonly startedWall: number;
  bytesUp = 0;
  bytesDown = 0;
  /** Sockets (connected TCP and TLS, UDP, listeners) this session opened, as the core reported them. */
  socketsOpened = 0;
  sendBufferPauses = 0;
  /** The WebSocket close code, once closed. */
  closeCode: number | undefined;
  #totals: FrontEndTotals;
  readonly #totalsFor: (framing: string) => FrontEndTotals;
  readonly #onClose: (meter: SessionMeter) => void;

  /** Use {@link ServerMetrics.openSession}. */
  constructor(
    totals: FrontEndTotals,
    clientIp: string,
    onClose: (meter: SessionMeter) => void,
    totalsFor: (framing: string) => FrontEndTotals,
  ) {
    this.frontend = totals.frontend;
    this.clientIp = clientIp;
    this.#totals = totals;
    this.#totalsFor = totalsFor;
    this.#onClose = onClose;
    this.startedAt = performance.now();
    this.startedWall = Date.now();
    totals.opened++;
    totals.open++;
  }

  /** The framing label: the subprotocol, or for wasmnet v1 the framing of its first message (`json`, `binary`). */
  get framing(): string {
    return this.#totals.framing;
  }

  /**
   * The front end learned its framing from the first message (wasmnet v1 speaks JSON or binary without a
   * subprotocol): the session is counted under it from now on. Only a session counted as `none` moves.
   */
  framed(framing: string): void {
    if (this.#totals.framing !== "none" || this.closeCode !== undefined) return;
    const label = framingLabel(framing);
    if (label === "none") return;
    const from = this.#totals, to = this.#totalsFor(label);
    from.opened--, from.open--;
    to.opened++, to.open++;
    this.#totals = to;
  }

  /** A message from the browser of `bytes` bytes. */
  received(bytes: number): void {
    this.bytesUp += bytes;
    this.#totals.bytesUp += bytes;
  }

  /** A message to the browser of `bytes` bytes. */
  sent(bytes: number): void {
    this.bytesDown += bytes;
    this.#totals.bytesDown += bytes;
  }

  /** The session stopped reading its sockets until its WebSocket send buffer drains. */
  paused(): void {
    this.sendBufferPauses++;
    this.#totals.sendBufferPauses++;
  }

  /** Milliseconds since the upgrade. */
  get ageMs(): number {
    return performance.now() - this.startedAt;
  }

  /** The WebSocket closed with `code` (1006 when it failed). Counted once. */
  closed(code: number): void {
    if (this.closeCode !== undefined) return;
    this.closeCode = code;
    this.#totals.open--;
    this.#onClose(this);
  }
}

/** Options for {@link ServerMetrics}. */
export interface ServerMetricsOptions {
  /** How often the event loop's delay is sampled, in ms (default 100; 0: not sampled). */
  eventLoopSampleMs?: number;
}

/** Connect-time buckets, in seconds: loopback (sub-millisecond) to the 30 s default timeout. */
const CONNECT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Event-loop delay buckets, in seconds. */
const LOOP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * Every metric of one server (or one worker). {@link render} gives the text exposition; counts come from
 * {@link openSession} (sessions, bytes, pauses), {@link refused}, {@link decided} and {@link reloaded}.
 */
export class ServerMetrics {
  /** The prom-client registry (for embedding alongside an application's own metrics). */
  readonly registry: Registry = new Registry();
  readonly #totals = new Map<string, FrontEndTotals>();
  readonly #live = new Set<SessionMeter>();
  readonly #refusals: Counter<"reason">;
  readonly #decisions: Counter<"op" | "outcome" | "rule">;
  readonly #rules = new Set<string>();
  readonly #reloads: Counter<"result">;
  readonly #loopDelay: Histogram;
  readonly #connectSeconds: Histogram<"kind">;
  readonly #socketsOpen: Record<SocketKind, number> = { tcp: 0, tls: 0, udp: 0, listener: 0 };
  readonly #socketsTotal: Record<SocketKind, number> = { tcp: 0, tls: 0, udp: 0, listener: 0 };
  readonly #errors = new Map<ErrorCode, number>();
  /** What the core reports about every socket it opens (src/core/observer.ts); plain counts, read at scrape. */
  readonly sockets: SocketObserver = {
    opened: (kind) => (this.#socketsOpen[kind]++, this.#socketsTotal[kind]++),
    closed: (kind) => void this.#socketsOpen[kind]--,
    connected: (kind, seconds) => this.#connectSeconds.observe({ kind }, seconds),
    failed: (code) => void this.#errors.set(code, (this.#errors.get(code) ?? 0) + 1),
  };
  #draining = false;
  #refusalCount = 0;
  #loopTimer: ReturnType<typeof setTimeout> | undefined;

  /** A registry with every wasmnet metric, at zero. */
  constructor(options: ServerMetricsOptions = {}) {
    const registers = [this.registry];
    const totals = () => this.#totals.values();
    const perFrontEnd = (
      name: string,
      help: string,
      type: "counter" | "gauge",
      value: (t: FrontEndTotals) => number,
    ) => {
      const Metric = type === "counter" ? Counter : Gauge;
      new Metric({
        name,
        help,
        labelNames: ["frontend", "framing"],
        registers,
        collect() {
          this.reset();
          for (const t of totals()) {
            const labels = { frontend: t.frontend, framing: t.framing };
            if (this instanceof Counter) this.inc(labels, value(t));
            else (this as Gauge).set(labels, value(t));
          }
        },
      });
    };
    perFrontEnd("wasmnet_sessions_open", "Sessions open now.", "gauge", (t) => t.open);
    perFrontEnd("wasmnet_sessions_total", "Sessions opened since start.", "counter", (t) => t.opened);
    perFrontEnd(
      "wasmnet_send_buffer_pauses_total",
      "Times a session stopped reading its sockets because its WebSocket send buffer was full.",
      "counter",
      (t) => t.sendBufferPauses,
    );
    new Counter({
      name: "wasmnet_websocket_bytes_total",
      help: "WebSocket message bytes, up (browser to server) and down (server to browser).",
      labelNames: ["frontend", "direction"],
      registers,
      collect() {
        this.reset();
        const sums = new Map<string, { up: number; down: number }>();
        for (const t of totals()) {
          const s = sums.get(t.frontend) ?? { up: 0, down: 0 };
          s.up += t.bytesUp;
          s.down += t.bytesDown;
          sums.set(t.frontend, s);
        }
        for (const [frontend, s] of sums) {
          this.inc({ frontend, direction: "up" }, s.up);
          this.inc({ frontend, direction: "down" }, s.down);
        }
      },
    });
    this.#refusals = new Counter({
      name: "wasmnet_refusals_total",
      help: "Upgrades refused before they happened, by reason.",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of REFUSAL_KINDS) this.#refusals.inc({ reason }, 0);
    this.#decisions = new Counter({
      name: "wasmnet_decisions_total",
      help: "Policy decisions by op, outcome (allow, deny, error) and the rule that decided.",
      labelNames: ["op", "outcome", "rule"],
      registers,
    });
    const open = this.#socketsOpen, total = this.#socketsTotal, errors = this.#errors;
    new Gauge({
      name: "wasmnet_sockets_open",
      help: "Sockets open now, by kind (tcp, tls, udp, listener).",
      labelNames: ["kind"],
      registers,
      collect() {
        for (const [kind, n] of Object.entries(open)) this.set({ kind }, n);
      },
    });
    new Counter({
      name: "wasmnet_sockets_total",
      help: "Sockets opened since start, by kind.",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(total)) this.inc({ kind }, n);
      },
    });
    new Counter({
      name: "wasmnet_errors_total",
      help: "Sockets that failed to open, by error code (as the client is told).",
      labelNames: ["code"],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of errors) this.inc({ code }, n);
      },
    });
    this.#connectSeconds = new Histogram({
      name: "wasmnet_connect_duration_seconds",
      help: "Time from an allowed decision to a connected socket.",
      labelNames: ["kind"],
      buckets: CONNECT_BUCKETS,
      registers,
    });
    this.#reloads = new Counter({
      name: "wasmnet_policy_reloads_total",
      help: "Policy reloads, by result (ok, error).",
      labelNames: ["result"],
      registers,
    });
    this.#reloads.inc({ result: "ok" }, 0);
    this.#reloads.inc({ result: "error" }, 0);
    const draining = () => this.#draining;
    new Gauge({
      name: "wasmnet_draining",
      help: "1 while the server drains (no new sessions), else 0.",
      registers,
      collect() {
        this.set(draining() ? 1 : 0);
      },
    });
    new Gauge({
      name: "wasmnet_build_info",
      help: "Always 1; the version is a label.",
      labelNames: ["version"],
      registers,
    }).set({ version: SERVER_VERSION }, 1);
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory of the process.",
      registers,
      collect() {
        this.set(Deno.memoryUsage().rss);
      },
    });
    new Gauge({
      name: "wasmnet_heap_bytes",
      help: "JavaScript heap of the process: used and total.",
      labelNames: ["kind"],
      registers,
      collect() {
        const m = Deno.memoryUsage();
        this.set({ kind: "used" }, m.heapUsed);
        this.set({ kind: "total" }, m.heapTotal);
      },
    });
    new Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since the Unix epoch, in seconds.",
      registers,
    }).set(Math.round((Date.now() - performance.now()) / 1000));
    this.#loopDelay = new Histogram({
      name: "wasmnet_event_loop_delay_seconds",
      help: "How late a timer fired: time the event loop was busy with other work.",
      buckets: LOOP_BUCKETS,
      registers,
    });
    this.#sampleLoop(options.eventLoopSampleMs ?? 100);
  }

  /** The text exposition (Prometheus format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Starts counting a session of `frontend` (an endpoint name) with the framing its subprotocol names;
   * `onClosed` is called once when it closes.
   */
  openSession(
    frontend: string,
    framing: string,
    clientIp: string,
    onClosed?: (meter: SessionMeter) => void,
  ): SessionMeter {
    const totalsFor = (framing: string) => {
      const key = `${frontend}\n${framing}`;
      let totals = this.#totals.get(key);
      if (!totals) {
        totals = { frontend, framing, opened: 0, open: 0, bytesUp: 0, bytesDown: 0, sendBufferPauses: 0 };
        this.#totals.set(key, totals);
      }
      return totals;
    };
    const meter = new SessionMeter(totalsFor(framing), clientIp, (m) => {
      this.#live.delete(m);
      onClosed?.(m);
    }, totalsFor);
    this.#live.add(meter);
    return meter;
  }

  /** The sessions open now (for the status page). */
  get liveSessions(): ReadonlySet<SessionMeter> {
    return this.#live;
  }

  /** An upgrade was refused before it happened. */
  refused(kind: RefusalKind): void {
    this.#refusalCount++;
    this.#refusals.inc({ reason: kind });
  }

  /** Upgrades refused before they happened, all reasons. */
  get refusalCount(): number {
    return this.#refusalCount;
  }

  /** A decision was logged (every front end logs through the server's log). */
  decided(record: DecisionRecord): void {
    let rule = record.rule;
    if (!this.#rules.has(rule)) {
      if (this.#rules.size >= MAX_RULE_LABELS) rule = "other";
      else this.#rules.add(rule);
    }
    this.#decisions.inc({ op: record.op, outcome: record.decision, rule });
  }

  /** A policy reload was tried. */
  reloaded(ok: boolean): void {
    this.#reloads.inc({ result: ok ? "ok" : "error" });
  }

  /** Marks the server as draining (`wasmnet_draining` 1). */
  set draining(value: boolean) {
    this.#draining = value;
  }

  /** Stops the event-loop sampler. */
  close(): void {
    clearTimeout(this.#loopTimer);
    this.#loopTimer = undefined;
  }

  #sampleLoop(everyMs: number): void {
    if (everyMs <= 0) return;
    const expected = performance.now() + everyMs;
    this.#loopTimer = setTimeout(() => {
      this.#loopDelay.observe(Math.max(0, performance.now() - expected) / 1000);
      this.#sampleLoop(everyMs);
    }, everyMs);
    Deno.unrefTimer(this.#loopTimer!); // the sampler never keeps the process alive
  }
}
