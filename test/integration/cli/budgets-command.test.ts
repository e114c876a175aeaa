// `tollgate budgets [--json|--csv]`: every scope with a limit (users capped by their team's
// user_budget included once they spend), with spent, reserved, remaining and reset, read from
// tollgate.db by the real CLI.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { readBudgets } from '../../../src/cli/budgets-command.ts';
import { main } from '../../../src/cli/main.ts';
import { loadOrgAndPolicies } from '../../../src/config/policy-source.ts';
import { budgetLinesFor } from '../../../src/metering/budget.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { createSqliteLedger } from '../../../src/store/sqlite-ledger.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-budgets-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'policies'));
writeFileSync(path.join(dir, 'tollgate.yaml'), 'data_dir: ./data\norg: ./org.yaml\npolicies: ./policies\n');
writeFileSync(path.join(dir, 'org.yaml'), `organization: Test Org
budget: { monthly_usd: 1000 }
teams:
  sre: { name: SRE, idp_groups: [sre], policy: policies/sre.yaml, budget: { monthly_usd: 500, daily_usd: 50 }, user_budget: { daily_usd: 5 } }
  web: { name: Web, idp_groups: [web], policy: policies/web.yaml }
agents:
  sre-bot: { name: SRE Bot, team: sre, budget: { monthly_usd: 0.01 } }
  web-bot: { name: Web Bot, team: web }
users:
  "boss@acme.example": { budget: { monthly_usd: 20 } }
`);
for (const team of ['sre', 'web']) writeFileSync(path.join(dir, `policies/${team}.yaml`), `team: ${team}\nrules:\n  - { host: "*", action: deny }\n`);
const loaded = loadOrgAndPolicies({ orgFile: path.join(dir, 'org.yaml'), policiesDir: path.join(dir, 'policies') });
if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
const org = loaded.bundle.org;
const dbFile = path.join(dir, 'data/tollgate.db');

const now = Date.now();
const db = openDatabase(dbFile);
const ledger = createSqliteLedger(db);
const tokens = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 };
const spend = async (id: string, principal: { kind: 'agent' | 'user'; subject: string; team: string; agent?: string }, reserve: number, cost: number | undefined) => {
  const r = await ledger.reserve({ id, at: now, amountMicros: reserve, lines: budgetLinesFor(org, principal, now), principal, provider: 'anthropic', model: 'claude-haiku-4-5' });
  if (!r.ok) throw new Error(`not admitted: ${id}`);
  if (cost !== undefined) await ledger.settle({ id, at: now, costMicros: cost, estimated: false, tokens });
};
await spend('r1', { kind: 'agent', subject: 'sre-bot', team: 'sre', agent: 'sre-bot' }, 5000, 4000);
await spend('r2', { kind: 'agent', subject: 'sre-bot', team: 'sre', agent: 'sre-bot' }, 6000, undefined); // in flight
await spend('r3', { kind: 'user', subject: 'ana@acme.example', team: 'sre' }, 2_000_000, 1_500_000);
await spend('r4', { kind: 'user', subject: 'wes@acme.example', team: 'web' }, 1000, 1000); // web has no user_budget
db.close();

const month = new Date(now).toISOString().slice(0, 7);
const day = new Date(now).toISOString().slice(0, 10);

t.test('readBudgets: every limited scope and window, in-flight reservations, team user_budget users who spent', async (t) => {
  const rows = await readBudgets(dbFile, org, now);
  t.same(rows.map((r) => `${r.scope} ${r.window}`), [
    'org month', 'team:sre month', 'team:sre day', 'agent:sre-bot month', 'user:boss@acme.example month', 'user:ana@acme.example day',
  ]);
  const bot = rows.find((r) => r.scope === 'agent:sre-bot');
  t.match(bot, { windowKey: `month:${month}`, limitMicros: 10_000, spentMicros: 4000, reservedMicros: 6000, remainingMicros: 0, exhausted: true });
  t.match(rows.find((r) => r.scope === 'team:sre' && r.window === 'day'), { windowKey: `day:${day}`, limitMicros: 50_000_000, spentMicros: 1_504_000, reservedMicros: 6000, exhausted: false });
  t.match(rows.find((r) => r.scope === 'user:ana@acme.example'), { limitMicros: 5_000_000, spentMicros: 1_500_000, remainingMicros: 3_500_000 });
  t.match(rows.find((r) => r.scope === 'org'), { spentMicros: 1_505_000, reservedMicros: 6000 });
  t.notOk(rows.some((r) => r.scope.includes('wes@')), 'a user of a team without user_budget has no line');
});

// One real process proves the executable (tap's process-info hook re-adds its loader to
// NODE_OPTIONS of every child; `env -u` drops it); the other formats run main() in this process.
const config = path.join(dir, 'tollgate.yaml');
const spawned = (...args: string[]) => execFileSync('env', ['-u', 'NODE_OPTIONS', process.execPath, path.join(repo, 'bin/tollgate'), 'budgets', '--config', config, ...args], { encoding: 'utf8', timeout: 30_000 });
async function inProcess(...args: string[]): Promise<{ out: string; code: number }> {
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  let out = '';
  process.stdout.write = ((c: string | Uint8Array) => { out += String(c); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { out += String(c); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'tollgate', 'budgets', '--config', config, ...args]);
    return { out, code };
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    process.exitCode = undefined;
  }
}

t.test('the CLI: table, --json (the admin API shape), --csv', async (t) => {
  const table = spawned();
  t.match(table, /^SCOPE\s+WINDOW\s+LIMIT\s+SPENT\s+RESERVED\s+REMAINING\s+USED\s+RESETS\s+STATUS\n/);
  t.match(table, /agent:sre-bot\s+monthly\s+\$0\.01\s+\$0\.004\s+\$0\.006\s+\$0\.00\s+100%\s+\d{4}-\d{2}-01T00:00Z\s+EXHAUSTED/);
  t.match(table, /user:ana@acme\.example\s+daily\s+\$5\.00\s+\$1\.50\s+\$0\.00\s+\$3\.50\s+30%/);
  const j = await inProcess('--json');
  t.equal(j.code, 0);
  const json = JSON.parse(j.out) as { currency: string; budgets: Array<Record<string, unknown>> };
  t.equal(json.currency, 'USD');
  t.equal(json.budgets.length, 6);
  t.match(json.budgets.find((b) => b['scope'] === 'agent:sre-bot'), {
    window: 'month', window_key: `month:${month}`, limit_micros: 10_000, spent_micros: 4000, reserved_micros: 6000, remaining_micros: 0, used_ratio: 1, exhausted: true,
    resets_at: /^\d{4}-\d{2}-01T00:00:00\.000Z$/,
  });
  const c = await inProcess('--csv');
  const csv = c.out.trim().split('\n');
  t.equal(csv[0], 'scope,window,window_key,limit_usd,spent_usd,reserved_usd,remaining_usd,used_percent,resets_at,exhausted');
  t.equal(csv.length, 7);
  t.match(csv.find((l) => l.startsWith('agent:sre-bot')), new RegExp(`^agent:sre-bot,month,month:${month},0\\.010000,0\\.004000,0\\.006000,0\\.000000,100,\\S+,true$`));
  const both = await inProcess('--json', '--csv');
  t.not(both.code, 0, 'both formats: a usage error');
  t.match(both.out, /give --json or --csv, not both/);
});
