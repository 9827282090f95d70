/**
 * The bench's statistics, pure and free of command-line state so the loopback and browser benches share
 * them: quantiles, and ratios paired by round against a baseline of the same run.
 *
 * @module
 */

/** A metric measured in rounds: one value per round, or why it could not be measured. */
export type Rounds = number[] | string;
/** Round trips measured in rounds: each round's round-trip times (µs), or why not. */
export type RttRounds = number[][] | string;

/** The `q` quantile (0..1) of `values`. */
export function quantile(values: number[], q: number): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

/** The median of `values`. */
export const median = (values: number[]) => quantile(values, 0.5);

/**
 * The paired ratio of `v` to `base`: each round of `v` against the baseline's same round, then the median of
 * those ratios (so drift between rounds cancels). Round trips compare each round's p50, base over this.
 */
export function pairedRatio(
  v: Rounds | RttRounds | undefined,
  base: Rounds | RttRounds | undefined,
): number | undefined {
  if (!Array.isArray(v) || !Array.isArray(base)) return undefined;
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(v.length, base.length); i++) {
    const a = v[i], b = base[i];
    if (typeof a === "number" && typeof b === "number" && b > 0 && !Number.isNaN(a)) ratios.push(a / b);
    else if (Array.isArray(a) && Array.isArray(b) && a.length > 0) ratios.push(median(b) / median(a));
  }
  return ratios.length > 0 ? median(ratios) : undefined;
}
