// The reporting core on what its main tests leave out: the JSON and CSV shapes of a cost report,
// ties between series and keys, medians of even counts, and the query parsers' limits.
import t from 'tap';
import { costGroupJson, costReportCsv, costReportJson } from '../../../src/reporting/cost-report-json.ts';
import { costTrend, median } from '../../../src/reporting/cost-trend.ts';
import { dailySeries, groupCosts, type CostCell } from '../../../src/reporting/group-costs.ts';
import { parseAuditQuery, parseLookback } from '../../../src/reporting/parse-report-query.ts';

function cell(over: Partial<CostCell>): CostCell {
  return {
    day: '2026-05-01', team: 'alpha', agent: null, user: null, provider: 'openai', model: 'gpt-4o',
    requests: 1, costMicros: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, estimatedRequests: 0, ...over,
  };
}

t.test('a cost report as JSON and CSV', async (t) => {
  const report = groupCosts([
    cell({ team: 'alpha', costMicros: 1_500_000, requests: 3, inputTokens: 10, outputTokens: 20, cacheReadTokens: 1, cacheWriteTokens: 2, estimatedRequests: 1 }),
    cell({ team: '=cmd', costMicros: 250, requests: 1 }),
    cell({ team: null, costMicros: 0, requests: 2 }),
  ], 'team');
  const since = Date.UTC(2026, 4, 1);
  const until = Date.UTC(2026, 4, 8);
  const json = costReportJson(report, { since, until });
  t.same(json, {
    by: 'team', since: '2026-05-01T00:00:00.000Z', until: '2026-05-08T00:00:00.000Z', currency: 'USD',
    total: { cost_micros: 1_500_250, cost_usd: 1.50025, requests: 6, input_tokens: 10, output_tokens: 20, cache_read_tokens: 1, cache_write_tokens: 2, estimated_requests: 1 },
    groups: [
      { key: 'alpha', cost_micros: 1_500_000, cost_usd: 1.5, requests: 3, input_tokens: 10, output_tokens: 20, cache_read_tokens: 1, cache_write_tokens: 2, estimated_requests: 1 },
      { key: '=cmd', cost_micros: 250, cost_usd: 0.00025, requests: 1, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, estimated_requests: 0 },
      { key: null, cost_micros: 0, cost_usd: 0, requests: 2, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, estimated_requests: 0 },
    ],
  });
  t.notOk('key' in costGroupJson(report.total), 'the total has no key');
  t.same(costReportCsv(report), [
    'team,cost_micros,cost_usd,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated_requests',
    'alpha,1500000,1.500000,3,10,20,1,2,1',
    "'=cmd,250,0.000250,1,0,0,0,0,0",
    ',0,0.000000,2,0,0,0,0,0',
  ]);
});

t.test('daily series: equal totals are ordered by key, a missing key last', async (t) => {
  const days = ['2026-05-01', '2026-05-02'];
  const series = dailySeries([
    cell({ team: 'beta', day: '2026-05-01', costMicros: 5 }),
    cell({ team: null, day: '2026-05-02', costMicros: 5 }),
    cell({ team: 'alpha', day: '2026-05-02', costMicros: 5 }),
    cell({ team: 'alpha', day: '2026-04-30', costMicros: 99 }), // outside the days asked for
  ], 'team', days);
  t.same(series.map((s) => [s.key, s.daily, s.totalMicros]), [['alpha', [0, 5], 5], ['beta', [5, 0], 5], [null, [0, 5], 5]]);
});

t.test('median of even and odd counts', async (t) => {
  const cases: [number[], number][] = [[[], 0], [[4], 4], [[3, 1, 2], 2], [[1, 2, 3, 10], 2], [[1, 4], 2], [[2, 2, 5, 5], 3]];
  for (const [values, want] of cases) t.equal(median(values), want, JSON.stringify(values));
});

t.test('a trend over more than 15 days keeps the last 15', async (t) => {
  const old = Array<number>(10).fill(50_000_000);
  const recent = Array<number>(15).fill(1_000_000);
  t.match(costTrend([...old, ...recent]), { label: 'stable', spikeOn: null });
});

t.test('parseLookback: at most ten years', async (t) => {
  const cases: [string, number | undefined][] = [['1m', 60_000], ['3660d', 3660 * 86_400_000], ['3661d', undefined], ['999999w', undefined], ['0d', undefined], ['5y', undefined]];
  for (const [text, want] of cases) t.equal(parseLookback(text), want, text);
});

t.test('a fault that is not a query problem is not turned into a message', async (t) => {
  class Broken extends URLSearchParams {
    override get(): string | null {
      throw new RangeError('boom');
    }
  }
  t.throws(() => parseAuditQuery(new Broken('user=x'), Date.UTC(2026, 4, 1)), { name: 'RangeError', message: 'boom' }, 'it propagates (a 500), never a 400');
  t.match(parseAuditQuery(new URLSearchParams('user=x&user=y'), Date.UTC(2026, 4, 1)), { ok: false, message: /more than once/ });
});
