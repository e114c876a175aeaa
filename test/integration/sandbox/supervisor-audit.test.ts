// The agent supervisor's audit events on a real tollgate.db, with real agent processes:
// agent_started (agent, team, pid, schedule) and agent_stopped (exit code or signal, reason:
// exited, failed, budget_exhausted — running or not —, supervisor_stopped), the agent tokens it
// issues and rotates (token_issued / token_revoked by `supervisor`, never the token), and a chain
// that verifies. An audit store that cannot be written is logged and the agents run on. Last, the
// real `tollgate agents --no-sandbox` process writes them with actor cli:<os user>.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { SupervisedAgent } from '../../../src/agents/agent-spec.ts';
import { readStatusFile } from '../../../src/agents/agent-status.ts';
import { createAgentTokenSource } from '../../../src/agents/agent-tokens.ts';
import { createSupervisor, type AgentLauncher, type BudgetProbe } from '../../../src/agents/supervisor.ts';
import { bestEffortAuditor } from '../../../src/audit/audit-commands.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { createSqliteTokenStore } from '../../../src/store/sqlite-token-store.ts';
import { breakAuditWrites } from '../../helpers/audit-down.ts';
import { tollgateCommand, until } from '../../helpers/cli-process.ts';
import { tempDb } from '../../helpers/temp-db.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

const plainLauncher = (tokens: string[], pids: number[]): AgentLauncher => async (agent, token) => {
  tokens.push(token);
  const child = spawn(process.execPath, ['-e', agent.command.join(' ')], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
  await new Promise((r) => child.once('spawn', r));
  pids.push(child.pid!);
  return {
    pid: child.pid!, stdout: child.stdout, stderr: child.stderr, kill: (s) => child.kill(s),
    exited: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))),
  };
};
const agentOf = (key: string, script: string, everyMs?: number): SupervisedAgent => ({ key, name: key, team: 'alpha', project: key === 'beat' ? 'ops' : undefined, everyMs, command: [script], env: {} });

interface EventRow { seq: number; type: string; actor: string; detail: string }
const eventsOf = (db: Database) => (db.prepare('SELECT seq, type, actor, detail FROM audit_events ORDER BY seq').all() as EventRow[])
  .map((e) => ({ ...e, d: JSON.parse(e.detail) as Record<string, unknown> }));

t.test('runs, exits, budget stops and shutdown are audited; agent tokens too', async (t) => {
  const { dir, db } = tempDb(t, 'tollgate-sup-audit-');
  const errors: string[] = [];
  const audit = bestEffortAuditor(db, (err) => errors.push(err.message));
  const tokens: string[] = [];
  const pids: number[] = [];
  const exhausted = new Set<string>(['broke']);
  const budget: BudgetProbe = { exhausted: async ({ agent }) => (exhausted.has(agent) ? { exhausted: true, reason: `agent ${agent}: $1.00 of $1.00 this month` } : { exhausted: false }) };
  const sup = createSupervisor({
    agents: [
      agentOf('beat', 'console.log("beat")', 250), // scheduled, exits 0
      agentOf('crashy', 'process.exit(3)'), // continuous, fails
      agentOf('spender', 'setInterval(() => {}, 1000)'), // runs until its budget is exhausted
      agentOf('long', 'setInterval(() => {}, 1000)'), // runs until the supervisor stops
      agentOf('broke', 'console.log(1)', 250), // exhausted before it ever starts
    ],
    launch: plainLauncher(tokens, pids),
    // a short token lifetime: the scheduled agent's token is rotated (a new one issued, the old one revoked)
    tokens: createAgentTokenSource(createTokenService(createSqliteTokenStore(db), { cacheTtlMs: 0 }), { ttlMs: 600, audit, actor: 'cli:tester' }),
    budget, dataDir: dir, checkEveryMs: 100, killGraceMs: 500, backoff: { baseMs: 100, maxMs: 200 },
    audit, actor: 'cli:tester',
  });
  sup.start();
  const state = (key: string) => sup.status().find((s) => s.key === key)!;
  const of = (type: string, agent: string) => eventsOf(db).filter((e) => e.type === type && (e.d['agent'] ?? e.d['subject']) === agent);
  await until('runs of every kind', () => of('agent_stopped', 'beat').length >= 3 && of('agent_started', 'crashy').length >= 2 && state('spender').state === 'running' && state('long').state === 'running');
  exhausted.add('spender');
  await until('spender stopped', () => state('spender').state === 'stopped');
  await sup.stop();
  t.same(errors, [], 'every event was written');

  const started = of('agent_started', 'beat')[0]!;
  t.match(started, { actor: 'cli:tester' });
  t.same(Object.keys(started.d).sort(), ['agent', 'pid', 'project', 'restarts', 'schedule', 'team']);
  t.match(started.d, { agent: 'beat', team: 'alpha', project: 'ops', schedule: 'every 0.25s', restarts: 0 });
  t.ok(pids.includes(started.d['pid'] as number), 'the pid of the process that ran');
  t.match(of('agent_started', 'crashy')[0]!.d, { schedule: 'continuous', project: null });
  t.match(of('agent_stopped', 'beat')[0]!.d, { reason: 'exited', code: 0, signal: null, message: null, pid: started.d['pid'] });
  t.match(of('agent_stopped', 'crashy')[0]!.d, { reason: 'failed', code: 3, signal: null });
  t.ok((of('agent_started', 'crashy').at(-1)!.d['restarts'] as number) >= 1, 'a restart counts the restarts before it');
  const spent = of('agent_stopped', 'spender');
  t.equal(spent.length, 1);
  t.match(spent[0]!.d, { reason: 'budget_exhausted', signal: 'SIGTERM', message: 'agent spender: $1.00 of $1.00 this month' });
  t.match(of('agent_stopped', 'long'), [{ d: { reason: 'supervisor_stopped', signal: 'SIGTERM', message: 'the supervisor was stopped' } }]);
  t.same(of('agent_started', 'broke'), [], 'an exhausted agent is never started…');
  t.match(of('agent_stopped', 'broke'), [{ d: { reason: 'budget_exhausted', pid: null, code: null, signal: null, duration_ms: null, message: 'agent broke: $1.00 of $1.00 this month' } }], '…and its stop is recorded once');

  const issued = eventsOf(db).filter((e) => e.type === 'token_issued');
  t.ok(issued.length >= 5, 'a token per agent started, and rotations');
  t.ok(issued.every((e) => e.actor === 'cli:tester' && e.d['by'] === 'supervisor' && e.d['kind'] === 'agent' && e.d['issued_by'] === 'tollgate-agents'));
  const rotated = eventsOf(db).filter((e) => e.type === 'token_revoked');
  t.ok(rotated.length >= 1, 'a rotated token\'s revocation is recorded');
  t.ok(rotated.every((e) => e.actor === 'cli:tester' && e.d['by'] === 'supervisor' && /^tok_/.test(String((e.d['target'] as { id?: string }).id))), 'by the supervisor, one token id each');
  t.ok(rotated.some((e) => (e.d['subjects'] as string[]).join() === 'beat'), 'the scheduled agent\'s third run rotated its token');
  const text = eventsOf(db).map((e) => e.detail).join('\n');
  for (const token of new Set(tokens)) {
    t.notOk(text.includes(token), 'no event holds an agent token');
    t.notOk(text.includes(createHash('sha256').update(token).digest('hex')), 'nor its hash');
  }
  t.match(verifyAuditStore(db), { ok: true });
});

t.test('an audit store that cannot be written is logged; the agents run on', async (t) => {
  const { dir, db } = tempDb(t, 'tollgate-sup-audit-');
  breakAuditWrites(db);
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', write: (l) => { logs.push(JSON.parse(l) as Record<string, unknown>); } });
  const tokenErrors: string[] = [];
  const sup = createSupervisor({
    agents: [agentOf('beat', 'console.log("beat")', 150)],
    launch: plainLauncher([], []),
    tokens: createAgentTokenSource(createTokenService(createSqliteTokenStore(db), { cacheTtlMs: 0 }), { audit: bestEffortAuditor(db, (err) => tokenErrors.push(err.message)) }),
    budget: { exhausted: async () => ({ exhausted: false }) }, dataDir: dir, logger,
    // as `tollgate agents` does: the auditor is the only guard, the supervisor has none of its own
    audit: bestEffortAuditor(db, (err, event) => logger.error('audit event not written', { type: event.type, error: err.message })),
  });
  sup.start();
  await until('three runs', () => sup.status()[0]!.restarts === 0 && (readStatusFile(sup.statusFile)?.agents[0]?.lastExit?.code === 0) && logs.filter((l) => l['msg'] === 'agent exited').length >= 3);
  await sup.stop();
  const failed = logs.filter((l) => l['msg'] === 'audit event not written');
  t.ok(failed.some((l) => l['type'] === 'agent_started') && failed.some((l) => l['type'] === 'agent_stopped'), 'each lost event is logged');
  t.match(failed[0], { level: 'error', error: /simulated audit store failure/ });
  t.match(tokenErrors, [/simulated audit store failure/], 'the token event failure reached its error callback');
  t.equal(sup.status()[0]!.consecutiveFailures, 0, 'the agent itself was unaffected');
  t.equal((db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n, 0);
});

t.test('`tollgate agents` writes the events as cli:<os user>', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-agents-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'policies'));
  mkdirSync(path.join(dir, 'certs'));
  writeFileSync(path.join(dir, 'certs/ca.pem'), (await makeTestCa()).caPem);
  writeFileSync(path.join(dir, 'org.yaml'), [
    'organization: T',
    'teams:',
    '  sre: { name: SRE, idp_groups: [sre], policy: policies/sre.yaml }',
    'agents:',
    '  pinger: { name: Pinger, team: sre, every: 1s, command: [node, -e, "process.exit(0)"] }',
    '',
  ].join('\n'));
  writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n');
  writeFileSync(path.join(dir, 'tollgate.yaml'), 'listen: { proxy: 127.0.0.1:39999, admin: 127.0.0.1:0 }\ndata_dir: ./data\nca: { cert: ./certs/ca.pem, key: ./certs/ca.key }\nlog: { level: warn }\n');
  const dbFile = path.join(dir, 'data/tollgate.db');
  openDatabase(dbFile).close();
  const [command, args] = tollgateCommand(['agents', '--no-sandbox'], path.join(dir, 'tollgate.yaml'));
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => { child.kill('SIGKILL'); });
  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  await until(`two runs of pinger (${output})`, () => eventsOf(db).filter((e) => e.type === 'agent_stopped').length >= 2, 60_000);
  child.kill('SIGTERM');
  t.equal(await exited, 0, output);
  const actor = `cli:${os.userInfo().username}`;
  const events = eventsOf(db);
  t.ok(events.every((e) => e.actor === actor), `every event by ${actor}`);
  t.match(events.find((e) => e.type === 'token_issued')?.d, { by: 'supervisor', kind: 'agent', subject: 'pinger', teams: ['sre'] });
  t.match(events.find((e) => e.type === 'agent_started')?.d, { agent: 'pinger', team: 'sre', schedule: 'every 1s', pid: Number });
  t.match(events.find((e) => e.type === 'agent_stopped')?.d, { agent: 'pinger', reason: 'exited', code: 0 });
  t.match(verifyAuditStore(db), { ok: true });
});
