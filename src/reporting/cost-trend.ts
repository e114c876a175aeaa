// Owns: the trend label of a spend series — growing, stable or spiking — exactly as docs/admin-api.md
// ("Trend") defines it. PURE: the series and the thresholds are arguments.

export type TrendLabel = 'growing' | 'stable' | 'spiking';

export interface TrendOptions {
  /** A day spikes when it exceeds this multiple of the median of the 7 days before it. Default 3. */
  spikeFactor?: number;
  /** …and is at least this much (µ$). Default 1,000,000 ($1): cents never spike. */
  minSpikeMicros?: number;
  /** Growing: the last 7 complete days exceed this multiple of the 7 before. Default 1.25. */
  growthFactor?: number;
  /** …by at least this much (µ$). Default 1,000,000 ($1). */
  minGrowthMicros?: number;
}

/** Days the rule reads: today (partial) and the 14 complete days before it. */
export const TREND_DAYS = 15;

export interface Trend {
  label: TrendLabel;
  /** Spend of the 7 complete days before today. */
  last7Micros: number;
  /** Spend of the 7 days before those. */
  prev7Micros: number;
  /** last7 / prev7; null when prev7 is 0. */
  changeRatio: number | null;
  todayMicros: number;
  yesterdayMicros: number;
  /** Median of the 7 complete days before today (the baseline today is compared with). */
  median7Micros: number;
  /** Which day spiked: 'today' or 'yesterday' (today wins when both do); null when none. */
  spikeOn: 'today' | 'yesterday' | null;
}

/** Median of an odd or even count (the mean of the two middle values, rounded down, for an even one). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  // mid and mid - 1 are in range: s has at least one value
  return s.length % 2 === 1 ? (s[mid] as number) : Math.floor(((s[mid - 1] as number) + (s[mid] as number)) / 2);
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * `daily`: spend per UTC day in micro-dollars, oldest first, the LAST entry being today (still in
 * progress). Fewer than 15 entries are padded with zero days in front; more are cut to the last 15.
 *
 *   d[14] = today so far, d[13] = yesterday, …, d[0] = 14 days ago
 *   last7 = Σ d[7..13]   prev7 = Σ d[0..6]
 *   spikes(i) ⇔ d[i] > spikeFactor × median(d[i-7..i-1]) and d[i] ≥ minSpikeMicros
 *   spiking  ⇔ spikes(14) or spikes(13)
 *   growing  ⇔ not spiking, last7 > growthFactor × prev7 and last7 − prev7 ≥ minGrowthMicros
 *   stable   otherwise (falling spend is stable: nothing to act on; changeRatio shows the fall)
 */
export function costTrend(daily: readonly number[], opts: TrendOptions = {}): Trend {
  const spikeFactor = opts.spikeFactor ?? 3;
  const minSpike = opts.minSpikeMicros ?? 1_000_000;
  const growthFactor = opts.growthFactor ?? 1.25;
  const minGrowth = opts.minGrowthMicros ?? 1_000_000;
  const d = [...Array<number>(Math.max(0, TREND_DAYS - daily.length)).fill(0), ...daily.slice(-TREND_DAYS)];
  const at = (i: number) => d[i] as number; // d always holds TREND_DAYS values
  const spikes = (i: number) => at(i) >= minSpike && at(i) > spikeFactor * median(d.slice(i - 7, i));
  const last7 = sum(d.slice(7, 14));
  const prev7 = sum(d.slice(0, 7));
  const spikeOn = spikes(14) ? 'today' : spikes(13) ? 'yesterday' : null;
  const label: TrendLabel = spikeOn !== null ? 'spiking'
    : last7 > growthFactor * prev7 && last7 - prev7 >= minGrowth ? 'growing'
    : 'stable';
  return {
    label, last7Micros: last7, prev7Micros: prev7, changeRatio: prev7 === 0 ? null : last7 / prev7,
    todayMicros: at(14), yesterdayMicros: at(13), median7Micros: median(d.slice(7, 14)), spikeOn,
  };
}
