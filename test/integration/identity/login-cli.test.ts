// The real CLI against a gateway in dev mode (its embedded issuer and demo users):
// `tollgate login <gateway> --no-browser` prints the sign-in URL, the "browser" (scripted here)
// signs in as alice, the CLI stores the token 0600 and prints HTTPS_PROXY; a request with it is
// attributed to alice; `tollgate logout` revokes it. Dev mode refuses non-loopback addresses.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { DEMO_USERS, startDevIssuer } from '../../../src/identity/dev-issuer.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { ScriptedBrowser } from '../../helpers/oidc-browser.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const echo = await startUpstream();
const gw = await startTestGateway({
  dev: true,
  upstreams: { 'echo.alpha.test': echo.port },
  files: {
    'org.yaml': [
      'organization: Acme Test',
      'admins: { idp_groups: [it-admins] }',
      'teams:',
      '  alpha: { name: Alpha, idp_groups: [sre], policy: policies/alpha.yaml }',
      '  beta: { name: Beta, idp_groups: [support-operations], policy: policies/beta.yaml }',
      'agents:',
      '  alpha-bot: { name: Alpha Bot, team: alpha }',
      '  beta-bot: { name: Beta Bot, team: beta }',
      '',
    ].join('\n'),
  },
});
t.teardown(async () => {
  await gw.stop();
  await echo.close();
});

function runCli(args: string[], env: NodeJS.ProcessEnv, onStderr: (text: string) => void = () => undefined) {
  // What bin/tollgate does, with tsx loaded by --import (tap's process tracking wraps child
  // processes, and its loader conflicts with bin/tollgate's own tsx register()).
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(['node', 'tollgate', ...${JSON.stringify(args)}]);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? '', XDG_CONFIG_HOME: env['XDG_CONFIG_HOME'] ?? '', TOLLGATE_NO_BROWSER: '1' }, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    onStderr(stderr);
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

t.test('dev mode logs its issuer and demo users', async (t) => {
  const line = gw.logs.find((l) => String(l['msg']).startsWith('dev mode: embedded OIDC issuer'));
  t.match(line, { issuer: /^http:\/\/127\.0\.0\.1:\d+$/ });
  t.ok((line?.['users'] as string[]).some((u) => u.startsWith('alice@acme.example (sre)')));
  t.same(DEMO_USERS.map((u) => u.email).slice(0, 2), ['alice@acme.example', 'bob@acme.example']);
});

t.test('tollgate login (browser flow) and logout, end to end', async (t) => {
  const env = { ...process.env, XDG_CONFIG_HOME: mkdtempSync(path.join(os.tmpdir(), 'tollgate-cli-')) };
  const browser = new ScriptedBrowser();
  let started: Promise<unknown> | undefined;
  const out = await runCli(['login', gw.adminUrl], env, (text) => {
    const url = /^\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)$/m.exec(text)?.[1];
    if (url && !started) started = browser.signIn(url, 'alice@acme.example');
  });
  await started;
  t.equal(out.code, 0, out.stderr);
  t.match(out.stderr, /No browser could be opened/);
  t.match(out.stderr, /Signed in as alice@acme\.example; teams: alpha/);
  const m = /^export HTTPS_PROXY=http:\/\/:(tg_[A-Za-z0-9_-]{43})@127\.0\.0\.1:(\d+)$/m.exec(out.stdout);
  t.ok(m, `stdout carries only the HTTPS_PROXY line: ${out.stdout}`);
  t.equal(Number(m?.[2]), gw.proxyPort);
  const file = path.join(env.XDG_CONFIG_HOME, 'tollgate', 'credentials.json');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.match(JSON.parse(readFileSync(file, 'utf8')), { gateway: gw.adminUrl, token: m?.[1], teams: ['alpha'], user: 'alice@acme.example' });

  const res = await rawExchange(gw.proxyPort, `GET http://echo.alpha.test/ HTTP/1.1\r\nHost: echo.alpha.test\r\nProxy-Authorization: Basic ${Buffer.from(`:${m?.[1] ?? ''}`).toString('base64')}\r\nConnection: close\r\n\r\n`);
  t.match(res.text, /^HTTP\/1\.1 200/);
  t.match(gw.exchanges().at(-1), { principal: 'user:alice@acme.example', team: 'alpha' });

  const bye = await runCli(['logout'], env);
  t.equal(bye.code, 0);
  t.match(bye.stderr, /token is revoked/);
  t.throws(() => statSync(file), 'credentials.json is gone');
  const after = await rawExchange(gw.proxyPort, `GET http://echo.alpha.test/ HTTP/1.1\r\nHost: echo.alpha.test\r\nProxy-Authorization: Basic ${Buffer.from(`:${m?.[1] ?? ''}`).toString('base64')}\r\nConnection: close\r\n\r\n`);
  t.match(after.text, /^HTTP\/1\.1 407/, 'the revoked token no longer works');
});

t.test('tollgate login for a user without a team exits 1 with the reason', async (t) => {
  const env = { ...process.env, XDG_CONFIG_HOME: mkdtempSync(path.join(os.tmpdir(), 'tollgate-cli-')) };
  const browser = new ScriptedBrowser();
  let started: Promise<unknown> | undefined;
  const out = await runCli(['login', gw.adminUrl, '--no-browser'], env, (text) => {
    const url = /^\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)$/m.exec(text)?.[1];
    if (url && !started) started = browser.signIn(url, 'eve@acme.example');
  });
  await started;
  t.equal(out.code, 1);
  t.match(out.stderr, /none of your groups \(contractors\) belongs to a team of Acme Test/);
  t.equal(out.stdout, '');
});

t.test('the dev issuer refuses a non-loopback address', async (t) => {
  await t.rejects(startDevIssuer({ host: '0.0.0.0' }), { code: 'TOLLGATE_ERR_STARTUP_UNSAFE' });
});
