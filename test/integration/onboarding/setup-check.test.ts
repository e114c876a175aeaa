// `tollgate setup --check` against a running gateway: every check passes with a good token and CA
// (the probe's request is read back from the audit store with its agent and team), a bad token
// fails on the 407, a CA file of another CA fails the TLS check, and Claude Code's settings are
// checked and used for the probe.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';

const tg = await startTestGateway({ upstreams: { 'allowed.example.test': 9 } });
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-check-'));
t.teardown(async () => {
  await tg.stop();
  rmSync(dir, { recursive: true, force: true });
});
const otherCa = await makeTestCa('Some Other CA');
writeFileSync(path.join(dir, 'other-ca.pem'), otherCa.caPem);

const env = {
  HOME: path.join(dir, 'home'), XDG_CONFIG_HOME: path.join(dir, 'xdg'), CLAUDE_CONFIG_DIR: undefined,
  TOLLGATE_TOKEN: tg.token, TOLLGATE_PROXY: `127.0.0.1:${tg.proxyPort}`, TOLLGATE_GATEWAY: tg.adminUrl,
  TOLLGATE_CA_FILE: tg.caFile, TOLLGATE_CONFIG: path.join(tg.dir, 'tollgate.yaml'),
};
const tollgate = (args: string[], extra: Record<string, string | undefined> = {}) => cliInProcess(args, { ...env, ...extra });
const lineOf = (out: string, what: RegExp) => out.split('\n').find((l) => what.test(l)) ?? '';

t.test('every check passes against the running gateway, and the probe is audited with its agent and team', async (t) => {
  const r = await tollgate(['setup', '--check']);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(lineOf(r.stdout, /proxy reachable/), /^ok /);
  t.match(lineOf(r.stdout, /token accepted/), /^ok /);
  t.match(lineOf(r.stdout, /CA trusted/), /^ok .*verified with .*ca-bundle\.pem .*403 host_not_allowed/);
  t.match(lineOf(r.stdout, /request audited/), /^ok .*\(deny host_not_allowed\) by agent alpha-bot, team alpha in .*tollgate\.db/);
  t.notMatch(r.stdout, tg.token, 'the token is never printed');
  const probes = tg.exchanges().filter((e) => e['host'] === 'tollgate-setup-check.invalid');
  t.ok(probes.length > 0 && probes.every((e) => e['decision'] === 'deny'), 'the probe is answered by the gateway: denied, nothing forwarded');
});

t.test('a bad token fails on the 407 with a hint, and exits 1', async (t) => {
  const r = await tollgate(['setup', '--check'], { TOLLGATE_TOKEN: 'tg_not_a_real_token_0123456789' });
  t.equal(r.code, 1);
  t.match(lineOf(r.stdout, /proxy reachable/), /^ok /);
  t.match(lineOf(r.stdout, /token accepted/), /^FAIL .*407/);
  t.match(r.stdout, /hint: .*tollgate login/);
  t.match(lineOf(r.stdout, /CA trusted/), /^skip /);
});

t.test('a CA file of another CA fails the TLS check, and exits 1', async (t) => {
  const r = await tollgate(['setup', '--check', '--ca-file', path.join(dir, 'other-ca.pem')]);
  t.equal(r.code, 1);
  t.match(lineOf(r.stdout, /token accepted/), /^ok /);
  t.match(lineOf(r.stdout, /CA trusted/), /^FAIL .*not trusted with .*ca-bundle\.pem/);
  t.match(r.stdout, /hint: .*tollgate ca export/);
});

t.test('an unreachable proxy fails first and skips the rest', async (t) => {
  const r = await tollgate(['setup', '--check'], { TOLLGATE_PROXY: '127.0.0.1:1' });
  t.equal(r.code, 1);
  t.match(lineOf(r.stdout, /proxy reachable/), /^FAIL .*127\.0\.0\.1:1/);
  t.match(lineOf(r.stdout, /request audited/), /^skip /);
});

t.test('without the gateway\'s store, a non-admin token cannot read the audit trail: skipped, not failed', async (t) => {
  const r = await tollgate(['setup', '--check'], { TOLLGATE_CONFIG: path.join(dir, 'none.yaml') });
  t.equal(r.code, 0, r.stdout);
  t.match(lineOf(r.stdout, /request audited/), /^skip .*needs an admin/);
  t.match(r.stdout, /hint: an admin can confirm with `tollgate audit --host tollgate-setup-check\.invalid/);
});

t.test('claude-code: the settings are checked and the probe uses them', async (t) => {
  const missing = await tollgate(['setup', '--check', 'claude-code']);
  t.equal(missing.code, 1);
  t.match(lineOf(missing.stdout, /Claude Code settings/), /^FAIL .*does not exist/);
  t.match(missing.stdout, /hint: run `tollgate setup claude-code`/);
  const written = await tollgate(['setup', 'claude-code']);
  t.equal(written.code, 0, written.stderr);
  const ok = await tollgate(['setup', '--check', 'claude-code']);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(lineOf(ok.stdout, /Claude Code settings/), new RegExp(`^ok .*through 127\\.0\\.0\\.1:${tg.proxyPort}`));
  t.match(lineOf(ok.stdout, /request audited/), /^ok /);
  // The settings still hold the old token after a new login: the probe uses the settings' token.
  const stale = await tollgate(['setup', '--check', 'claude-code'], { TOLLGATE_TOKEN: tg.tokenB });
  t.match(lineOf(stale.stdout, /request audited/), /by agent alpha-bot/, 'the probe went with the token in the settings');
});
