// Budget scopes and refusal text over tables: agents without an agent name, users outside any
// team, scope kinds org.yaml has no budget for, and the daily wording of a refusal.
import t from 'tap';
import { budgetWindow, limitFor, refusalMessage, scopesFor, type ChargePrincipal } from '../../../src/metering/budget.ts';
import type { OrgConfig } from '../../../src/policy/types.ts';

const b = (monthlyUsd?: number, dailyUsd?: number) => ({ monthlyUsd, dailyUsd });
const ORG: OrgConfig = {
  file: 'org.yaml',
  organization: 'Acme',
  budget: b(2000, 100),
  adminGroups: [],
  declaredSecrets: undefined,
  projects: new Map(),
  teams: new Map([['sre', { key: 'sre', name: 'SRE', idpGroups: [], grants: new Map(), policyFile: 'p', budget: b(500), userBudget: b(undefined, 5) }]]),
  agents: new Map(),
  users: new Map([['ana@acme.example', { budget: b(100) }]]),
};

t.test('scopesFor: the third scope names the agent, the user, or nothing', async (t) => {
  const cases: { why: string; p: ChargePrincipal; third: string | undefined }[] = [
    { why: 'agent with its own name', p: { kind: 'agent', subject: 'tok-1', agent: 'mon', team: 'sre' }, third: 'agent:mon' },
    { why: 'agent known only by subject', p: { kind: 'agent', subject: 'mon-2', team: 'sre' }, third: 'agent:mon-2' },
    { why: 'user, lower-cased', p: { kind: 'user', subject: 'Ana@Acme.Example', team: 'sre' }, third: 'user:ana@acme.example' },
    { why: 'anonymous', p: { kind: 'anonymous', subject: '-', team: 'sre' }, third: undefined },
  ];
  for (const c of cases) {
    const scopes = scopesFor(c.p);
    t.same(scopes.slice(0, 2).map((s) => s.scope), ['org', 'team:sre'], c.why);
    t.equal(scopes[2]?.scope, c.third, c.why);
    if (scopes[2]) t.equal(scopes[2].label, `${scopes[2].scopeKind} ${scopes[2].scope.slice(scopes[2].scopeKind.length + 1)}`, `${c.why}: label`);
  }
});

t.test('limitFor: every scope kind, with and without a team', async (t) => {
  const cases: [string, string | undefined, 'month' | 'day', number | undefined][] = [
    ['org', undefined, 'day', 100_000_000],
    ['team:sre', 'sre', 'month', 500_000_000],
    ['agent:ghost', 'sre', 'month', undefined],
    ['user:ana@acme.example', undefined, 'month', 100_000_000],
    ['user:bob@acme.example', 'sre', 'day', 5_000_000],
    ['user:bob@acme.example', undefined, 'day', undefined], // no team: no user_budget to fall back on
    ['user:bob@acme.example', 'nope', 'day', undefined],
    ['project:x', 'sre', 'month', undefined], // a scope kind that carries no budget
    ['nonsense', 'sre', 'month', undefined],
  ];
  for (const [scope, team, kind, want] of cases) t.equal(limitFor(ORG, scope, team, kind), want, `${scope} ${team ?? '-'} ${kind}`);
});

t.test('refusalMessage: daily window, nothing in flight, and a line with no limit', async (t) => {
  const w = budgetWindow('day', Date.parse('2026-11-26T10:00:00Z'));
  const line = { scope: 'agent:mon', scopeKind: 'agent' as const, label: 'agent mon', window: w };
  t.equal(
    refusalMessage({ ok: false, line: { ...line, limitMicros: 2_000_000 }, state: { spentMicros: 2_500_000, reservedMicros: 0 }, amountMicros: 10_000 }),
    'Budget exceeded for agent mon: the daily limit is $2.00, $2.50 is spent, $0.00 remains and this request could cost up to $0.01. The budget resets at 2026-11-27T00:00:00.000Z.',
  );
  t.match(
    refusalMessage({ ok: false, line: { ...line, limitMicros: undefined }, state: { spentMicros: 0, reservedMicros: 0 }, amountMicros: 1 }),
    /the daily limit is \$0\.00, \$0\.00 is spent, \$0\.00 remains/,
    'a line without a limit reads as a zero limit',
  );
});
