// A CONNECT to a host the policy denies is intercepted so that the client can read the 403 (see
// enforcement.test.ts). That tunnel's denial is decided once, at CONNECT, so it must not outlive
// its answer: the gateway closes the connection after the 403, and the client's next request comes
// on a new CONNECT, decided by the policy in force then. Before this, undici (like every client
// with a keep-alive pool) went on sending requests into the old tunnel and got 403 after a reload
// had allowed the host, for as long as it kept the connection busy.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { until } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, openTunnel, parseResponses, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const LATE = 'late.test'; // denied at first, allowed by the reload
const KEEP = 'keep.test'; // allowed throughout

const pki = await makeTestCa();
const late = await startUpstream({ tls: await pki.issue([LATE]) });
const keep = await startUpstream({ tls: await pki.issue([KEEP]) });
const tg = await startTestGateway({
  upstreams: { [LATE]: late.port, [KEEP]: keep.port },
  upstreamCaPem: pki.caPem,
  alphaRules: `  - { host: ${KEEP}, action: allow }`,
});
const agent = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: tg.caPem } });
t.teardown(async () => {
  await agent.close().catch(() => undefined);
  await tg.stop();
  await Promise.all([late.close(), keep.close()]);
});

const get = async (p: string) => {
  const r = await request(`https://${LATE}${p}`, { dispatcher: agent });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body };
};

t.test('the readable 403 inside a denied tunnel closes the tunnel', async (t) => {
  const sock = await openTunnel(tg.proxyPort, `${LATE}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  const tls = await tlsOverTunnel(sock, tg.caPem, LATE);
  const got = await collect(tls, `GET /first HTTP/1.1\r\nHost: ${LATE}\r\n\r\n`, { waitMs: 3000 });
  const [res] = parseResponses(got.text);
  t.equal(res?.status, 403, 'the denial is readable');
  t.equal(res?.headers['connection'], 'close', 'and announces the close');
  t.ok(got.closed, 'the gateway closed the tunnel after it');
  tls.destroy();
  t.equal(late.seen.length, 0, 'nothing reached the denied host');
});

t.test('after a reload allows the host, a kept-alive client reaches it on its next request', async (t) => {
  const denied = await get('/before');
  t.equal(denied.status, 403, 'denied while the policy denies the host');
  t.match(denied.body, /late\.test|not allowed|denied/i, 'the body says why');
  const alpha = path.join(tg.dir, 'policies', 'alpha.yaml');
  const from = tg.logs.length;
  writeFileSync(alpha, `team: alpha\nrules:\n  - { host: ${KEEP}, action: allow }\n  - { host: ${LATE}, action: allow }\n  - { host: "*", action: deny }\n`);
  await until('the policy reload', () => tg.logs.slice(from).some((l) => l['msg'] === 'policy reloaded'), 10_000);
  const after = await get('/after');
  t.equal(after.status, 200, 'the next request through the same agent is decided by the new policy');
  t.same(late.seen.map((s) => s.url), ['/after'], 'the upstream saw exactly the request made after the reload');
});
