// groupCosts / dailySeries / dayKey / dayRange: table tests over fixed cost cells.
import t from 'tap';
import { dailySeries, dayKey, dayRange, groupCosts, type CostCell, type CostDimension } from '../../../src/reporting/group-costs.ts';

function cell(over: Partial<CostCell>): CostCell {
  return {
    day: '2026-05-01', team: 'alpha', agent: null, user: 'ann@acme.example', provider: 'anthropic', model: 'claude-haiku-4-5',
    requests: 1, costMicros: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, estimatedRequests: 0, ...over,
  };
}

const CELLS: CostCell[] = [
  cell({ day: '2026-05-01', team: 'alpha', user: 'ann@acme.example', model: 'claude-haiku-4-5', costMicros: 1_000, requests: 2, inputTokens: 10, outputTokens: 5 }),
  cell({ day: '2026-05-02', team: 'alpha', user: null, agent: 'alpha-bot', provider: 'openai', model: 'gpt-4o-mini', costMicros: 5_000, requests: 1, estimatedRequests: 1 }),
  cell({ day: '2026-05-02', team: 'beta', user: 'bob@acme.example', model: 'claude-haiku-4-5', costMicros: 3_000, requests: 4, cacheReadTokens: 7, cacheWriteTokens: 3 }),
  cell({ day: '2026-05-01', team: null, user: null, agent: null, provider: null, model: null, costMicros: 0, requests: 1 }),
];

const cases: Array<{ by: CostDimension; want: Array<[string | null, number, number]> }> = [
  // [key, costMicros, requests]
  { by: 'team', want: [['alpha', 6_000, 3], ['beta', 3_000, 4], [null, 0, 1]] },
  { by: 'agent', want: [['alpha-bot', 5_000, 1], [null, 4_000, 7]] },
  { by: 'user', want: [[null, 5_000, 2], ['bob@acme.example', 3_000, 4], ['ann@acme.example', 1_000, 2]] },
  { by: 'model', want: [['gpt-4o-mini', 5_000, 1], ['claude-haiku-4-5', 4_000, 6], [null, 0, 1]] },
  { by: 'provider', want: [['openai', 5_000, 1], ['anthropic', 4_000, 6], [null, 0, 1]] },
  // days oldest first, whatever their spend
  { by: 'day', want: [['2026-05-01', 1_000, 3], ['2026-05-02', 8_000, 5]] },
];

for (const c of cases) {
  t.test(`by ${c.by}`, async (t) => {
    const r = groupCosts(CELLS, c.by);
    t.equal(r.by, c.by);
    t.same(r.groups.map((g) => [g.key, g.costMicros, g.requests]), c.want);
    t.equal(r.total.costMicros, 9_000, 'the total is the same whatever the grouping');
    t.equal(r.total.requests, 8);
    t.equal(r.groups.reduce((a, g) => a + g.costMicros, 0), r.total.costMicros, 'groups add up to the total');
  });
}

t.test('token and estimate sums', async (t) => {
  const r = groupCosts(CELLS, 'team');
  t.match(r.groups[0], { key: 'alpha', inputTokens: 10, outputTokens: 5, estimatedRequests: 1 });
  t.match(r.groups[1], { key: 'beta', cacheReadTokens: 7, cacheWriteTokens: 3 });
});

t.test('ties: equal spend sorts by key, null last', async (t) => {
  const r = groupCosts([cell({ team: 'b', costMicros: 5 }), cell({ team: null, costMicros: 5 }), cell({ team: 'a', costMicros: 5 })], 'team');
  t.same(r.groups.map((g) => g.key), ['a', 'b', null]);
});

t.test('no cells: an empty report with zero totals', async (t) => {
  const r = groupCosts([], 'model');
  t.same(r.groups, []);
  t.equal(r.total.costMicros, 0);
});

t.test('integer micro-dollars add exactly', async (t) => {
  const many = Array.from({ length: 1000 }, () => cell({ costMicros: 1 }));
  t.equal(groupCosts(many, 'team').total.costMicros, 1000);
});

t.test('dayKey and dayRange are UTC', async (t) => {
  t.equal(dayKey(Date.UTC(2026, 4, 1, 23, 59, 59, 999)), '2026-05-01');
  t.equal(dayKey(Date.UTC(2026, 4, 2, 0, 0, 0, 0)), '2026-05-02');
  t.same(dayRange(Date.UTC(2026, 2, 2, 12), 3), ['2026-02-28', '2026-03-01', '2026-03-02'], 'across a month end (non-leap year)');
  t.same(dayRange(Date.UTC(2026, 0, 1), 1), ['2026-01-01']);
});

t.test('dailySeries aligns spend on the days given, dearest series first, ignores days outside', async (t) => {
  const days = ['2026-05-01', '2026-05-02', '2026-05-03'];
  const s = dailySeries([...CELLS, cell({ day: '2026-04-30', team: 'beta', costMicros: 99_999 })], 'team', days);
  t.same(s.map((x) => [x.key, x.daily, x.totalMicros]), [
    ['alpha', [1_000, 5_000, 0], 6_000],
    ['beta', [0, 3_000, 0], 3_000],
    [null, [0, 0, 0], 0],
  ]);
});
