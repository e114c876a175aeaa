// The Ledger contract, run against every implementation (memory in unit, SQLite in integration).
import type { Test } from 'tap';
import type { Ledger, ReservationRequest } from '../../../src/ledger/ledger.ts';
import { budgetLinesFor, type ChargePrincipal } from '../../../src/metering/budget.ts';
import type { OrgConfig } from '../../../src/policy/types.ts';

/** When the contract's requests are made, unless a test names another time. */
export const AT = Date.parse('2026-11-26T10:00:00Z');
const b = (monthlyUsd?: number, dailyUsd?: number) => ({ monthlyUsd, dailyUsd });
export const CONTRACT_ORG: OrgConfig = {
  file: 'org.yaml', organization: 'Acme', budget: b(10), adminGroups: [], declaredSecrets: undefined, projects: new Map(),
  teams: new Map([['a', { key: 'a', name: 'A', idpGroups: [], grants: new Map(), policyFile: 'p', budget: b(1), userBudget: undefined }]]),
  agents: new Map([['bot', { key: 'bot', name: 'Bot', team: 'a', project: undefined, every: undefined, everySeconds: undefined, command: undefined, budget: b(undefined, 0.5) }]]),
  users: new Map(),
};
/** Agent `bot` of team `a` in CONTRACT_ORG ($0.50 a day). */
export const principal = { kind: 'agent' as const, subject: 'bot', agent: 'bot', team: 'a' };
/** No tokens of any kind. */
export const zero = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 };
/** A reservation of `amountMicros` on CONTRACT_ORG's lines, by `principal` (the agent unless named) at `at` (AT unless named). */
export const req = (id: string, amountMicros: number, opts: { at?: number; principal?: ChargePrincipal } = {}): ReservationRequest => {
  const at = opts.at ?? AT;
  const who = opts.principal ?? principal;
  return { id, at, amountMicros, lines: budgetLinesFor(CONTRACT_ORG, who, at), principal: who, provider: 'anthropic', model: 'claude-haiku-4-5' };
};
const team = { scope: 'team:a', windowKey: 'month:2026-11' };
const agentDay = { scope: 'agent:bot', windowKey: 'day:2026-11-26' };

export async function ledgerContract(t: Test, make: () => Ledger | Promise<Ledger>): Promise<void> {
  t.test('reserve holds the amount on every line; settle swaps it for the cost, once', async (t) => {
    const l = await make();
    t.same(await l.reserve(req('r1', 300_000)), { ok: true });
    const held = await l.lineStates([team, agentDay, { scope: 'org', windowKey: 'day:2026-11-26' }]);
    t.same([...held.values()], [{ spentMicros: 0, reservedMicros: 300_000 }, { spentMicros: 0, reservedMicros: 300_000 }, { spentMicros: 0, reservedMicros: 300_000 }]);
    const s = await l.settle({ id: 'r1', at: AT + 1000, costMicros: 120_000, estimated: false, tokens: { ...zero, inputTokens: 10 } });
    t.equal(s.settled, true);
    t.same(s.lines.find((x) => x.scope === 'team:a' && x.windowKey === 'month:2026-11'), { ...team, spentBeforeMicros: 0, spentAfterMicros: 120_000 });
    t.same((await l.lineStates([team])).get('team:a|month:2026-11'), { spentMicros: 120_000, reservedMicros: 0 });
    t.same(await l.settle({ id: 'r1', at: AT + 2000, costMicros: 999, estimated: false, tokens: zero }), { settled: false, lines: [] }, 'counted once');
    t.same((await l.lineStates([team])).get('team:a|month:2026-11'), { spentMicros: 120_000, reservedMicros: 0 });
    t.same(await l.settle({ id: 'nope', at: AT, costMicros: 1, estimated: false, tokens: zero }), { settled: false, lines: [] });
  });

  t.test('a request that would pass any limit is refused and holds nothing', async (t) => {
    const l = await make();
    t.same(await l.reserve(req('a', 400_000)), { ok: true });
    const r = await l.reserve(req('b', 200_000));
    t.match(r, { ok: false, line: { scope: 'agent:bot', window: { kind: 'day' } }, state: { spentMicros: 0, reservedMicros: 400_000 } }, 'the agent day limit ($0.50) is the first to bind');
    t.same((await l.lineStates([team])).get('team:a|month:2026-11'), { spentMicros: 0, reservedMicros: 400_000 });
    t.same(await l.release('a', AT), true);
    t.same(await l.release('a', AT), false, 'released once');
    t.same((await l.lineStates([team])).get('team:a|month:2026-11'), { spentMicros: 0, reservedMicros: 0 });
    t.same(await l.reserve(req('b', 200_000)), { ok: true });
    await t.rejects(l.reserve(req('b', 1)), 'one reservation per request id');
  });

  t.test('settlement applies to the windows of admission, even after midnight', async (t) => {
    const l = await make();
    const late = Date.parse('2026-11-26T23:59:59.900Z');
    t.same(await l.reserve(req('late', 100_000, { at: late })), { ok: true });
    await l.settle({ id: 'late', at: late + 3100, costMicros: 50_000, estimated: false, tokens: zero });
    const s = await l.lineStates([agentDay, { scope: 'agent:bot', windowKey: 'day:2026-11-27' }]);
    t.same(s.get('agent:bot|day:2026-11-26'), { spentMicros: 50_000, reservedMicros: 0 });
    t.same(s.get('agent:bot|day:2026-11-27'), { spentMicros: 0, reservedMicros: 0 }, 'the new day starts at 0');
  });

  t.test('thresholds are recorded once per line and percent', async (t) => {
    const l = await make();
    t.equal(await l.markThreshold(team, 50, AT), true);
    t.equal(await l.markThreshold(team, 50, AT + 1), false);
    t.equal(await l.markThreshold(team, 80, AT), true);
    t.equal(await l.markThreshold({ scope: 'team:a', windowKey: 'month:2026-12' }, 50, AT), true, 'a new window fires again');
  });

  t.test('crash recovery charges open reservations in full, flagged', async (t) => {
    const l = await make();
    await l.reserve(req('open1', 70_000));
    await l.reserve(req('open2', 30_000));
    await l.reserve(req('done', 10_000));
    await l.settle({ id: 'done', at: AT, costMicros: 5_000, estimated: false, tokens: zero });
    t.equal(await l.settleOpenReservations(AT + 5), 2);
    t.same((await l.lineStates([team])).get('team:a|month:2026-11'), { spentMicros: 105_000, reservedMicros: 0 });
    t.equal(await l.settleOpenReservations(AT + 6), 0);
  });

  t.test('amounts must be non-negative integer micro-dollars', async (t) => {
    const l = await make();
    await t.rejects(l.reserve(req('x', 1.5)));
    await t.rejects(l.reserve(req('y', -1)));
    await l.reserve(req('z', 1));
    await t.rejects(l.settle({ id: 'z', at: AT, costMicros: Number.NaN, estimated: false, tokens: zero }));
  });
}
