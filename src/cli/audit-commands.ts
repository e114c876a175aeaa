// Owns: `tollgate audit [filters]`, `audit summary`, `audit export`, `audit verify`, `audit prune` —
// argument parsing and printing around src/audit/audit-commands.ts. Exit 1 when verify finds a break.
import { writeSync } from 'node:fs';
import { Command } from 'commander';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { TollgateError } from '../errors.ts';
import {
  auditExport, auditPrune, auditSearch, auditSummaryReport, auditVerify, parseTimeArg, toAuditFilter, type AuditFilterArgs,
} from '../audit/audit-commands.ts';
import { requestCsvHeader, requestCsvLine, tableRow } from '../audit/export-format.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

const out = (s: string) => { process.stdout.write(s); };

function dbFile(opts: { config?: string }): string {
  return databasePath(loadGatewayConfig(configPath(opts)));
}

function window(opts: { since?: string; until?: string }, now: number): { since?: number; until?: number } {
  return {
    ...(opts.since !== undefined ? { since: parseTimeArg(opts.since, now, '--since') } : {}),
    ...(opts.until !== undefined ? { until: parseTimeArg(opts.until, now, '--until') } : {}),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('search, summarise, export and verify the audit trail');
  // `tollgate audit [filters]` is the default subcommand `list`, so each verb owns its options.
  addConfigOption(audit.command('list', { isDefault: true }).description('audit rows, newest first, as a table (or --json / --csv)'))
    .option('--since <time>', 'from this time (ISO date, or a duration back from now: 24h, 7d)')
    .option('--until <time>', 'before this time')
    .option('--user <email>', 'only this user')
    .option('--agent <name>', 'only this agent')
    .option('--team <team>', 'only this team')
    .option('--project <project>', 'only this project')
    .option('--host <host>', 'only this host')
    .option('--decision <decision>', 'allow, direct, deny or error')
    .option('--status <status>', 'a status code (403) or class (5xx)')
    .option('--limit <n>', 'rows, newest first (default 100)')
    .option('--cursor <cursor>', 'the next page, from a previous --json answer')
    .option('--json', 'print JSON')
    .option('--csv', 'print CSV')
    .action((opts: AuditFilterArgs & { config?: string; json?: boolean; csv?: boolean }) => {
      const page = auditSearch(dbFile(opts), toAuditFilter(opts, Date.now()));
      if (opts.json) out(JSON.stringify(page, null, 2) + '\n');
      else if (opts.csv) {
        out(requestCsvHeader() + '\n');
        for (const r of page.rows) out(requestCsvLine(r) + '\n');
      } else {
        printTable(page.rows.map(tableRow));
        if (page.nextCursor) out(`(more: --cursor ${page.nextCursor})\n`);
      }
    });

  addConfigOption(audit.command('summary').description('active users and agents, action types, denials and error rates over a window'))
    .option('--since <time>', 'window start (default 24h)')
    .option('--until <time>', 'window end (default now)')
    .option('--json', 'print JSON')
    .action((opts: { config?: string; since?: string; until?: string; json?: boolean }) => {
      const now = Date.now();
      const s = auditSummaryReport(dbFile(opts), window({ since: opts.since ?? '24h', ...(opts.until ? { until: opts.until } : {}) }, now));
      if (opts.json) { out(JSON.stringify(s, null, 2) + '\n'); return; }
      const when = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
      out(`Window: ${s.since !== undefined ? when(s.since) : 'start'} .. ${s.until !== undefined ? when(s.until) : 'now'}  requests: ${s.requests}  errors: ${s.errors.errors} (${pct(s.errors.rate)})\n\nActive users\n`);
      printTable(s.users.map((u) => ({ user: u.subject, team: u.team ?? '-', requests: u.requests, denied: u.denied, last: when(u.last) })));
      out('\nActive agents\n');
      printTable(s.agents.map((a) => ({ agent: a.agent, team: a.team ?? '-', requests: a.requests, denied: a.denied, last: when(a.last) })));
      out('\nAction types (method x host)\n');
      printTable(s.actions.map((a) => ({ method: a.method, host: a.host, requests: a.requests, denied: a.denied, errors: a.errors })));
      out('\nDenied requests\n');
      printTable(s.denials.map((d) => ({ rule: d.rule ?? '-', reason: d.reason ?? '-', host: d.host, requests: d.requests, who: d.subjects })));
      out('\nErrors by host\n');
      printTable(s.errors.byHost.map((h) => ({ host: h.host, requests: h.requests, errors: h.errors, rate: pct(h.rate) })));
    });

  addConfigOption(audit.command('export').description('write audit records for SIEM pipelines, oldest first, from one consistent snapshot'))
    .option('--jsonl', 'one JSON object per line')
    .option('--csv', 'CSV with a header line')
    .option('--since <time>', 'from this time')
    .option('--until <time>', 'before this time')
    .option('--events', 'export the events (logins, tokens, policy reloads …) instead of the request rows')
    .action((opts: { config?: string; jsonl?: boolean; csv?: boolean; since?: string; until?: string; events?: boolean }) => {
      if (opts.jsonl === opts.csv) throw new TollgateError('TOLLGATE_ERR_USAGE', 'audit export: give --jsonl or --csv');
      const n = auditExport({
        dbFile: dbFile(opts), format: opts.jsonl ? 'jsonl' : 'csv', events: opts.events === true,
        ...window(opts, Date.now()),
        write: (s) => { writeSync(1, s); },
      });
      process.stderr.write(`exported ${n} ${opts.events ? 'events' : 'records'}\n`);
    });

  addConfigOption(audit.command('verify').description('check the hash chains; names the first broken record (exit 1)'))
    .option('--json', 'print JSON')
    .action((opts: { config?: string; json?: boolean }) => {
      const v = auditVerify(dbFile(opts));
      if (opts.json) out(JSON.stringify(v, null, 2) + '\n');
      else {
        for (const c of v.chains) {
          out(c.ok
            ? `${c.chain}: ok, ${c.checked} records (seq ${c.anchor.seq + 1}..${c.head.seq}), head ${c.head.hash}\n`
            : `${c.chain}: BROKEN at seq ${c.firstBroken?.seq ?? '?'} (${c.firstBroken?.label ?? '?'}): ${c.firstBroken?.message ?? ''}${c.breaks > 1 ? ` (${c.breaks} breaks in all)` : ''}\n`);
        }
        if (v.anchorMismatch) out(`anchor: ${v.anchorMismatch}\n`);
        if (v.openRows > 0) out(`${v.openRows} request(s) still in flight (not chained yet)\n`);
      }
      if (!v.ok) process.exitCode = 1;
    });

  addConfigOption(audit.command('prune').description('delete records older than the retention now (the gateway also prunes hourly)'))
    .requiredOption('--days <n>', 'keep this many days')
    .action((opts: { config?: string; days: string }) => {
      const r = auditPrune(dbFile(opts), Number(opts.days));
      out(`pruned ${r.requests} request record(s) and ${r.events} event(s)\n`);
    });
}
