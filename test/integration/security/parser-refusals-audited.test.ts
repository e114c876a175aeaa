// Requests refused by the HTTP parser itself — before Tollgate has a request to look at: an
// unknown method, a bare LF or obs-fold in the head, a head past max_header_bytes — are exchanges
// like any other (security cases 1.01–1.05, 1.11: "every refusal is audited"). Each gets its log
// line and its audit row: on the plain path with the client's address only, inside an intercepted
// tunnel with the tunnel's host and principal. Nothing reaches the upstream.
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import t from 'tap';
import { until } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, openTunnel, parseResponses, rawSend, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const HOST = 'echo.allowed.test';
const pki = await makeTestCa();
const plainUp = await startUpstream();
const tlsUp = await startUpstream({ tls: await pki.issue([HOST]) });
const tg = await startTestGateway({ upstreams: { [HOST]: tlsUp.port, 'plain.allowed.test': plainUp.port }, upstreamCaPem: pki.caPem });
const db = new BetterSqlite3(path.join(tg.dir, 'data', 'tollgate.db'), { readonly: true, fileMustExist: true });
t.teardown(async () => {
  db.close();
  await tg.stop();
  await Promise.all([plainUp.close(), tlsUp.close()]);
});

interface Row { request_id: string; kind: string; via: string; host: string; subject: string | null; agent: string | null; team: string | null; decision: string; status: number | null; reason: string | null; error: string | null; address: string | null }
const rowsAfter = (id: number) => db.prepare<[number], Row>("SELECT request_id, kind, via, host, subject, agent, team, decision, status, reason, error, address FROM audit_requests WHERE id > ? AND state = 'complete' AND reason IN ('malformed_request', 'header_too_large') ORDER BY id").all(id);
const lastId = () => (db.prepare('SELECT coalesce(max(id), 0) AS n FROM audit_requests').get() as { n: number }).n;

const auth = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;
const CASES: Array<{ name: string; plain: string; inner: string; status: number; reason: string }> = [
  { name: 'an unknown method token', plain: `G@T http://plain.allowed.test/x HTTP/1.1\r\nHost: plain.allowed.test\r\n${auth}\r\n`, inner: `G@T /x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, status: 400, reason: 'malformed_request' },
  { name: 'obs-fold in a header', plain: `GET http://plain.allowed.test/x HTTP/1.1\r\nHost: plain.allowed.test\r\n${auth}X-A: 1\r\n  folded\r\n\r\n`, inner: `GET /x HTTP/1.1\r\nHost: ${HOST}\r\nX-A: 1\r\n  folded\r\n\r\n`, status: 400, reason: 'malformed_request' },
  { name: 'a head past max_header_bytes', plain: `GET http://plain.allowed.test/x HTTP/1.1\r\nHost: plain.allowed.test\r\n${auth}X-Big: ${'a'.repeat(40_000)}\r\n\r\n`, inner: `GET /x HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`, status: 431, reason: 'header_too_large' },
];

for (const c of CASES) {
  t.test(`${c.name}: refused, logged and audited on both paths; nothing forwarded`, async (t) => {
    const mark = lastId();
    const seen = plainUp.seen.length + tlsUp.seen.length;
    const logs = tg.logs.length;
    const plain = await rawSend(tg.proxyPort, c.plain, { waitMs: 3000 });
    const plainRes = parseResponses(plain.text)[0];
    t.equal(plainRes?.status, c.status, `plain: ${c.status}`);
    const sock = await openTunnel(tg.proxyPort, `${HOST}:443`, { 'Proxy-Authorization': tg.proxyAuth });
    const tls = await tlsOverTunnel(sock, tg.caPem, HOST);
    const inner = await collect(tls, c.inner, { waitMs: 3000 });
    tls.destroy();
    const innerRes = parseResponses(inner.text)[0];
    t.equal(innerRes?.status, c.status, `in the tunnel: ${c.status}`);
    await until('both audit rows', () => rowsAfter(mark).length >= 2, 3000).catch(() => undefined);
    const rows = rowsAfter(mark);
    t.equal(rows.length, 2, 'one audit row per refusal');
    const plainRow = rows.find((r) => r.via === 'plain');
    const innerRow = rows.find((r) => r.via === 'intercepted');
    for (const [label, r] of [['plain', plainRow], ['tunnel', innerRow]] as const) {
      t.match(r, { kind: 'request', decision: 'deny', status: c.status, reason: c.reason, address: null }, `${label}: the row records the refusal`);
      t.match(r?.error ?? '', /HTTP parser refused the request \(HPE_[A-Z_]+\)/, `${label}: the error names the parser's code`);
    }
    t.equal(plainRes?.headers['x-request-id'], plainRow?.request_id, 'plain: the answer carries the audit row\'s request id');
    t.equal(innerRes?.headers['x-request-id'], innerRow?.request_id, 'tunnel: likewise');
    t.equal(innerRow?.host, HOST, 'the tunnel row names the tunnel host');
    t.equal(innerRow?.agent, 'alpha-bot', 'and the tunnel principal');
    t.equal(innerRow?.team, 'alpha');
    const lines = tg.logs.slice(logs).filter((l) => l['msg'] === 'exchange' && l['reason'] === c.reason && l['kind'] === 'request');
    t.equal(lines.length, 2, 'an exchange log line for each');
    t.ok(lines.every((l) => rows.some((r) => r.request_id === l['request_id'])), 'with the audit rows\' request ids');
    t.notOk(JSON.stringify(lines).includes(tg.token), 'the log lines hold no proxy token');
    t.equal(plainUp.seen.length + tlsUp.seen.length, seen, 'nothing reached an upstream');
  });
}
