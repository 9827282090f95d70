/**
 * Processes under test: spawning and stopping them, waiting for their port, and reading their memory
 * figures from Linux's /proc.
 *
 * @module
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Proc {
  pid: number;
  child: Deno.ChildProcess;
  stop(): Promise<void>;
}

export function spawn(cmd: string, argv: string[], env: Record<string, string> = {}): Proc {
  const child = new Deno.Command(cmd, { args: argv, stdout: "null", stderr: "piped", env }).spawn();
  const errText = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  return {
    pid: child.pid,
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // gone
      }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }, 3000);
      await child.status;
      clearTimeout(t);
      await errText;
    },
  };
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

export async function waitForPort(port: number, proc: Proc, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  proc.child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error("the server exited at start");
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

/** Minor page faults of a process so far (Linux /proc: field 10 of `stat`). */
export function minorFaults(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
}

/**
 * CPU time a process's threads have run so far, in milliseconds, to the nanosecond: the first field of each
 * `/proc/PID/task/TID/schedstat` (`stat`'s utime and stime count 10 ms ticks, too coarse for one round).
 */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}
