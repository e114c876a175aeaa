// Security case 7.06 (../shared/security-cases.md), a slow but legitimate upstream: with first_byte_ms
// (4 s) much longer than idle_ms (0.4 s), an upstream that takes 2.8 s to send its response head is
// waited for — on a plain connection and inside an intercepted tunnel. The client's connection is
// silent meanwhile; its idle timer must outlast the upstream's first-byte timer, or the gateway
// would cut the client at idle_ms + its 2 s grace (2.4 s) and record a client that went away. The
// response arrives whole, and its audit row reads 200 with no error.
import path from 'node:path';
import t from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { waitFor } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

const IDLE_MS = 400;
const FIRST_BYTE_MS = 4000;
const HEAD_AFTER_MS = 2800; // past idle_ms + the gateway's 2 s forwarding grace, within first_byte_ms
const SLOW = 'slow-head.allowed.test';
const SLOW_TLS = 'slow-head-tls.allowed.test';

const pki = await makeTestCa();
const answered: string[] = [];
const slowHead: UpstreamHandler = (req, res) => {
  const timer = setTimeout(() => {
    answered.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`slow answer to ${req.url}\n`);
  }, HEAD_AFTER_MS);
  res.once('close', () => clearTimeout(timer));
};
const slow = await startUpstream({ handler: slowHead });
const slowTls = await startUpstream({ tls: await pki.issue([SLOW_TLS]), handler: slowHead });
const tg = await startTestGateway({
  upstreams: { [SLOW]: slow.port, [SLOW_TLS]: slowTls.port },
  upstreamCaPem: pki.caPem,
  timeouts: { first_byte_ms: FIRST_BYTE_MS, idle_ms: IDLE_MS },
});
const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));
t.teardown(async () => {
  db.close();
  await tg.stop();
  await Promise.all([slow.close(), slowTls.close()]);
});

interface AuditRow { state: string; status: number | null; error: string | null }
async function auditRow(p: string): Promise<AuditRow | undefined> {
  const read = () => db.prepare<[string], AuditRow>('SELECT state, status, error FROM audit_requests WHERE path = ?').get(p);
  await waitFor(() => read()?.state === 'complete', 3000);
  return read();
}

t.test('plain forwarding: a response head after 2.8 s is waited for (first_byte_ms 4 s, idle_ms 0.4 s)', async (t) => {
  const started = Date.now();
  const r = await rawSend(tg.proxyPort, `GET http://${SLOW}/plain HTTP/1.1\r\nHost: ${SLOW}\r\nProxy-Authorization: ${tg.proxyAuth}\r\nConnection: close\r\n\r\n`, { waitMs: FIRST_BYTE_MS + 3000, until: hasResponses(1) });
  const ms = Date.now() - started;
  t.match(parseResponses(r.text)[0], { status: 200, body: 'slow answer to /plain\n' }, `the whole response, after ${ms} ms`);
  t.ok(ms >= HEAD_AFTER_MS, 'no earlier than the upstream answered');
  t.ok(answered.includes('/plain'), 'the upstream answered it');
  t.match(await auditRow('/plain'), { state: 'complete', status: 200, error: null }, 'audited as a clean 200, not as a client that went away');
});

t.test('inside an intercepted tunnel: the same wait, on the tunnel\'s connection', async (t) => {
  const raw = await openTunnel(tg.proxyPort, `${SLOW_TLS}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  const sock = await tlsOverTunnel(raw, tg.caPem, SLOW_TLS);
  const started = Date.now();
  const r = await collect(sock, `GET /tunnel HTTP/1.1\r\nHost: ${SLOW_TLS}\r\nConnection: close\r\n\r\n`, { waitMs: FIRST_BYTE_MS + 3000, until: hasResponses(1) });
  const ms = Date.now() - started;
  sock.destroy();
  t.match(parseResponses(r.text)[0], { status: 200, body: 'slow answer to /tunnel\n' }, `the whole response, after ${ms} ms`);
  t.ok(ms >= HEAD_AFTER_MS, 'no earlier than the upstream answered');
  t.match(await auditRow('/tunnel'), { state: 'complete', status: 200, error: null }, 'audited as a clean 200');
});

