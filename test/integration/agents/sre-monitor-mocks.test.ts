// The walkthrough of docs/agents.md ("Run the SRE Monitor against local mocks") on a copy of the
// shipped configuration, as a newcomer runs it: agents/mocks/sre-monitor-mocks.ts writes
// tollgate.mocks.yaml and org.mocks.yaml and serves the mocks; the real `tollgate serve --dev` and
// `tollgate agents --only sre-monitor` run as processes; the audit trail then holds the monitor's
// requests (the cluster reached through the connection's pinned CA, with the injected token), its
// denial (the cordon its org.yaml rules forbid) and its spend (the Claude diagnosis).
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ANTHROPIC_HOST, ensureMockCa, KUBE_HOST, SLACK_HOST, startMockUpstreams, writeMockFiles } from '../../../agents/mocks/sre-monitor-mocks.ts';
import { checkSandboxSupport } from '../../../src/sandbox/sandbox-support.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { unusedPort } from '../../helpers/unused-port.ts';
import { until } from '../../helpers/cli-process.ts';

const repo = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(repo, 'bin/tollgate');
const root = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sre-mocks-'));
const children: ChildProcess[] = [];
t.teardown(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

// What a fresh clone holds and the walkthrough reads. agents/ is linked, so the agent resolves
// undici from the repository's node_modules.
for (const f of ['tollgate.yaml', 'org.yaml', 'prices.yaml']) copyFileSync(path.join(repo, f), path.join(root, f));
cpSync(path.join(repo, 'policies'), path.join(root, 'policies'), { recursive: true });
mkdirSync(path.join(root, 'certs'));
for (const f of readdirSync(path.join(repo, 'certs')).filter((f) => /^eks-.*-ca\.pem$/.test(f))) copyFileSync(path.join(repo, 'certs', f), path.join(root, 'certs', f));
symlinkSync(path.join(repo, 'agents'), path.join(root, 'agents'));

/** bin/tollgate with a clean environment (tap's loaders must not reach it); resolves when `ready` shows on stdout. */
function tollgate(args: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn('/usr/bin/env', ['-i', `PATH=${process.env['PATH'] ?? '/usr/bin:/bin'}`, `HOME=${root}`, BIN, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tollgate ${args[0]} did not get ready: ${out}`)), 30_000);
    child.stdout!.on('data', () => { if (ready.test(out)) { clearTimeout(timer); resolve({ child, output: () => out }); } });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tollgate ${args[0]} exited ${code}: ${out}`)); });
  });
}

const stopped = (c: ChildProcess) => new Promise<void>((resolve) => {
  if (c.exitCode !== null || c.signalCode !== null) { resolve(); return; }
  c.once('exit', () => resolve());
  c.kill('SIGTERM');
});

interface AuditRow { method: string; host: string; path: string; decision: string; rule: string | null; reason: string; status: number | null; agent: string | null; project: string | null; model: string | null; cost_micros: number | null }

t.test('a fresh clone runs the SRE Monitor under the supervisor against local mocks', async (t) => {
  const baseConfig = path.join(root, 'tollgate.yaml');
  const mocks = await startMockUpstreams({ ca: await ensureMockCa(baseConfig), port: 0 });
  t.teardown(() => mocks.close());
  const listen = { proxy: `127.0.0.1:${await unusedPort()}`, admin: `127.0.0.1:${await unusedPort()}` };
  const files = await writeMockFiles({ baseConfig, port: mocks.port, listen });
  t.same(files.repointed, ['production/kubernetes'], 'the connection that owns the mocked cluster now trusts the mock CA');
  const orgLines = readFileSync(path.join(root, 'org.yaml'), 'utf8').replace(/\n$/, '').split('\n');
  const mockLines = readFileSync(files.orgFile, 'utf8').split('\n');
  t.same(orgLines.map((l, i) => [i + 1, mockLines[i]]).filter(([i, l]) => orgLines[(i as number) - 1] !== l),
    [[orgLines.indexOf('        ca: certs/eks-production-ca.pem') + 1, '        ca: ./data/mocks/upstream-ca.pem   # mock run; org.yaml: certs/eks-production-ca.pem']],
    'only that line differs, so rule ids keep their lines');
  t.ok(mockLines.slice(orgLines.length).every((l) => l === '' || l.startsWith('#')), 'and a note is appended');

  const serve = await tollgate(['serve', '--dev', '--config', files.configFile], /tollgate listening/);
  const sandbox = checkSandboxSupport().ok ? [] : ['--no-sandbox'];
  const agents = await tollgate(['agents', '--only', 'sre-monitor', ...sandbox, '--config', files.configFile], /supervising agents/);
  const log = path.join(files.dir, 'agents/sre-monitor/output.log');
  await until('one run of the monitor', () => existsSync(log) && /=== .* exit code/.test(readFileSync(log, 'utf8')));
  await stopped(agents.child);
  const output = readFileSync(log, 'utf8');
  t.match(output, /exit code 0/, output);
  t.match(output, /"problems":\["nodes not ready: node-2"\]/);
  t.match(output, /"result":"HTTP 403 \(denied by Tollgate policy, org\.mocks\.yaml:\d+\)"/, 'the cordon was denied');
  t.match(output, /"diagnosis":"ok"/);
  t.match(output, /"alert":"slack","status":200/);

  t.same(mocks.seen.map((r) => [r.method, r.host, r.path, r.credential]), [
    ['GET', KUBE_HOST, '/readyz', 'Bearer <eks-production-token>, injected by the gateway'],
    ['GET', KUBE_HOST, '/api/v1/nodes', 'Bearer <eks-production-token>, injected by the gateway'],
    ['POST', ANTHROPIC_HOST, '/v1/messages', 'x-api-key <anthropic-api-key>, injected by the gateway'],
    ['POST', SLACK_HOST, '/services/T000/B000/tollgate-demo', 'none'],
  ], 'the mocks got the monitor\'s requests with the injected credentials, and never the cordon');
  t.match(mocks.seen[3]!.body, /cordon node-2: HTTP 403 \(denied by Tollgate policy/);
  t.match(mocks.seen[3]!.body, /Likely cause \(claude-haiku-4-5\): node-2 stopped reporting/);

  const audit = await cliInProcess(['audit', 'list', '--agent', 'sre-monitor', '--json', '--config', files.configFile], {});
  t.equal(audit.code, 0, audit.stderr);
  const rows = (JSON.parse(audit.stdout) as { rows: AuditRow[] }).rows.filter((r) => r.method !== 'CONNECT').reverse();
  t.ok(rows.every((r) => r.agent === 'sre-monitor' && r.project === 'production'), 'every row names the agent and its project');
  t.same(rows.map((r) => [r.method, r.host, r.path, r.decision, r.status]), [
    ['GET', KUBE_HOST, '/readyz', 'allow', 200],
    ['GET', KUBE_HOST, '/api/v1/nodes', 'allow', 200],
    ['PATCH', KUBE_HOST, '/api/v1/nodes/node-2', 'deny', 403],
    ['POST', ANTHROPIC_HOST, '/v1/messages', 'allow', 200],
    ['POST', SLACK_HOST, '/services/T000/B000/tollgate-demo', 'allow', 200],
  ]);
  const denied = rows[2]!;
  t.equal(denied.reason, 'method_not_allowed');
  t.equal(mockLines[Number(denied.rule?.split(':')[1]) - 1], '      - host: "*.amazonaws.com"', `${denied.rule} is the agent's own rule for AWS hosts`);
  t.equal(rows[3]!.model, 'claude-haiku-4-5');
  t.ok((rows[3]!.cost_micros ?? 0) > 0, 'the diagnosis was metered');

  const costs = await cliInProcess(['costs', '--by', 'agent', '--json', '--config', files.configFile], {});
  t.equal(costs.code, 0, costs.stderr);
  const groups = (JSON.parse(costs.stdout) as { groups: Array<{ key: string; cost_micros: number; requests: number }> }).groups;
  t.same(groups.map((g) => [g.key, g.cost_micros, g.requests]), [['sre-monitor', rows[3]!.cost_micros, 1]], 'its spend');

  await stopped(serve.child);
});
