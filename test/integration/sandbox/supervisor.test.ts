// The agent supervisor with real processes: schedule, crash and backoff, budget stop (a BudgetProbe
// twin), rotating logs and the status file; then the example SRE Monitor in the sandbox, through a
// real gateway, against a mock Kubernetes API.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createSupervisor, type AgentLauncher, type BudgetProbe } from '../../../src/agents/supervisor.ts';
import { readStatusFile } from '../../../src/agents/agent-status.ts';
import type { SupervisedAgent } from '../../../src/agents/agent-spec.ts';
import { createSandboxLauncher } from '../../../src/agents/sandbox-launcher.ts';
import { checkSandboxSupport } from '../../../src/sandbox/sandbox-support.ts';
import { writeCaBundle } from '../../../src/sandbox/write-ca-bundle.ts';
import { HOLDER_SCRIPT } from '../../../src/cli/run-command.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { sleep, until } from '../../helpers/cli-process.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs `node -e SCRIPT` directly (the supervisor logic does not depend on the sandbox). */
const plainLauncher = (tokens: string[]): AgentLauncher => async (agent, token) => {
  tokens.push(token);
  const child = spawn(process.execPath, ['-e', agent.command.join(' ')], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
  await new Promise((r) => child.once('spawn', r));
  return {
    pid: child.pid!, stdout: child.stdout, stderr: child.stderr, kill: (s) => child.kill(s),
    exited: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))),
  };
};
const agentOf = (key: string, script: string, everyMs?: number): SupervisedAgent => ({ key, name: key, team: 'alpha', project: undefined, everyMs, command: [script], env: {} });
const tokenTwin = { tokenFor: async (a: SupervisedAgent) => `tok-${a.key}` };
const noBudget: BudgetProbe = { exhausted: async () => ({ exhausted: false }) };

t.test('a scheduled agent runs on its schedule; output lands in its log; status is written', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokens: string[] = [];
  const sup = createSupervisor({ agents: [agentOf('beat', 'console.log("beat")', 400)], launch: plainLauncher(tokens), tokens: tokenTwin, budget: noBudget, dataDir: dir });
  sup.start();
  await until('three runs', () => readFileSync(path.join(dir, 'agents/beat/output.log'), 'utf8').split('beat\n').length > 3);
  await sup.stop();
  const status = readStatusFile(sup.statusFile)!;
  const s = status.agents[0]!;
  t.equal(s.restarts, 0, 'successful runs are not restarts');
  // the last run either finished (exit 0) or was still running when stop() ended it (a signal)
  t.ok(s.lastExit?.code === 0 || s.lastExit?.signal !== null, `last exit ${JSON.stringify(s.lastExit)}`);
  t.ok(s.lastHeartbeatAt, 'a successful run is a heartbeat');
  t.equal(s.schedule, 'every 0.4s');
  t.equal(status.supervisorRunning, false);
  t.same(new Set(tokens), new Set(['tok-beat']), 'each run got the agent token');
  const log = readFileSync(path.join(dir, 'agents/beat/output.log'), 'utf8');
  t.match(log, /=== .* start pid \d+/);
  t.match(log, /=== .* exit code 0/);
});

t.test('a crashing agent is restarted with exponential backoff', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const starts: number[] = [];
  const exits: number[] = [];
  const launcher = plainLauncher([]);
  const sup = createSupervisor({
    agents: [agentOf('crashy', 'process.exit(3)')], tokens: tokenTwin, budget: noBudget, dataDir: dir,
    launch: async (a, tok) => {
      starts.push(Date.now());
      const p = await launcher(a, tok);
      void p.exited.then(() => exits.push(Date.now()));
      return p;
    },
    backoff: { baseMs: 150, maxMs: 10_000, stableMs: 60_000 },
  });
  sup.start();
  await until('four starts', () => starts.length >= 4);
  const s = sup.status()[0]!;
  await sup.stop();
  // From each crash to the next start: at least 150, 300, 600 ms. Only lower bounds are asserted
  // (a loaded CI machine adds scheduling noise); the exact schedule is unit-tested in restartDelay.
  const delays = [0, 1, 2].map((i) => starts[i + 1]! - exits[i]!);
  t.ok(delays[0]! >= 140, `first delay ≥ 150 ms: ${delays.join(', ')}`);
  t.ok(delays[1]! >= 290, `second ≥ 300 ms: ${delays.join(', ')}`);
  t.ok(delays[2]! >= 590, `third ≥ 600 ms: ${delays.join(', ')}`);
  t.ok(s.restarts >= 3);
  t.equal(s.lastExit?.code, 3);
  t.ok(s.consecutiveFailures >= 3);
});

t.test('an agent whose budget is exhausted is stopped, not restarted, and why is recorded', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let exhausted = false;
  const asked: Array<{ team: string; agent: string }> = [];
  const budget: BudgetProbe = { exhausted: async (scope) => { asked.push(scope); return exhausted ? { exhausted: true, reason: 'team alpha: $50.00 of $50.00 this month' } : { exhausted: false }; } };
  const starts: number[] = [];
  const launcher = plainLauncher([]);
  const sup = createSupervisor({
    agents: [agentOf('spender', 'console.log("up"); setInterval(() => {}, 1000)')], tokens: tokenTwin, budget, dataDir: dir,
    launch: async (a, tok) => { starts.push(Date.now()); return launcher(a, tok); }, checkEveryMs: 100, killGraceMs: 500,
  });
  sup.start();
  await until('the agent running', () => sup.status()[0]!.state === 'running');
  exhausted = true;
  await until('the agent stopped', () => sup.status()[0]!.state === 'stopped');
  await sleep(400);
  t.equal(starts.length, 1, 'not restarted');
  const s = sup.status()[0]!;
  t.equal(s.stopped?.code, 'budget_exhausted');
  t.equal(s.stopped?.reason, 'team alpha: $50.00 of $50.00 this month');
  t.equal(s.lastExit?.signal, 'SIGTERM');
  t.same(asked[0], { team: 'alpha', agent: 'spender' }, 'the probe is asked about the agent and its team');
  t.match(readFileSync(path.join(dir, 'agents/spender/output.log'), 'utf8'), /tollgate stopped the agent: team alpha/);
  await sup.stop();
  t.equal(readStatusFile(sup.statusFile)!.agents[0]!.state, 'stopped');
});

t.test('an exhausted agent is never started', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let launched = 0;
  const sup = createSupervisor({
    agents: [agentOf('broke', 'console.log(1)', 200)], tokens: tokenTwin, dataDir: dir,
    budget: { exhausted: async () => ({ exhausted: true }) },
    launch: async (a, tok) => { launched++; return plainLauncher([])(a, tok); },
  });
  sup.start();
  await until('stopped', () => sup.status()[0]!.state === 'stopped');
  await sleep(300);
  await sup.stop();
  t.equal(launched, 0);
  t.match(sup.status()[0]!.stopped?.reason, /budget of agent broke or of team alpha is exhausted/);
});

const support = checkSandboxSupport();
t.test('the SRE Monitor example runs sandboxed under the supervisor against a mock Kubernetes API', { skip: support.ok ? false : `namespaces unavailable: ${support.ok ? '' : support.reason}` }, async (t) => {
  const pki = await makeTestCa();
  const pair = await pki.issue(['prod.gr7.eu-west-1.eks.amazonaws.com', 'hooks.slack.com']);
  let healthy = true;
  const kube = await startUpstream({
    tls: pair,
    handler: (req, res) => {
      if (!healthy) { res.writeHead(503); res.end('not ready'); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url === '/readyz' ? 'ok' : JSON.stringify({ items: [{ metadata: { name: 'node-1' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } }] }));
    },
  });
  const slack = await startUpstream({ tls: pair });
  const tg = await startTestGateway({
    upstreams: { 'prod.gr7.eu-west-1.eks.amazonaws.com': kube.port, 'hooks.slack.com': slack.port },
    upstreamCaPem: pki.caPem,
    alphaRules: [
      '  - host: prod.gr7.eu-west-1.eks.amazonaws.com',
      '    action: allow',
      '    http: [ { method: GET, path: "/**", action: allow } ]',
      '  - host: hooks.slack.com',
      '    action: allow',
      '    http: [ { method: POST, path: "/services/**", action: allow } ]',
    ].join('\n'),
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sup-'));
  t.teardown(async () => {
    await tg.stop();
    await Promise.all([kube.close(), slack.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const agent: SupervisedAgent = { key: 'alpha-bot', name: 'SRE Monitor', team: 'alpha', project: undefined, everyMs: 60_000, command: ['node', 'agents/sre-monitor.js'], env: { TOLLGATE_AGENT: 'alpha-bot' } };
  const caBundlePath = writeCaBundle(path.join(dir, 'ca-bundle.pem'), tg.caPem);
  const launch = createSandboxLauncher({ gateway: { host: '127.0.0.1', port: tg.proxyPort }, caBundlePath, tools: support.ok ? support.tools : undefined, holderScript: HOLDER_SCRIPT, cwd: ROOT });
  const runOnce = async () => {
    const sup = createSupervisor({ agents: [agent], launch, tokens: { tokenFor: async () => tg.token }, budget: noBudget, dataDir: dir });
    sup.start();
    await until('one run', () => sup.status()[0]!.lastExit !== null, 15_000);
    await sup.stop();
    return { status: sup.status()[0]!, log: readFileSync(path.join(dir, 'agents/alpha-bot/output.log'), 'utf8') };
  };
  const ok = await runOnce();
  t.equal(ok.status.lastExit?.code, 0, ok.log);
  t.match(ok.log, /"healthy":true/);
  t.same(kube.seen.map((r) => r.url), ['/readyz', '/api/v1/nodes']);
  const seen = tg.exchanges().filter((e) => e['host'] === 'prod.gr7.eu-west-1.eks.amazonaws.com' && e['method'] === 'GET');
  t.same(seen.map((e) => e['path']).sort(), ['/api/v1/nodes', '/readyz'], 'both checks went through the gateway');
  t.ok(seen.every((e) => e['principal'] === 'agent:alpha-bot' && e['decision'] === 'allow'));

  healthy = false;
  const bad = await runOnce();
  t.equal(bad.status.lastExit?.code, 0, 'the alert was delivered');
  t.equal(slack.seen.length, 1, 'Slack got the alert');
  t.match(slack.seen[0]!.body.toString(), /Kubernetes API check failed/);
});
