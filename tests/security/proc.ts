/**
 * What a server subprocess holds, from /proc (read through `cat`/`ls`: Deno wants --allow-all to read
 * /proc directly, and `deno task test` grants --allow-run). Linux only.
 *
 * @module
 */

/** Resident set size of `pid` in bytes (VmRSS). */
export async function rss(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stdout: "piped" }).output();
  const status = new TextDecoder().decode(out.stdout);
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)![1]);
  return kb * 1024;
}

/** Open file descriptors of `pid`. */
export async function openFds(pid: number): Promise<number> {
  const out = await new Deno.Command("ls", { args: [`/proc/${pid}/fd`], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "").length;
}

/** True while `pid` is running (not exited, not a zombie). */
export async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`], stdout: "piped", stderr: "null" })
    .output();
  const stat = new TextDecoder().decode(out.stdout);
  return out.success && !/\) Z /.test(stat);
}
