// `tollgate pilot verify --team T --json`: two users of team alpha send real requests through a
// running gateway (allowed, and denied by a rule of alpha's policy); the real CLI, run as a
// subprocess against the same tollgate.yaml and data dir, reports both users with their actions,
// the token holder who sent nothing, the denial with its rule, and PASS (exit 0). Team beta, with
// no traffic, FAILs with exit 1.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { pilotReportText, readPilotReport } from '../../../src/cli/pilot-command.ts';
import { loadGatewayConfig } from '../../../src/config/gateway-config.ts';
import { loadOrgAndPolicies } from '../../../src/config/policy-source.ts';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { searchAuditRows } from '../../../src/store/sqlite-audit-reader.ts';
import type { PilotReport } from '../../../src/reporting/pilot-report.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pki = await makeTestCa();
const api = await startUpstream({ tls: await pki.issue(['api.example.test']) });
const tg = await startTestGateway({
  upstreams: { 'api.example.test': api.port },
  upstreamCaPem: pki.caPem,
  alphaRules: `
  - host: api.example.test
    action: allow
    http:
      - { method: GET, path: "/**", action: allow }
      - { method: DELETE, action: deny }`,
});
t.teardown(async () => {
  await tg.stop();
  await api.close();
});
const configFile = path.join(tg.dir, 'tollgate.yaml');
const dbFile = path.join(tg.dir, 'data', 'tollgate.db');

const userToken = async (user: string) => {
  let out = '';
  await tokenIssue({ dbFile, user, team: 'alpha', ttl: '1h', write: (s) => { out += s; } });
  return out.trim();
};

async function send(token: string, method: string, url: string): Promise<number> {
  const agent = new ProxyAgent({ uri: `http://alpha:${token}@127.0.0.1:${tg.proxyPort}`, requestTls: { ca: tg.caPem } });
  try {
    const res = await request(url, { method, dispatcher: agent });
    await res.body.text();
    return res.statusCode;
  } finally {
    await agent.close();
  }
}

function pilot(...args: string[]): { status: number | null; report: PilotReport; stderr: string } {
  // tap's process-info hook re-adds its loader to NODE_OPTIONS of every child; `env -u` drops it.
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, path.join(repo, 'bin/tollgate'), 'pilot', 'verify', '--config', configFile, '--json', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, report: JSON.parse(r.stdout) as PilotReport, stderr: r.stderr };
}

t.test('two users of the team: both seen with their actions, the denial with its rule, PASS', async (t) => {
  const ann = await userToken('ann@test.example');
  const bob = await userToken('bob@test.example');
  await userToken('cat@test.example'); // signed in, sends nothing
  t.equal(await send(ann, 'GET', 'https://api.example.test/repos/acme/a'), 200);
  t.equal(await send(ann, 'GET', 'https://api.example.test/repos/acme/b'), 200);
  t.equal(await send(ann, 'DELETE', 'https://api.example.test/repos/acme/a'), 403);
  t.equal(await send(bob, 'GET', 'https://api.example.test/user'), 200);
  t.equal(api.seen.filter((s) => s.method === 'DELETE').length, 0, 'the denied request never reached the upstream');

  // Refusals are written asynchronously: wait until the four requests' rows are complete.
  const db = openDatabase(dbFile);
  try {
    for (let i = 0; i < 200; i++) {
      const rows = searchAuditRows(db, { team: 'alpha', limit: 1000 }).rows.filter((r) => r.kind === 'request');
      if (rows.length >= 4 && rows.every((r) => r.state === 'complete')) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    db.close();
  }

  const { status, report, stderr } = pilot('--team', 'alpha', '--since', '1h');
  t.equal(status, 0, stderr);
  t.match(report, { team: 'alpha', team_name: 'Alpha', membership: { source: 'idp_groups', idp_groups: ['alpha'], token_holders: 3 } });
  t.same(report.members.map((m) => [m.user, m.requests, m.allowed, m.denied]), [['ann@test.example', 3, 2, 1], ['bob@test.example', 1, 1, 0]]);
  t.same(report.members[0]?.actions.map((a) => [a.method, a.host, a.requests, a.allowed, a.denied]), [
    ['GET', 'api.example.test', 2, 2, 0],
    ['DELETE', 'api.example.test', 1, 0, 1],
  ]);
  t.same(report.members[1]?.actions.map((a) => [a.method, a.host, a.requests]), [['GET', 'api.example.test', 1]]);
  t.same(report.members_not_seen.map((m) => m.user), ['cat@test.example']);
  t.same(report.agents, []);
  t.same(report.agents_not_seen, ['alpha-bot']);
  t.equal(report.denials.length, 1);
  t.match(report.denials[0], {
    host: 'api.example.test', method: 'DELETE', rule: /^policies\/alpha\.yaml:\d+$/, reason: /_not_allowed$/, requests: 1, subjects: 1,
    examples: [{ who: 'ann@test.example', path: '/repos/acme/a', status: 403 }],
  });
  t.equal(report.anomaly_count, 0);
  t.match(report.verdict, { pass: true, checks: [{ code: 'member_seen', ok: true }, { code: 'policy_accounted', ok: true }] });
  t.notMatch(JSON.stringify(report), /tg_[A-Za-z0-9_-]{20}/, 'no token in the report');
});

t.test('a team with no traffic: FAIL, exit 1', async (t) => {
  const { status, report } = pilot('--team', 'beta');
  t.equal(status, 1);
  t.match(report, { team: 'beta', requests: 0, members: [], agents_not_seen: ['beta-bot'] });
  t.match(report.verdict, { pass: false, checks: [{ code: 'member_seen', ok: false }, { code: 'policy_accounted', ok: true }] });
});

t.test('the tables for people; an unknown team is a usage error', async (t) => {
  const config = loadGatewayConfig(configFile);
  const loaded = loadOrgAndPolicies({ orgFile: config.org, policiesDir: config.policies });
  if (!loaded.ok) throw new Error('the test org does not load');
  const window = { since: Date.now() - 3_600_000, until: Date.now() };
  const table = pilotReportText(await readPilotReport(dbFile, loaded.bundle.org, { team: 'alpha', ...window }));
  t.match(table, /^Pilot verification of team alpha \(Alpha\)/);
  t.match(table, /\nMembers seen \(2\)\nUSER\s+REQUESTS\s+ALLOWED\s+DENIED\s+REFUSED\s+LAST SEEN\nann@test\.example\s+3\s+2\s+1\s+0/);
  t.match(table, /\nMembers with a token, not seen \(1\)\nUSER\s+LAST TOKEN USE\ncat@test\.example\s+never/);
  t.match(table, /api\.example\.test\s+DELETE\s+policies\/alpha\.yaml:\d+\s+\w+_not_allowed\s+1\s+1\s+ann@test\.example \/repos\/acme\/a/);
  t.match(table, /\nVerdict: PASS\n/);
  const beta = pilotReportText(await readPilotReport(dbFile, loaded.bundle.org, { team: 'beta', ...window }));
  t.match(beta, /\nVerdict: FAIL\n\s+FAIL member_seen/);
  await t.rejects(readPilotReport(dbFile, loaded.bundle.org, { team: 'gamma', ...window }), { code: 'TOLLGATE_ERR_USAGE' });
  await t.rejects(readPilotReport(dbFile, loaded.bundle.org, { team: 'alpha', since: window.until, until: window.since }), { code: 'TOLLGATE_ERR_USAGE' });
});
