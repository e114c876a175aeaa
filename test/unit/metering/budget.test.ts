import t from 'tap';
import { budgetLinesFor, budgetWindow, checkAdmission, crossedThresholds, limitFor, refusalMessage, type BudgetLine } from '../../../src/metering/budget.ts';
import type { OrgConfig } from '../../../src/policy/types.ts';

const b = (monthlyUsd?: number, dailyUsd?: number) => ({ monthlyUsd, dailyUsd });
export const ORG: OrgConfig = {
  file: 'org.yaml',
  organization: 'Acme',
  budget: b(2000),
  adminGroups: [],
  declaredSecrets: undefined,
  projects: new Map(),
  teams: new Map([
    ['sre', { key: 'sre', name: 'SRE', idpGroups: [], grants: new Map(), policyFile: 'p', budget: b(500), userBudget: b(undefined, 5) }],
    ['free', { key: 'free', name: 'Free', idpGroups: [], grants: new Map(), policyFile: 'p', budget: undefined, userBudget: undefined }],
  ]),
  agents: new Map([['mon', { key: 'mon', name: 'Mon', team: 'sre', project: undefined, every: undefined, everySeconds: undefined, command: undefined, budget: b(50, 2) }]]),
  users: new Map([['ana@acme.example', { budget: b(100) }]]),
};

t.test('UTC calendar windows: keys, starts and resets (leap years, year end)', async (t) => {
  const rows: Array<[string, 'month' | 'day', string, string]> = [
    ['2026-11-26T06:35:52Z', 'month', 'month:2026-11', '2026-12-01T00:00:00.000Z'],
    ['2026-12-31T23:59:59.999Z', 'month', 'month:2026-12', '2027-01-01T00:00:00.000Z'],
    ['2026-12-31T23:59:59.999Z', 'day', 'day:2026-12-31', '2027-01-01T00:00:00.000Z'],
    ['2028-02-28T12:00:00Z', 'day', 'day:2028-02-28', '2028-02-29T00:00:00.000Z'],
    ['2027-01-01T00:00:00Z', 'day', 'day:2027-01-01', '2027-01-02T00:00:00.000Z'],
  ];
  for (const [at, kind, key, resets] of rows) {
    const w = budgetWindow(kind, Date.parse(at));
    t.equal(w.key, key, at);
    t.equal(new Date(w.resetsAt).toISOString(), resets, at);
    t.ok(w.startsAt <= Date.parse(at) && Date.parse(at) < w.resetsAt);
  }
  // 6.10: attribution is by admission time — 23:59:59.9 is the old day, 00:00:00 the new one
  t.not(budgetWindow('day', Date.parse('2026-11-26T23:59:59.900Z')).key, budgetWindow('day', Date.parse('2026-11-27T00:00:00Z')).key);
});

t.test('lines: org, team, and agent or user, in both windows, with the limits of org.yaml', async (t) => {
  const at = Date.parse('2026-11-26T10:00:00Z');
  const agent = budgetLinesFor(ORG, { kind: 'agent', subject: 'mon', agent: 'mon', team: 'sre' }, at);
  t.same(agent.map((l) => [l.scope, l.window.kind, l.limitMicros]), [
    ['org', 'month', 2_000_000_000], ['org', 'day', undefined],
    ['team:sre', 'month', 500_000_000], ['team:sre', 'day', undefined],
    ['agent:mon', 'month', 50_000_000], ['agent:mon', 'day', 2_000_000],
  ]);
  const ana = budgetLinesFor(ORG, { kind: 'user', subject: 'Ana@Acme.example', team: 'sre' }, at);
  t.same(ana.slice(4).map((l) => [l.scope, l.limitMicros]), [['user:ana@acme.example', 100_000_000], ['user:ana@acme.example', undefined]], "the user's own budget wins over the team's user_budget");
  const bob = budgetLinesFor(ORG, { kind: 'user', subject: 'bob@acme.example', team: 'sre' }, at);
  t.same(bob.slice(4).map((l) => l.limitMicros), [undefined, 5_000_000], "else the team's user_budget");
  t.equal(limitFor(ORG, 'team:free', 'free', 'month'), undefined);
  t.equal(limitFor(ORG, 'team:nope', 'nope', 'month'), undefined);
});

t.test('admission: spend + in-flight + worst case must fit every limited line', async (t) => {
  const line = (limit: number | undefined, scope = 'team:a'): BudgetLine => ({ scope, scopeKind: 'team', label: scope.replace(':', ' '), window: budgetWindow('month', 0), limitMicros: limit });
  t.same(checkAdmission([{ line: line(100), state: { spentMicros: 50, reservedMicros: 10 } }], 40), { ok: true });
  t.match(checkAdmission([{ line: line(100), state: { spentMicros: 50, reservedMicros: 10 } }], 41), { ok: false, amountMicros: 41 });
  t.same(checkAdmission([{ line: line(undefined), state: { spentMicros: 1e12, reservedMicros: 0 } }], 1e9), { ok: true }, 'no limit, no check');
  t.match(checkAdmission([{ line: line(0), state: { spentMicros: 0, reservedMicros: 0 } }], 1), { ok: false }, 'a zero budget admits nothing');
  t.match(checkAdmission([{ line: line(1000, 'org'), state: { spentMicros: 0, reservedMicros: 0 } }, { line: line(10, 'agent:x'), state: { spentMicros: 9, reservedMicros: 0 } }], 2), { ok: false, line: { scope: 'agent:x' } });
  // 6.01: $0.10 remaining, $0.04 worst case each → exactly two admitted
  let reserved = 0;
  let admitted = 0;
  for (let i = 0; i < 50; i++) {
    if (checkAdmission([{ line: line(100_000), state: { spentMicros: 0, reservedMicros: reserved } }], 40_000).ok) {
      reserved += 40_000;
      admitted++;
    }
  }
  t.equal(admitted, 2);
});

t.test('the refusal message names scope, limit, spend, in-flight and the reset time', async (t) => {
  const w = budgetWindow('month', Date.parse('2026-11-26T10:00:00Z'));
  const msg = refusalMessage({ ok: false, line: { scope: 'team:sre', scopeKind: 'team', label: 'team sre', window: w, limitMicros: 500_000_000 }, state: { spentMicros: 499_000_000, reservedMicros: 500_000 }, amountMicros: 2_400_000 });
  t.equal(msg, 'Budget exceeded for team sre: the monthly limit is $500.00, $499.00 is spent (plus $0.50 held by requests in flight), $0.50 remains and this request could cost up to $2.40. The budget resets at 2026-12-01T00:00:00.000Z.');
});

t.test('thresholds: each crossed once, exact at the line, none without a limit', async (t) => {
  const P = [50, 80, 100];
  t.same(crossedThresholds(1000, 0, 499, P), []);
  t.same(crossedThresholds(1000, 0, 500, P), [50]);
  t.same(crossedThresholds(1000, 499, 1200, P), [50, 80, 100]);
  t.same(crossedThresholds(1000, 500, 799, P), [], '50 was crossed before');
  t.same(crossedThresholds(1000, 799, 800, P), [80]);
  t.same(crossedThresholds(undefined, 0, 1e9, P), []);
  t.same(crossedThresholds(3, 1, 2, P), [50], 'no rounding: 2/3 ≥ 50 %');
});
