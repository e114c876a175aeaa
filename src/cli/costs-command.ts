// Owns: `tollgate costs --by team|agent|user|model|provider|day [--since T] [--until T] [--json|--csv]`
// — spend grouped from the audit trail's metered rows, read straight from tollgate.db (like
// `tollgate audit`), as a table for people or JSON / CSV for scripts.
import { Command } from 'commander';
import { parseTimeArg } from '../audit/audit-commands.ts';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { TollgateError } from '../errors.ts';
import { costReportCsv, costReportJson } from '../reporting/cost-report-json.ts';
import { COST_DIMENSIONS, groupCosts, isCostDimension, type CostReport } from '../reporting/group-costs.ts';
import { openDatabase } from '../store/database.ts';
import { costCells } from '../store/sqlite-cost-reader.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

const usd = (micros: number) => `$${(micros / 1_000_000).toFixed(micros !== 0 && micros < 10_000 ? 6 : 2)}`;

export function readCostReport(dbFile: string, q: { by: string; since: number; until: number }): CostReport {
  if (!isCostDimension(q.by)) throw new TollgateError('TOLLGATE_ERR_USAGE', `--by must be one of ${COST_DIMENSIONS.join(', ')}`);
  if (q.since >= q.until) throw new TollgateError('TOLLGATE_ERR_USAGE', '--since must be before --until');
  const db = openDatabase(dbFile);
  try {
    db.pragma('query_only = ON');
    return groupCosts(costCells(db, q), q.by);
  } finally {
    db.close();
  }
}

export function registerCostsCommand(program: Command): void {
  addConfigOption(program.command('costs').description('spend grouped by team, agent, user, model, provider or day, from the audit trail'))
    .requiredOption('--by <dimension>', COST_DIMENSIONS.join(' | '))
    .option('--since <time>', 'from this time (ISO date, epoch ms, or a duration back from now: 24h, 7d); default 30d')
    .option('--until <time>', 'before this time (default now)')
    .option('--json', 'print JSON (the shape of GET /api/v1/costs)')
    .option('--csv', 'print CSV')
    .action((opts: { config?: string; by: string; since?: string; until?: string; json?: boolean; csv?: boolean }) => {
      if (opts.json && opts.csv) throw new TollgateError('TOLLGATE_ERR_USAGE', 'costs: give --json or --csv, not both');
      const now = Date.now();
      const window = {
        since: parseTimeArg(opts.since ?? '30d', now, '--since'),
        until: opts.until === undefined ? now : parseTimeArg(opts.until, now, '--until'),
      };
      const report = readCostReport(databasePath(loadGatewayConfig(configPath(opts))), { by: opts.by, ...window });
      const out = (s: string) => { process.stdout.write(s); };
      if (opts.json) { out(`${JSON.stringify(costReportJson(report, window), null, 2)}\n`); return; }
      if (opts.csv) { out(`${costReportCsv(report).join('\n')}\n`); return; }
      printTable(report.groups.map((g) => ({
        [report.by]: g.key ?? '(none)', spend: usd(g.costMicros), requests: g.requests, input: g.inputTokens, output: g.outputTokens,
        'cache read': g.cacheReadTokens, 'cache write': g.cacheWriteTokens, estimated: g.estimatedRequests,
      })), out);
      out(`total ${usd(report.total.costMicros)} over ${report.total.requests} metered request(s), ${new Date(window.since).toISOString()} .. ${new Date(window.until).toISOString()}\n`);
    });
}
