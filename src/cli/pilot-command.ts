// Owns: `tollgate pilot verify --team T [--since 7d] [--until T] [--json]` — the rollout's week-2
// check, read straight from tollgate.db (like `tollgate audit`): the team's rows through the audit
// query layer, its tokens through the token list, its definition from org.yaml, the report from
// src/reporting/pilot-report.ts. Tables for people, JSON for scripts; exit 0 on PASS, 1 on FAIL.
import { Command } from 'commander';
import { parseTimeArg } from '../audit/audit-commands.ts';
import type { StoredAuditRequest } from '../audit/audit-record.ts';
import { databasePath, loadGatewayConfig } from '../config/gateway-config.ts';
import { loadOrgAndPolicies } from '../config/policy-source.ts';
import { TollgateError } from '../errors.ts';
import { tokenList } from '../identity/token-commands.ts';
import type { OrgConfig } from '../policy/types.ts';
import { buildPilotReport, type PilotReport, type PilotTokenRecord } from '../reporting/pilot-report.ts';
import { openDatabase, type Database } from '../store/database.ts';
import { readSnapshot, searchAuditRows } from '../store/sqlite-audit-reader.ts';
import { addConfigOption, configPath } from './config-option.ts';
import { printTable } from './print-table.ts';

/** The team's rows of the window, newest first, page by page through the audit search (team index). */
function* teamRows(db: Database, q: { team: string; since: number; until: number }): Generator<StoredAuditRequest> {
  let cursor: string | undefined;
  do {
    const page = searchAuditRows(db, { ...q, limit: 10_000, ...(cursor !== undefined ? { cursor } : {}) });
    yield* page.rows;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

export async function readPilotReport(dbFile: string, org: OrgConfig, q: { team: string; since: number; until: number }): Promise<PilotReport> {
  const team = org.teams.get(q.team);
  if (team === undefined) throw new TollgateError('TOLLGATE_ERR_USAGE', `unknown team "${q.team}"; teams in ${org.file}: ${[...org.teams.keys()].join(', ')}`);
  if (q.since >= q.until) throw new TollgateError('TOLLGATE_ERR_USAGE', '--since must be before --until');
  const tokens: PilotTokenRecord[] = await tokenList({ dbFile });
  const db = openDatabase(dbFile);
  try {
    db.pragma('query_only = ON');
    return readSnapshot(db, () => buildPilotReport({
      team, agents: [...org.agents.values()], tokens, rows: teamRows(db, q), window: { since: q.since, until: q.until },
    }));
  } finally {
    db.close();
  }
}

const minute = (iso: string) => iso.replace(/:\d\d\.\d+Z$/, 'Z');

/** The report as tables for people. */
export function pilotReportText(r: PilotReport): string {
  let text = '';
  const out = (s: string) => { text += s; };
  out(`Pilot verification of team ${r.team} (${r.team_name}), ${minute(r.since)} .. ${minute(r.until)}: ${r.requests} request(s)\n`);
  out(`Membership comes from the identity provider (groups: ${r.membership.idp_groups.join(', ') || 'none'}); ${r.membership.token_holders} user(s) held a token for the team.\n`);
  out(`\nMembers seen (${r.members.length})\n`);
  printTable(r.members.map((m) => ({ user: m.user, requests: m.requests, allowed: m.allowed, denied: m.denied, refused: m.refused, 'last seen': minute(m.last_seen) })), out);
  out('\nTheir actions (method x host)\n');
  printTable(r.members.flatMap((m) => m.actions.map((a) => ({ user: m.user, method: a.method, host: a.host, requests: a.requests, allowed: a.allowed, denied: a.denied, refused: a.refused }))), out);
  out(`\nMembers with a token, not seen (${r.members_not_seen.length})\n`);
  printTable(r.members_not_seen.map((m) => ({ user: m.user, 'last token use': m.last_token_use === null ? 'never' : minute(m.last_token_use) })), out);
  out(`\nAgents seen (${r.agents.length})${r.agents_not_seen.length ? `; declared, not seen: ${r.agents_not_seen.join(', ')}` : ''}\n`);
  printTable(r.agents.map((a) => ({ agent: a.agent, declared: a.declared ? 'yes' : 'NO', requests: a.requests, allowed: a.allowed, denied: a.denied, refused: a.refused, 'last seen': minute(a.last_seen) })), out);
  out('\nDenied by the team policy\n');
  printTable(r.denials.map((d) => {
    const e = d.examples[0];
    return { host: d.host, method: d.method, rule: d.rule ?? '(no rule matched)', reason: d.reason ?? '-', requests: d.requests, who: d.subjects, example: e ? `${e.who ?? '?'} ${e.path ?? ''} ${e.request_id}` : '' };
  }), out);
  out('\nOther refusals (not policy: budget, malformed, rate limit, gateway)\n');
  printTable(r.refusals.map((f) => ({ reason: f.reason ?? '-', status: f.status ?? '-', requests: f.requests })), out);
  if (r.anomaly_count > 0) {
    out(`\nAnomalies (${r.anomaly_count})\n`);
    printTable(r.anomalies.map((a) => ({ kind: a.kind, time: minute(a.time), who: a.who ?? '-', method: a.method, host: a.host, decision: a.decision, request: a.request_id })), out);
  }
  out(`\nVerdict: ${r.verdict.pass ? 'PASS' : 'FAIL'}\n`);
  for (const c of r.verdict.checks) out(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.code}: ${c.detail}\n`);
  return text;
}

export function registerPilotCommand(program: Command): void {
  const pilot = program.command('pilot').description("check a team's rollout from the audit trail");
  addConfigOption(pilot.command('verify').description("the team's members seen and their actions, its agents, and the requests its policy denied; exit 1 unless PASS"))
    .requiredOption('--team <team>', 'the team of org.yaml to check')
    .option('--since <time>', 'window start (ISO date, epoch ms, or a duration back from now: 24h, 7d); default 7d')
    .option('--until <time>', 'window end (default now)')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; team: string; since?: string; until?: string; json?: boolean }) => {
      const now = Date.now();
      const window = {
        since: parseTimeArg(opts.since ?? '7d', now, '--since'),
        until: opts.until === undefined ? now : parseTimeArg(opts.until, now, '--until'),
      };
      const config = loadGatewayConfig(configPath(opts));
      const loaded = loadOrgAndPolicies({ orgFile: config.org, policiesDir: config.policies });
      if (!loaded.ok) throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `invalid organisation or policy files (${config.org})`, { problems: loaded.problems });
      const report = await readPilotReport(databasePath(config), loaded.bundle.org, { team: opts.team, ...window });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : pilotReportText(report));
      if (!report.verdict.pass) process.exitCode = 1;
    });
}
