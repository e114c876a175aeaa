// `tollgate setup --check` edges: an https:// proxy URL without a port is probed on 443 (not 80),
// and the admin API's audit lookup never follows a redirect with the user's token.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { findAuditRow } from '../../../src/onboarding/find-audit-row.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-check-hard-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('setup --check claude-code probes an https proxy URL without a port on 443', async (t) => {
  const ca = await makeTestCa('Setup Check Hardening CA');
  writeFileSync(path.join(dir, 'ca.pem'), ca.caPem);
  const claude = path.join(dir, 'claude');
  mkdirSync(claude);
  writeFileSync(path.join(claude, 'settings.json'), JSON.stringify({
    env: { HTTPS_PROXY: 'https://alpha:tg_settings_token@127.0.0.1', NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') },
  }));
  const r = await cliInProcess(['setup', '--check', 'claude-code'], {
    HOME: path.join(dir, 'home'), XDG_CONFIG_HOME: path.join(dir, 'xdg'), CLAUDE_CONFIG_DIR: claude,
    TOLLGATE_TOKEN: 'tg_login_token', TOLLGATE_PROXY: '127.0.0.1:443', TOLLGATE_CA_FILE: path.join(dir, 'ca.pem'),
    TOLLGATE_CONFIG: path.join(dir, 'none.yaml'), TOLLGATE_GATEWAY: undefined,
  });
  t.match(r.stdout, /^ok +Claude Code settings: .* through 127\.0\.0\.1:443 /m, r.stdout + r.stderr);
  t.match(r.stdout, /^Checking claude-code: proxy 127\.0\.0\.1:443,/m, 'the probe goes where the settings send Claude Code');
  t.match(r.stdout, /proxy reachable at 127\.0\.0\.1:443/);
  t.notMatch(r.stdout, /127\.0\.0\.1:80\b/);
});

interface Recorder { server: Server; url: string; seen: IncomingMessage[] }

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Recorder> {
  const self = { seen: [] as IncomingMessage[] } as Recorder;
  self.server = createServer((req, res) => { self.seen.push(req); handler(req, res); });
  await new Promise<void>((resolve) => self.server.listen(0, '127.0.0.1', resolve));
  self.url = `http://127.0.0.1:${(self.server.address() as AddressInfo).port}`;
  return self;
}

t.test('the audit lookup through the admin API refuses a redirect instead of following it with the token', async (t) => {
  const row = { request_id: 'req-1', decision: 'deny', principal_kind: 'user', subject: 'a@example.com', team: 'alpha', project: null, host: 'probe.invalid', reason: 'host_not_allowed' };
  const elsewhere = await listen((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ rows: [row] })); });
  let target = '';
  const admin = await listen((req, res) => {
    if (req.url?.startsWith('/moved')) { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ rows: [row] })); return; }
    res.writeHead(302, { location: target });
    res.end();
  });
  t.teardown(() => { elsewhere.server.close(); admin.server.close(); });
  for (const [name, to] of [['another origin', `${elsewhere.url}/api/v1/audit`], ['the same origin', '/moved']] as const) {
    target = to;
    const r = await findAuditRow({ requestId: 'req-1', host: 'probe.invalid', configFile: path.join(dir, 'none.yaml'), adminUrl: admin.url, token: 'tg_admin_token', waitMs: 0, env: {} });
    t.match(r, { found: false, readable: false }, `${name}: nothing found`);
    if (!r.found && !r.readable) t.match(r.why, /answered with a redirect, which is not followed with your token/, name);
    t.equal(elsewhere.seen.length, 0, `${name}: the other origin got no request`);
    t.equal(admin.seen.filter((q) => q.url?.startsWith('/moved')).length, 0, `${name}: nor the admin's own other path`);
  }
});
