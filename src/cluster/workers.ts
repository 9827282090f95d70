/**
 * `--workers N`: N servers on one port, each in its own isolate (a Web Worker: its own thread and event loop,
 * so N cores), sharing the listening port through `SO_REUSEPORT` (`Deno.serve({ reusePort: true })`, which
 * Deno 2.9.6 only allows with `--unstable-net`); the kernel spreads new connections over them.
 *
 * Why workers and not `deno serve --parallel`: that command owns the process (its own flags, a default-export
 * module, no way to pass wasmnet's arguments or run the admin listener beside it), so the CLI could no longer
 * be `deno run cli.ts …` or a library. Why isolates and not child processes: a Worker inherits the parent's
 * permissions exactly (a child process would need its Deno flags rebuilt, and narrow grants such as
 * `--allow-net=…` cannot be read back), and its lifetime is the parent's, so no worker outlives it.
 *
 * The supervisor (this module, on the main thread) owns the signals and relays each to every worker, which
 * does what one process would: SIGTERM drains (a second one stops at once), SIGINT stops at once, SIGHUP
 * reloads. It resolves once every worker has stopped. Worker 0 binds first; the others bind the port it got (so `--port 0` works too).
 *
 * @module
 */

/** What a worker tells the supervisor. */
export type FromWorker =
  | { type: "listening"; url: string; port: number; banner: string[] }
  | { type: "stopped"; code: number }
  /** Worker 0's admin listener asks for every worker's metrics. */
  | { type: "gather"; id: number }
  /** One worker's metrics text, for gather `id`. */
  | { type: "rendered"; id: number; text: string };

/** One worker's metrics text, by index. */
export interface WorkerMetrics {
  index: number;
  text: string;
}

/** What the supervisor tells a worker. */
export type ToWorker =
  | { type: "drain" }
  /** Stop at once (SIGINT, or the supervisor's signal aborted). */
  | { type: "stop" }
  | { type: "reload" }
  /** Render your metrics and answer `rendered` with this id. */
  | { type: "render"; id: number }
  /** The answer to your `gather`: every worker that answered in time. */
  | { type: "gathered"; id: number; parts: WorkerMetrics[] };

/** How long the supervisor waits for the workers' metrics before answering with those it has. */
const GATHER_TIMEOUT_MS = 2000;

/** Where a worker sits: read from its name, set by {@link superviseWorkers}. */
export interface WorkerPlace {
  index: number;
  workers: number;
  args: string[];
}

const NAME_PREFIX = "wasmnet-worker ";

/** This isolate's place when it is a wasmnet worker, else null (the main thread, or another Worker). */
export function workerPlace(): WorkerPlace | null {
  const name = (globalThis as { name?: unknown }).name;
  if (typeof WorkerGlobalScopeLike() === "undefined" || typeof name !== "string") return null;
  if (!name.startsWith(NAME_PREFIX)) return null;
  const place = JSON.parse(name.slice(NAME_PREFIX.length)) as WorkerPlace;
  return place;
}

function WorkerGlobalScopeLike(): unknown {
  return (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope;
}

/** Options of {@link superviseWorkers}. */
export interface SuperviseOptions {
  /** The module each worker runs (cli.ts: it recognises itself as a worker by its name). */
  entry: URL;
  /** The CLI arguments, without `--workers`; `--port` is replaced by the bound port for workers 1…N-1. */
  args: string[];
  workers: number;
  /** Aborting it drains every worker (as SIGTERM does). */
  signal?: AbortSignal;
  /** Called once every worker listens, with worker 0's banner lines and the URL. */
  onListening?: (url: string, banner: string[]) => void;
  /** Called when a worker stops by itself (it crashed or failed to listen). */
  onWorkerExit?: (index: number, code: number) => void;
}

/**
 * Runs `workers` servers on one port until SIGTERM drains them (or SIGINT or the signal stops them); resolves with the
 * exit code (0, or the first non-zero code a worker stopped with).
 */
export async function superviseWorkers(options: SuperviseOptions): Promise<number> {
  const running: { worker: Worker; stopped: Promise<number> }[] = [];
  let exitCode = 0;
  let gathers = 0;
  /** Gathers in progress: the asking worker, and the parts so far (by supervisor-side id). */
  const pending = new Map<number, { asker: Worker; askerId: number; parts: WorkerMetrics[]; done(): void }>();
  const gather = (asker: Worker, askerId: number) => {
    const id = ++gathers;
    const entry = {
      asker,
      askerId,
      parts: [] as WorkerMetrics[],
      done: () => {
        if (!pending.delete(id)) return;
        clearTimeout(timer);
        const parts = entry.parts.sort((a, b) => a.index - b.index);
        post(asker, { type: "gathered", id: askerId, parts });
      },
    };
    const timer = setTimeout(entry.done, GATHER_TIMEOUT_MS);
    pending.set(id, entry);
    for (const { worker } of running) post(worker, { type: "render", id });
  };
  const start = (index: number, args: string[]) => {
    const place: WorkerPlace = { index, workers: options.workers, args };
    const worker = new Worker(options.entry, { type: "module", name: NAME_PREFIX + JSON.stringify(place) });
    let listening: (m: Extract<FromWorker, { type: "listening" }> | null) => void = () => {};
    const ready = new Promise<Extract<FromWorker, { type: "listening" }> | null>((r) => (listening = r));
    const stopped = new Promise<number>((resolve) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        if (e.data.type === "listening") listening(e.data);
        if (e.data.type === "gather") gather(worker, e.data.id);
        if (e.data.type === "rendered") {
          const entry = pending.get(e.data.id);
          if (entry && typeof e.data.text === "string") {
            entry.parts.push({ index, text: e.data.text });
            if (entry.parts.length >= running.length) entry.done();
          }
        }
        if (e.data.type === "stopped") {
          listening(null);
          if (e.data.code !== 0 && exitCode === 0) exitCode = e.data.code;
          resolve(e.data.code);
        }
      };
      worker.onerror = (e) => {
        e.preventDefault();
        console.error(`wasmnet-server: worker ${index} failed: ${e.message}`);
        listening(null);
        if (exitCode === 0) exitCode = 1;
        resolve(1);
      };
    });
    stopped.then((code) => {
      worker.terminate();
      options.onWorkerExit?.(index, code);
    });
    running.push({ worker, stopped });
    return ready;
  };

  const drain = () => {
    for (const { worker } of running) post(worker, { type: "drain" });
  };
  const stop = () => {
    for (const { worker } of running) post(worker, { type: "stop" });
  };
  const reload = () => {
    for (const { worker } of running) post(worker, { type: "reload" });
  };
  const signals: [Deno.Signal, () => void][] = Deno.build.os === "windows"
    ? [["SIGINT", stop]]
    : [["SIGINT", stop], ["SIGTERM", drain], ["SIGHUP", reload]];
  for (const [s, f] of signals) Deno.addSignalListener(s, f);
  options.signal?.addEventListener("abort", stop, { once: true });
  try {
    const first = await start(0, options.args);
    if (first === null) return Math.max(exitCode, 1);
    const rest = withPort(options.args, first.port);
    const others = [];
    for (let i = 1; i < options.workers; i++) others.push(start(i, rest));
    if ((await Promise.all(others)).some((m) => m === null)) {
      stop();
    } else {
      options.onListening?.(first.url, first.banner);
    }
    if (options.signal?.aborted) stop();
    await Promise.all(running.map((r) => r.stopped));
    return exitCode;
  } finally {
    for (const [s, f] of signals) Deno.removeSignalListener(s, f);
    options.signal?.removeEventListener("abort", stop);
  }
}

function post(worker: Worker, message: ToWorker): void {
  try {
    worker.postMessage(message);
  } catch {
    // already terminated
  }
}

/** `args` with `--port` set to `port` (replacing any `--port X` / `--port=X`). */
export function withPort(args: readonly string[], port: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--port") {
      i++;
      continue;
    }
    if (args[i].startsWith("--port=")) continue;
    out.push(args[i]);
  }
  return [...out, "--port", String(port)];
}

/** The worker side of the channel: the isolate's own `postMessage`/`onmessage` (typed here once). */
interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
}

/** Tells the supervisor something (only inside a worker). */
export function toSupervisor(message: FromWorker): void {
  (globalThis as unknown as WorkerScope).postMessage(message);
}

/** Hears the supervisor (only inside a worker); replaces any earlier handler. */
export function onSupervisor(handler: (message: ToWorker) => void): void {
  (globalThis as unknown as WorkerScope).onmessage = (e) => handler(e.data);
}

/**
 * A worker's side of the channel: the relayed signals as `drain`, `stop` and `reload` events, and the metrics
 * exchange (answer `render` with this worker's text; {@link gather} every worker's, for worker 0's admin
 * listener).
 */
export class WorkerChannel extends EventTarget {
  #renderer: () => Promise<string> = () => Promise.resolve("");
  #gathers = 0;
  readonly #pending = new Map<number, (parts: WorkerMetrics[]) => void>();

  /** Listens to the supervisor (replacing any earlier handler). */
  constructor() {
    super();
    onSupervisor((message) => {
      if (message.type === "drain" || message.type === "stop" || message.type === "reload") {
        this.dispatchEvent(new Event(message.type));
      }
      if (message.type === "render") {
        this.#renderer().catch(() => "").then((text) =>
          toSupervisor({ type: "rendered", id: message.id, text })
        );
      }
      if (message.type === "gathered") {
        this.#pending.get(message.id)?.(message.parts);
        this.#pending.delete(message.id);
      }
    });
  }

  /** What this worker answers when its metrics are asked for. */
  setRenderer(render: () => Promise<string>): void {
    this.#renderer = render;
  }

  /** Every worker's metrics (those that answered within the supervisor's timeout), by index. */
  gather(): Promise<WorkerMetrics[]> {
    const id = ++this.#gathers;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      toSupervisor({ type: "gather", id });
    });
  }
}
