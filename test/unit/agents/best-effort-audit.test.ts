// The agent supervisor and the agent token source call their audit hook without a guard of their
// own: the one guard is bestEffortAuditor, the only maker of the BestEffortAudit they accept. Over
// an audit store that throws on every write, agent tokens are still issued and rotated, the
// supervisor still runs, restarts and stops its agents, and every lost event reaches the error
// callback.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { SupervisedAgent } from '../../../src/agents/agent-spec.ts';
import { createAgentTokenSource } from '../../../src/agents/agent-tokens.ts';
import { createSupervisor, type AgentLauncher, type AgentProcess } from '../../../src/agents/supervisor.ts';
import { bestEffortAuditor } from '../../../src/audit/audit-commands.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { createMemoryTokenStore } from '../../../src/store/memory-token-store.ts';
import { breakAuditWrites } from '../../helpers/audit-down.ts';
import { until } from '../../helpers/cli-process.ts';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

/** bestEffortAuditor over an audit store whose every event write throws. */
function failingAuditor(t: Test) {
  const db = openDatabase(':memory:');
  t.teardown(() => db.close());
  breakAuditWrites(db);
  const lost: Array<{ type: string; error: string }> = [];
  return { lost, audit: bestEffortAuditor(db, (err, event) => lost.push({ type: event.type, error: err.message })) };
}

const agentOf = (key: string, everyMs?: number): SupervisedAgent => ({ key, name: key, team: 'alpha', project: undefined, everyMs, command: ['twin'], env: {} });

/** A twin process: `beat` exits 0 at once, any other runs until it is killed. */
const launcher = (tokens: string[]): AgentLauncher => async (agent, token) => {
  tokens.push(token);
  let exit: (e: Awaited<AgentProcess['exited']>) => void = () => undefined;
  const exited = new Promise<Awaited<AgentProcess['exited']>>((r) => { exit = r; });
  if (agent.key === 'beat') setTimeout(() => exit({ code: 0, signal: null }), 5);
  return { pid: 40_000 + tokens.length, stdout: null, stderr: null, exited, kill: (signal) => { exit({ code: null, signal: signal ?? 'SIGTERM' }); return true; } };
};

t.test('bestEffortAuditor hands a failed write to its callback and never throws', async (t) => {
  const { lost, audit } = failingAuditor(t);
  t.doesNotThrow(() => audit({ type: 'agent_started', actor: 'supervisor' }));
  t.same(lost, [{ type: 'agent_started', error: 'simulated audit store failure' }]);
});

t.test('agent tokens are issued and rotated while every token event is lost', async (t) => {
  const { lost, audit } = failingAuditor(t);
  let clock = T0;
  const svc = createTokenService(createMemoryTokenStore(), { cacheTtlMs: 0 });
  const tokens = createAgentTokenSource(svc, { ttlMs: 60_000, now: () => clock, audit });
  const first = await tokens.tokenFor(agentOf('bot'));
  clock += 40_000; // past half its lifetime: a new token, the old one revoked
  const second = await tokens.tokenFor(agentOf('bot'));
  t.not(second, first);
  const held = await svc.list({ kind: 'agent', subject: 'bot' });
  t.equal(held.length, 2);
  t.equal(held.filter((r) => r.revokedAt === null).length, 1, 'the rotation happened');
  t.same(lost.map((l) => l.type), ['token_issued', 'token_issued', 'token_revoked'], 'each lost event reached the callback');
});

t.test('the supervisor runs, restarts and stops its agents while every event is lost', async (t) => {
  const { lost, audit } = failingAuditor(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sup-lost-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokens: string[] = [];
  const sup = createSupervisor({
    agents: [agentOf('beat', 20), agentOf('long')],
    launch: launcher(tokens),
    tokens: createAgentTokenSource(createTokenService(createMemoryTokenStore(), { cacheTtlMs: 0 }), { audit }),
    budget: { exhausted: async () => ({ exhausted: false }) },
    dataDir: dir,
    audit,
  });
  sup.start();
  const stops = () => lost.filter((l) => l.type === 'agent_stopped').length;
  await until('three runs of beat and long running', () => stops() >= 3 && sup.status().find((s) => s.key === 'long')?.state === 'running', 5000);
  await sup.stop();
  const types = new Set(lost.map((l) => l.type));
  t.same([...types].sort(), ['agent_started', 'agent_stopped', 'token_issued']);
  t.ok(lost.every((l) => l.error === 'simulated audit store failure'));
  t.match(sup.status(), [{ key: 'beat', consecutiveFailures: 0, restarts: 0 }, { key: 'long', consecutiveFailures: 0, restarts: 0, lastExit: { signal: 'SIGTERM' } }], 'the agents were unaffected');
  // beat runs every 20 ms: stop() may find it mid-run and end it like `long`
  const beatExit = sup.status().find((s) => s.key === 'beat')?.lastExit;
  t.ok(beatExit?.code === 0 || beatExit?.signal === 'SIGTERM', `beat's last run ended cleanly or by the stop (${JSON.stringify(beatExit)})`);
  t.ok(tokens.length >= 4, 'every run got its token');
});
