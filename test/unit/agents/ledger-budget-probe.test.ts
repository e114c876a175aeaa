// The supervisor's budget probe reads the same ledger lines the gateway admits requests by.
import t from 'tap';
import { createLedgerBudgetProbe } from '../../../src/agents/ledger-budget-probe.ts';
import type { Ledger } from '../../../src/ledger/ledger.ts';
import type { OrgConfig } from '../../../src/policy/types.ts';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const org = {
  budget: { monthlyUsd: 2000, dailyUsd: undefined },
  teams: new Map([['sre', { budget: { monthlyUsd: 500, dailyUsd: undefined }, userBudget: undefined }], ['web', { budget: undefined, userBudget: undefined }]]),
  agents: new Map([['sre-monitor', { team: 'sre', budget: { monthlyUsd: 50, dailyUsd: undefined } }]]),
  users: new Map(),
} as unknown as OrgConfig;

function ledgerWith(spent: Record<string, number>): Ledger {
  return {
    lineStates: async (refs: ReadonlyArray<{ scope: string; windowKey: string }>) =>
      new Map(refs.map((r) => [`${r.scope}|${r.windowKey}`, { spentMicros: spent[r.scope] ?? 0, reservedMicros: 0 }])),
  } as unknown as Ledger;
}

const cases: Array<[string, Record<string, number>, boolean, RegExp | undefined]> = [
  ['nothing spent', {}, false, undefined],
  ['agent at its limit', { 'agent:sre-monitor': 50_000_000 }, true, /agent:sre-monitor/],
  ['team at its limit', { 'team:sre': 500_000_000 }, true, /team:sre/],
  ['org at its limit', { org: 2_000_000_000 }, true, /\borg\b/],
  ['another agent spent (not this one)', { 'agent:other': 999_000_000 }, false, undefined],
  ['agent just under', { 'agent:sre-monitor': 49_999_999 }, false, undefined],
];

for (const [name, spent, exhausted, reason] of cases) {
  t.test(name, async (t) => {
    const probe = createLedgerBudgetProbe(ledgerWith(spent), () => org, () => NOW);
    const r = await probe.exhausted({ team: 'sre', agent: 'sre-monitor' });
    t.equal(r.exhausted, exhausted);
    if (reason) t.match(r.reason, reason);
  });
}
