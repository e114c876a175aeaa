// Owns: the read side of budgets — for each scope with a limit: limit, spent, reserved (in flight),
// remaining and when the window resets. For the admin API, `tollgate budgets` and the agent
// supervisor ("is this agent's scope exhausted?").
import { budgetWindow, limitFor, type WindowKind } from '../metering/budget.ts';
import type { OrgConfig } from '../policy/types.ts';
import type { Ledger } from './ledger.ts';
import { lineKey } from './ledger.ts';

export interface BudgetStatus {
  /** "org", "team:sre", "agent:sre-monitor", "user:alice@acme.example" */
  scope: string;
  window: WindowKind;
  windowKey: string;
  limitMicros: number;
  spentMicros: number;
  reservedMicros: number;
  /** never negative */
  remainingMicros: number;
  /** ISO time the window ends */
  resetsAt: string;
  /** spend + reservations ≥ limit: the next metered request will be refused */
  exhausted: boolean;
}

/** Every scope org.yaml gives a limit, plus `extra` scopes (a user of a team with user_budget). */
export function scopesWithLimits(org: OrgConfig, extra: ReadonlyArray<{ scope: string; team?: string }> = []): Array<{ scope: string; team: string | undefined }> {
  const out: Array<{ scope: string; team: string | undefined }> = [];
  if (org.budget) out.push({ scope: 'org', team: undefined });
  for (const [k, t] of org.teams) if (t.budget) out.push({ scope: `team:${k}`, team: k });
  for (const [k, a] of org.agents) if (a.budget) out.push({ scope: `agent:${k}`, team: a.team });
  for (const [email, u] of org.users) if (u.budget) out.push({ scope: `user:${email}`, team: undefined });
  for (const e of extra) if (!out.some((o) => o.scope === e.scope)) out.push({ scope: e.scope, team: e.team });
  return out;
}

export async function budgetStatus(
  ledger: Ledger,
  org: OrgConfig,
  atMs: number,
  opts: { scopes?: ReadonlyArray<{ scope: string; team?: string }>; only?: (scope: string) => boolean } = {},
): Promise<BudgetStatus[]> {
  const rows: Array<Omit<BudgetStatus, 'spentMicros' | 'reservedMicros' | 'remainingMicros' | 'exhausted'>> = [];
  for (const s of scopesWithLimits(org, opts.scopes)) {
    if (opts.only && !opts.only(s.scope)) continue;
    for (const kind of ['month', 'day'] as const) {
      const limit = limitFor(org, s.scope, s.team, kind);
      if (limit === undefined) continue;
      const w = budgetWindow(kind, atMs);
      rows.push({ scope: s.scope, window: kind, windowKey: w.key, limitMicros: limit, resetsAt: new Date(w.resetsAt).toISOString() });
    }
  }
  const states = await ledger.lineStates(rows.map((r) => ({ scope: r.scope, windowKey: r.windowKey })));
  return rows.map((r) => {
    const st = states.get(lineKey(r)) ?? { spentMicros: 0, reservedMicros: 0 };
    const used = st.spentMicros + st.reservedMicros;
    return { ...r, ...st, remainingMicros: Math.max(0, r.limitMicros - used), exhausted: used >= r.limitMicros };
  });
}
