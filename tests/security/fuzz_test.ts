/**
 * The protocol fuzzer (fuzz.ts), short: a few thousand messages in `deno task test`. `deno task fuzz` runs
 * it long; set `WASMNET_FUZZ_SEED` to replay a failing seed and `WASMNET_FUZZ_ITERATIONS` for the length.
 */

import assert from "node:assert/strict";
import { runFuzz } from "./fuzz.ts";

const env = (name: string) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};
const iterations = Number(env("WASMNET_FUZZ_ITERATIONS") ?? 4000);
const seeds = env("WASMNET_FUZZ_SEED") !== undefined ? [Number(env("WASMNET_FUZZ_SEED"))] : [1, 2];

for (const seed of seeds) {
  Deno.test(`fuzz: ${iterations} random and mutated frames, seed ${seed}`, async () => {
    const t0 = performance.now();
    const report = await runFuzz(seed, iterations);
    assert.equal(report.messages, iterations);
    assert.ok(report.refusedByDecoder > iterations / 10, "the fuzzer does reach the decoder's refusals");
    assert.ok(report.opened > 10, "the fuzzer does open sockets");
    if (iterations > 10_000) {
      console.log(
        `seed ${seed}: ${JSON.stringify(report)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
  });
}
