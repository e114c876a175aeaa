// Owns: `tollgate budgets [--json|--csv]` — every scope with a limit (organisation, teams, agents,
// users, and the users of a team with a user_budget who have spent this month), per window: limit,
// spent, reserved by requests in flight, remaining and when it resets. Read straight from
// tollgate.db (like `tollgate audit`), with the limits of org.yaml as it is on disk now.
import { Command } from 'commander';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { loadOrgAndPolicies } from '../config/policy-source.ts';
import { TollgateError } from '../errors.ts';
import { budgetStatus, type BudgetStatus } from '../ledger/budget-status.ts';
import { budgetWindow } from '../metering/budget.ts';
import { formatUsd } from '../metering/prices.ts';
import type { OrgConfig } from '../policy/types.ts';
import { openDatabase } from '../store/database.ts';
import { createSqliteLedger } from '../store/sqlite-ledger.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

/** The budget lines of `org` at `now`, with spend and reservations from the ledger in `dbFile`. */
export async function readBudgets(dbFile: string, org: OrgConfig, now: number): Promise<BudgetStatus[]> {
  const db = openDatabase(dbFile);
  try {
    db.pragma('query_only = ON');
    // Users capped by their team's user_budget are not listed in org.yaml: take those who spent
    // (or hold reservations) in the current month or day.
    const since = Math.min(budgetWindow('month', now).startsAt, budgetWindow('day', now).startsAt);
    const users = db.prepare<[number], { subject: string; team: string }>(
      "SELECT DISTINCT subject, team FROM ledger_requests WHERE principal_kind = 'user' AND created_at >= ? ORDER BY subject",
    ).all(since);
    const extra = users.filter((u) => org.teams.get(u.team)?.userBudget !== undefined).map((u) => ({ scope: `user:${u.subject}`, team: u.team }));
    return await budgetStatus(createSqliteLedger(db), org, now, { scopes: extra });
  } finally {
    db.close();
  }
}

const usedPercent = (b: BudgetStatus) => (b.limitMicros > 0 ? Math.round(((b.spentMicros + b.reservedMicros) / b.limitMicros) * 1000) / 10 : 0);
const usd6 = (micros: number) => (micros / 1e6).toFixed(6);

/** The shape of GET /api/v1/budgets. */
export function budgetsJson(rows: readonly BudgetStatus[], now: number): Record<string, unknown> {
  return {
    as_of: new Date(now).toISOString(), currency: 'USD',
    budgets: rows.map((b) => ({
      scope: b.scope, window: b.window, window_key: b.windowKey, limit_micros: b.limitMicros, spent_micros: b.spentMicros,
      reserved_micros: b.reservedMicros, remaining_micros: b.remainingMicros,
      used_ratio: b.limitMicros > 0 ? (b.spentMicros + b.reservedMicros) / b.limitMicros : null,
      resets_at: b.resetsAt, exhausted: b.exhausted,
    })),
  };
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function budgetsCsv(rows: readonly BudgetStatus[]): string[] {
  return [
    'scope,window,window_key,limit_usd,spent_usd,reserved_usd,remaining_usd,used_percent,resets_at,exhausted',
    ...rows.map((b) => [b.scope, b.window, b.windowKey, usd6(b.limitMicros), usd6(b.spentMicros), usd6(b.reservedMicros), usd6(b.remainingMicros),
      String(usedPercent(b)), b.resetsAt, String(b.exhausted)].map(csvField).join(',')),
  ];
}

export function budgetsTable(rows: readonly BudgetStatus[]): Array<Record<string, string>> {
  return rows.map((b) => ({
    scope: b.scope, window: b.window === 'month' ? 'monthly' : 'daily', limit: formatUsd(b.limitMicros), spent: formatUsd(b.spentMicros),
    reserved: formatUsd(b.reservedMicros), remaining: formatUsd(b.remainingMicros), used: `${usedPercent(b)}%`,
    resets: b.resetsAt.replace(/:00\.000Z$/, 'Z'), status: b.exhausted ? 'EXHAUSTED' : '',
  }));
}

export function registerBudgetsCommand(program: Command): void {
  addConfigOption(program.command('budgets').description('each scope with a limit: limit, spent, reserved, remaining and when it resets'))
    .option('--json', 'print JSON (the shape of GET /api/v1/budgets)')
    .option('--csv', 'print CSV')
    .action(async (opts: { config?: string; json?: boolean; csv?: boolean }) => {
      if (opts.json && opts.csv) throw new TollgateError('TOLLGATE_ERR_USAGE', 'budgets: give --json or --csv, not both');
      const config = loadGatewayConfig(configPath(opts));
      const loaded = loadOrgAndPolicies({ orgFile: config.org, policiesDir: config.policies });
      if (!loaded.ok) throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `invalid organisation or policy files (${config.org})`, { problems: loaded.problems });
      const now = Date.now();
      const rows = await readBudgets(databasePath(config), loaded.bundle.org, now);
      const out = (s: string) => { process.stdout.write(s); };
      if (opts.json) { out(`${JSON.stringify(budgetsJson(rows, now), null, 2)}\n`); return; }
      if (opts.csv) { out(`${budgetsCsv(rows).join('\n')}\n`); return; }
      if (rows.length === 0) { out(`no budgets are set in ${config.org}\n`); return; }
      printTable(budgetsTable(rows), out);
    });
}
