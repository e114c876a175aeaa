// Policy hot reload under faults, through a running gateway (security case 7.05): a YAML syntax
// error, an unknown action, an invalid glob, a binding to an undeclared secret, and a file written
// in two steps (truncated first, then complete). Each broken file is rejected with file:line:col
// problems (log line, audit event, metric, /readyz) while the last good policy keeps deciding: the
// host it allowed still passes, the host it denied still gets 403 and nothing reaches that host's
// upstream. Every broken file would, if any part of it were applied, allow the denied host and
// refuse the allowed one, so a partial policy shows up in the decisions. The complete second step
// applies. And `tollgate serve` refuses to start with a broken policy (7.05 g).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { runTollgate, until } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { writeMinimalGatewayDir } from '../../helpers/minimal-gateway-dir.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const REJECTED = 'policy reload rejected; the last good policy stays in force';
const RELOADED = 'policy reloaded';

const allowed = await startUpstream(); // echo.allowed.test: allowed by the good policy
const denied = await startUpstream(); // denied.test: denied by the good policy
const tg = await startTestGateway({
  upstreams: { 'echo.allowed.test': allowed.port, 'denied.test': denied.port },
  alphaRules: '  - { host: echo.allowed.test, action: allow }',
});
t.teardown(async () => {
  await tg.stop();
  await allowed.close();
  await denied.close();
});

const alphaFile = path.join(tg.dir, 'policies', 'alpha.yaml');
const get = async (host: string) => {
  const res = await rawExchange(tg.proxyPort, `GET http://${host}/reload-probe HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${tg.proxyAuth}\r\nConnection: close\r\n\r\n`, { waitMs: 5000 });
  return res.text;
};
const logsOf = (msg: string) => tg.logs.filter((l) => l['msg'] === msg);

/**
 * Writes `content` to policies/alpha.yaml and waits for the gateway's verdict on it: a reload of
 * the `expect` kind (for a rejection, one whose first problem matches `problem`) logged after the write.
 */
async function rewrite(content: string, expect: 'rejected' | 'reloaded', problem?: RegExp): Promise<Record<string, unknown>> {
  const from = tg.logs.length;
  writeFileSync(alphaFile, content);
  const verdicts = () => tg.logs.slice(from).filter((l) => l['msg'] === REJECTED || l['msg'] === RELOADED);
  const wanted = (l: Record<string, unknown>) => l['msg'] === (expect === 'rejected' ? REJECTED : RELOADED)
    && (problem === undefined || problem.test(String((l['problems'] as string[] | undefined)?.[0])));
  try {
    await until(`a reload ${expect}`, () => verdicts().some(wanted), 10_000);
  } catch {
    throw new Error(`expected the reload to be ${expect}${problem ? ` with ${String(problem)}` : ''}; the verdicts were ${JSON.stringify(verdicts())}`);
  }
  return verdicts().find(wanted) ?? {};
}

/** The good policy (generation 1) decides: the allowed host passes, the denied one gets 403 and reaches nothing. */
async function lastGoodPolicyDecides(t: Test, why: string): Promise<void> {
  const allowedBefore = allowed.seen.length;
  const deniedBefore = { seen: denied.seen.length, tcp: denied.tcpConnections };
  t.match(await get('echo.allowed.test'), /^HTTP\/1\.1 200 /, `${why}: the host the last good policy allows still passes`);
  t.equal(allowed.seen.length, allowedBefore + 1, `${why}: and reaches its upstream`);
  const refused = await get('denied.test');
  t.match(refused, /^HTTP\/1\.1 403 /, `${why}: the host the last good policy denies still gets 403`);
  t.match(refused, /host_not_allowed/i, `${why}: for the policy's reason`);
  t.same({ seen: denied.seen.length, tcp: denied.tcpConnections }, deniedBefore, `${why}: nothing reached the denied host's upstream`);
}

// Each broken file allows denied.test first and refuses echo.allowed.test.
const cases: Array<{ name: string; content: string; problem: RegExp }> = [
  {
    name: 'a YAML syntax error',
    content: 'team: alpha\nrules:\n  - { host: denied.test, action: allow }\n  - { host: echo.allowed.test, action: deny\n  - { host: "*", action: deny }\n',
    problem: /^policies\/alpha\.yaml:5:3: .*Flow map/,
  },
  {
    name: 'an unknown action',
    content: 'team: alpha\nrules:\n  - { host: denied.test, action: allow }\n  - { host: echo.allowed.test, action: permit }\n  - { host: "*", action: deny }\n',
    problem: /^policies\/alpha\.yaml:4:40: rules\[1\]\.action: must be allow .*direct.* or deny/,
  },
  {
    name: 'an invalid glob',
    content: 'team: alpha\nrules:\n  - { host: denied.test, action: allow }\n  - { host: "echo.*", action: deny }\n  - { host: "*", action: deny }\n',
    problem: /^policies\/alpha\.yaml:4:13: "echo\.\*": /,
  },
  {
    name: 'a binding to an undeclared secret',
    content: 'team: alpha\nrules:\n  - { host: denied.test, action: allow }\n  - { host: echo.allowed.test, action: deny }\n  - { host: "*", action: deny }\ncredentials:\n  - { host: denied.test, bearer: { secret: no-such-secret } }\n',
    problem: /^policies\/alpha\.yaml:7:44: unknown secret "no-such-secret"/,
  },
];

t.test('a broken policy change is rejected with file:line:col, and the last good policy keeps deciding', async (t) => {
  await lastGoodPolicyDecides(t, 'before any change');
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const entry = await rewrite(c.content, 'rejected', c.problem);
      t.equal((entry['problems'] as string[]).length, 1, 'one problem, named by file:line:col');
      t.equal(entry['generation'], 1, 'generation 1 stays in force');
      await lastGoodPolicyDecides(t, c.name);
      const ready = await request(`${tg.adminUrl}/readyz`);
      t.equal(ready.statusCode, 503, '/readyz reports the rejected reload');
      t.match(await ready.body.text(), /last reload rejected.*generation 1 stays in force/);
    });
  }
  t.equal(logsOf(RELOADED).length, 0, 'no broken file was ever applied');
  const rejections = logsOf(REJECTED).length;
  t.ok(rejections >= cases.length, 'every broken file was rejected');

  const metrics = await (await request(`${tg.adminUrl}/metrics`)).body.text();
  t.match(metrics, new RegExp(`^tollgate_policy_reloads_total\\{result="rejected"\\} ${rejections}$`, 'm'), 'each rejection is counted');
  t.match(metrics, /^tollgate_policy_reload_ok 0$/m);
  t.match(metrics, /^tollgate_policy_generation 1$/m);

  // The audit trail holds one policy_rejected event per broken file, with the same problems.
  const events = () => {
    const db = new BetterSqlite3(path.join(tg.dir, 'data/tollgate.db'), { readonly: true });
    try {
      return (db.prepare("SELECT actor, detail FROM audit_events WHERE type = 'policy_rejected' ORDER BY seq").all() as Array<{ actor: string; detail: string }>)
        .map((e) => ({ actor: e.actor, detail: JSON.parse(e.detail) as { generation: number; problems: string[] } }));
    } finally {
      db.close();
    }
  };
  await until('the policy_rejected audit events', () => events().length >= rejections, 10_000);
  const rows = events();
  t.equal(rows.length, rejections, 'one audit event per rejected reload');
  for (const c of cases) {
    t.ok(rows.some((r) => r.actor === 'gateway' && r.detail.generation === 1 && c.problem.test(r.detail.problems[0] ?? '')), `the audit event of ${c.name} carries file:line:col`);
  }
});

t.test('a file written in two steps: the truncated first write is rejected, the complete one applies', async (t) => {
  const complete = 'team: alpha\nrules:\n  - { host: denied.test, action: allow }\n  - { host: echo.allowed.test, action: deny }\n  - { host: "*", action: deny }\n';
  // Step 1a: open with O_TRUNC (an editor or `>` redirection): the file is empty for a moment.
  await rewrite('', 'rejected', /^policies\/alpha\.yaml:1:1: the file is empty/);
  await lastGoodPolicyDecides(t, 'an empty file');
  // Step 1b: half of it written: the rule allowing denied.test is already there, the rest is cut mid-rule.
  const half = await rewrite(complete.slice(0, complete.indexOf('action: deny }') + 'act'.length), 'rejected', /^policies\/alpha\.yaml:4:\d+: /);
  t.equal(half['generation'], 1, 'the truncated rule is reported by file:line:col; generation 1 stays');
  await lastGoodPolicyDecides(t, 'a half-written file');
  // Step 2: the complete file applies, atomically: from now on denied.test passes and echo.allowed.test is refused.
  const applied = await rewrite(complete, 'reloaded');
  t.equal(applied['generation'], 2, 'the complete file is generation 2');
  const deniedBefore = denied.seen.length;
  const allowedBefore = allowed.seen.length;
  t.match(await get('denied.test'), /^HTTP\/1\.1 200 /, 'the new policy allows denied.test');
  t.equal(denied.seen.length, deniedBefore + 1);
  t.match(await get('echo.allowed.test'), /^HTTP\/1\.1 403 /, 'and refuses echo.allowed.test');
  t.equal(allowed.seen.length, allowedBefore, 'which reaches nothing');
  t.equal((await request(`${tg.adminUrl}/readyz`)).statusCode, 200, '/readyz is ready again');
});

t.test('`tollgate serve` refuses to start with a broken policy (file:line:col on stderr)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-serve-broken-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The same syntax error as above: line 5 starts a flow map the previous one never closed.
  const { configFile } = await writeMinimalGatewayDir(dir, cases[0]?.content ?? '');
  const r = await runTollgate(['serve'], configFile, 60_000);
  t.equal(r.code, 1, 'exits with 1');
  t.match(r.stderr, /TOLLGATE_ERR_CONFIG_INVALID/);
  t.match(r.stderr, /^ {2}policies\/alpha\.yaml:5:3: .*Flow map/m, 'the problem is printed as file:line:col');
  t.notMatch(r.stdout, /tollgate listening/, 'no listener started');
});
