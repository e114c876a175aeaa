// Owns: answering the supervisor's "is this agent's budget scope, or its team's, or the org's,
// exhausted?" from the spend ledger — the same numbers the gateway admits requests by.
import { budgetStatus } from '../ledger/budget-status.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { formatUsd } from '../metering/prices.ts';
import type { OrgConfig } from '../policy/types.ts';
import type { BudgetProbe } from './supervisor.ts';

export function createLedgerBudgetProbe(ledger: Ledger, org: () => OrgConfig, now: () => number = Date.now): BudgetProbe {
  return {
    async exhausted({ team, agent }) {
      const scopes = new Set(['org', `team:${team}`, `agent:${agent}`]);
      const lines = await budgetStatus(ledger, org(), now(), { only: (s) => scopes.has(s) });
      const hit = lines.find((l) => l.exhausted);
      if (!hit) return { exhausted: false };
      return {
        exhausted: true,
        reason: `the ${hit.window}ly budget of ${hit.scope} is exhausted (${formatUsd(hit.spentMicros + hit.reservedMicros)} of ${formatUsd(hit.limitMicros)}; resets ${hit.resetsAt})`,
      };
    },
  };
}
