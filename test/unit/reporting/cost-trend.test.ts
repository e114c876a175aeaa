// costTrend: the growing / stable / spiking rule of docs/admin-api.md, as a table.
import t from 'tap';
import { costTrend, median, type TrendLabel } from '../../../src/reporting/cost-trend.ts';

const $ = 1_000_000;
/** 14 complete days then today: prev7 (7 days), last7 (7 days), today. */
const series = (prev7: number[], last7: number[], today: number) => [...prev7, ...last7, today];
const flat = (v: number) => Array<number>(7).fill(v);

const cases: Array<{ name: string; daily: number[]; label: TrendLabel; spikeOn?: 'today' | 'yesterday' | null }> = [
  { name: 'no spend at all', daily: [], label: 'stable', spikeOn: null },
  { name: 'flat $10/day', daily: series(flat(10 * $), flat(10 * $), 10 * $), label: 'stable' },
  { name: 'last week +20 % (below 1.25×)', daily: series(flat(10 * $), flat(12 * $), 12 * $), label: 'stable' },
  { name: 'last week +30 %', daily: series(flat(10 * $), flat(13 * $), 13 * $), label: 'growing' },
  { name: 'exactly 1.25× is not growing (strictly more)', daily: series(flat(8 * $), flat(10 * $), 10 * $), label: 'stable' },
  { name: 'new spend from zero, ≥ $1', daily: series(flat(0), flat($), $), label: 'growing' },
  { name: 'growth in cents only (< $1 more)', daily: series(flat(1000), flat(100_000), 0), label: 'stable' },
  { name: 'falling spend is stable', daily: series(flat(20 * $), flat(5 * $), 5 * $), label: 'stable' },
  { name: 'today so far > 3× the median of the last 7 days', daily: series(flat(10 * $), flat(10 * $), 31 * $), label: 'spiking', spikeOn: 'today' },
  { name: 'today exactly 3× is not a spike', daily: series(flat(10 * $), flat(10 * $), 30 * $), label: 'stable' },
  { name: 'yesterday > 3× the median of the 7 days before it', daily: series(flat(10 * $), [...Array<number>(6).fill(10 * $), 40 * $], 10 * $), label: 'spiking', spikeOn: 'yesterday' },
  { name: 'one expensive day a week ago is not a spike now (median ignores it)', daily: series(flat(10 * $), [90 * $, ...Array<number>(6).fill(10 * $)], 11 * $), label: 'growing' },
  { name: 'a spike needs ≥ $1: $0.50 after $0.01 days is not one', daily: series(flat(10_000), flat(10_000), 500_000), label: 'stable' },
  { name: 'first day of spend ≥ $1 with no history spikes', daily: [5 * $], label: 'spiking', spikeOn: 'today' },
  { name: 'spiking wins over growing', daily: series(flat(1 * $), flat(5 * $), 50 * $), label: 'spiking', spikeOn: 'today' },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = costTrend(c.daily);
    t.equal(r.label, c.label);
    if (c.spikeOn !== undefined) t.equal(r.spikeOn, c.spikeOn);
  });
}

t.test('the numbers behind the label', async (t) => {
  const r = costTrend(series(flat(10 * $), [1, 2, 3, 4, 5, 6, 7].map((x) => x * $), 9 * $));
  t.same(r, { label: 'stable', last7Micros: 28 * $, prev7Micros: 70 * $, changeRatio: 0.4, todayMicros: 9 * $, yesterdayMicros: 7 * $, median7Micros: 4 * $, spikeOn: null });
  t.equal(costTrend(series(flat(0), flat($), 0)).changeRatio, null, 'no ratio against a zero week');
});

t.test('longer series: only the last 15 days count', async (t) => {
  const long = [...Array<number>(30).fill(1000 * $), ...series(flat(10 * $), flat(10 * $), 10 * $)];
  t.equal(costTrend(long).label, 'stable');
  t.equal(costTrend(long).prev7Micros, 70 * $);
});

t.test('thresholds are options', async (t) => {
  const d = series(flat(10 * $), flat(10 * $), 25 * $);
  t.equal(costTrend(d).label, 'stable');
  t.equal(costTrend(d, { spikeFactor: 2 }).label, 'spiking');
  t.equal(costTrend(series(flat(10), flat(20), 20), { minGrowthMicros: 1 }).label, 'growing');
});

t.test('median', async (t) => {
  t.equal(median([]), 0);
  t.equal(median([5]), 5);
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2, 'even count: mean of the middle two, rounded down');
  t.equal(median([0, 0, 0, 0, 100, 100, 100]), 0);
});
