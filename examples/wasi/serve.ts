/**
 * Serves `examples/wasi/build/` on http://127.0.0.1:8000/ with the cross-origin isolation headers the
 * Worker + Atomics mode needs (COOP same-origin, COEP require-corp). The JSPI mode needs neither.
 *
 * Run: deno run --allow-net --allow-read examples/wasi/serve.ts
 *
 * @module
 */

const dir = new URL("./build/", import.meta.url);
const types: Record<string, string> = { html: "text/html", js: "text/javascript", wasm: "application/wasm" };

Deno.serve({ hostname: "127.0.0.1", port: 8000 }, async (req) => {
  const name = new URL(req.url).pathname.slice(1) || "index.html";
  if (name.includes("..") || name.includes("/")) return new Response("not found", { status: 404 });
  try {
    const body = await Deno.readFile(new URL(name, dir));
    return new Response(body, {
      headers: {
        "content-type": types[name.split(".").pop()!] ?? "application/octet-stream",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-embedder-policy": "require-corp",
      },
    });
  } catch {
    return new Response("not found", { status: 404 });
  }
});
