// Revocation and expiry reach connections that carry no further requests: a pass-through (`direct`)
// tunnel is closed by the gateway within the credential watch's interval after its token is
// revoked through the CLI (another process), and nothing more reaches the upstream through it; a
// tunnel whose token stays valid stays open.
import path from 'node:path';
import type tls from 'node:tls';
import t from 'tap';
import { tokenIssue, tokenList, tokenRevoke } from '../../../src/identity/token-commands.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { openTunnel, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { until } from '../../helpers/cli-process.ts';

const pki = await makeTestCa();
const pass = await startUpstream({ tls: await pki.issue(['pass.example.test']) });
const tg = await startTestGateway({
  upstreams: { 'pass.example.test': pass.port }, upstreamCaPem: pki.caPem,
  alphaRules: `
  - { host: pass.example.test, action: direct }
  - { host: "*", action: deny }`,
  timeouts: { idle_ms: 60_000 },
});
t.teardown(async () => {
  await tg.stop();
  await pass.close();
});

/** One request on an open TLS connection: the status line, or how it ended. */
function ask(sock: tls.TLSSocket, p: string): Promise<string> {
  return new Promise((resolve) => {
    if (sock.destroyed) { resolve('closed'); return; }
    const onData = (c: Buffer) => { done(c.toString('latin1').split('\r\n')[0] ?? ''); };
    const onClose = () => done('closed');
    const timer = setTimeout(() => done('timeout'), 3000);
    const done = (v: string) => { clearTimeout(timer); sock.off('data', onData); sock.off('close', onClose); resolve(v); };
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.write(`GET ${p} HTTP/1.1\r\nHost: pass.example.test\r\n\r\n`);
  });
}

t.test('a pass-through tunnel is closed when its token is revoked; another token\'s tunnel stays open', async (t) => {
  const dbFile = path.join(tg.dir, 'data', 'tollgate.db');
  // a second token of the same agent: the watch must end only the revoked token's tunnels
  let out = '';
  await tokenIssue({ dbFile, agent: 'alpha-bot', team: 'alpha', ttl: '1h', write: (s) => { out += s; } });
  const doomedToken = out.trim();
  const [newest] = await tokenList({ dbFile, agent: 'alpha-bot' });
  const doomed = await openTunnel(tg.proxyPort, 'pass.example.test:443', { 'Proxy-Authorization': `Basic ${Buffer.from(`alpha:${doomedToken}`).toString('base64')}` });
  const doomedTls = await tlsOverTunnel(doomed, pki.caPem, 'pass.example.test');
  t.equal(await ask(doomedTls, '/one'), 'HTTP/1.1 200 OK', 'the tunnel works');
  const kept = await openTunnel(tg.proxyPort, 'pass.example.test:443', { 'Proxy-Authorization': tg.proxyAuth });
  const keptTls = await tlsOverTunnel(kept, pki.caPem, 'pass.example.test');
  t.equal(await ask(keptTls, '/kept-1'), 'HTTP/1.1 200 OK');

  const revoked = await tokenRevoke({ dbFile, id: newest?.id ?? 'none' });
  t.equal(revoked.length, 1, 'the new token revoked (another process, as the CLI would)');
  await until('the revoked token\'s tunnel to close', () => doomed.destroyed || doomed.readyState === 'closed', 5000);
  t.equal(await ask(doomedTls, '/two'), 'closed', 'the tunnel was closed by the gateway');
  t.equal(pass.seen.filter((r) => r.url === '/two').length, 0, 'nothing more reached the upstream through it');
  t.equal(await ask(keptTls, '/kept-2'), 'HTTP/1.1 200 OK', 'a tunnel of a valid token stays open');
  keptTls.destroy();
  await until('the tunnel row to be complete', () => tg.exchanges().some((e) => typeof e['error'] === 'string' && /closed by the gateway: credentials revoked/.test(e['error'] as string)), 5000);
  t.pass('the exchange records why it was closed');
});
