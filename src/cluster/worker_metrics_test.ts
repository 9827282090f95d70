import assert from "node:assert/strict";
import { mergeWorkerMetrics } from "./worker_metrics.ts";

Deno.test("worker metrics: one family block each, every sample labelled by worker", () => {
  const one = `# HELP wasmnet_sessions_open Sessions open now.
# TYPE wasmnet_sessions_open gauge
wasmnet_sessions_open{frontend="wasmnet"} 2
# HELP up_total A counter.
# TYPE up_total counter
up_total 5
`;
  const two = one.replace("} 2", "} 3").replace("up_total 5", "up_total 7");
  assert.equal(
    mergeWorkerMetrics([{ index: 0, text: one }, { index: 1, text: two }]),
    `# HELP wasmnet_sessions_open Sessions open now.
# TYPE wasmnet_sessions_open gauge
wasmnet_sessions_open{worker="0",frontend="wasmnet"} 2
wasmnet_sessions_open{worker="1",frontend="wasmnet"} 3
# HELP up_total A counter.
# TYPE up_total counter
up_total{worker="0"} 5
up_total{worker="1"} 7
`,
  );
});
