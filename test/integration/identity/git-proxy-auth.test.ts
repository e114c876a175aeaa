// git (libcurl with CURLAUTH_ANY for the proxy) first sends CONNECT without credentials and only
// answers the 407's Proxy-Authenticate challenge on a new connection: the gateway's 407 must be
// a proper challenge that closes the connection, after which git's authenticated CONNECT works.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const run = promisify(execFile);
const pki = await makeTestCa();
const git = await startUpstream({
  tls: await pki.issue(['git.example.test']),
  handler: (_req, res) => { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('no such repository'); },
});
const tg = await startTestGateway({ upstreams: { 'git.example.test': git.port }, upstreamCaPem: pki.caPem });
t.teardown(async () => { await tg.stop(); await git.close(); });

t.test('git ls-remote through the gateway: 407 challenge, then the authenticated tunnel', async (t) => {
  const ca = path.join(tg.dir, 'gateway-ca.pem');
  writeFileSync(ca, tg.caPem);
  const result = await run('git', ['-c', `http.proxy=${tg.proxyUrl}`, '-c', 'http.proxyAuthMethod=anyauth', 'ls-remote', 'https://git.example.test/acme/api.git'], {
    env: { ...process.env, GIT_SSL_CAINFO: ca, GIT_TERMINAL_PROMPT: '0', HOME: tg.dir },
    timeout: 20_000,
  }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }));
  const seen = git.seen.map((s) => s.url);
  t.ok(seen.some((u) => u.startsWith('/acme/api.git/info/refs')), `git reached the repository through the tunnel (${seen.join(', ')})`);
  t.match(result.stderr, /not found|404|repository/i, 'git reports the repository answer, not a proxy failure');
  t.notOk(git.seen.some((s) => s.rawHeaders.some((h) => h.includes(tg.token))), 'the gateway token never reached the upstream');
  const tunnels = tg.exchanges().filter((e) => e['kind'] === 'tunnel');
  t.ok(tunnels.some((e) => e['status'] === 407), 'the first, credential-less CONNECT was challenged');
  t.ok(tunnels.some((e) => e['status'] === 200 && e['principal'] === 'agent:alpha-bot'), 'the retry was authenticated and attributed');
});
