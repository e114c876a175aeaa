// Security case 2.17 (../shared/security-cases.md): DNS failures. A name the policy ALLOWS but that
// does not resolve — NXDOMAIN, SERVFAIL, no answer at all (the DNS timeout), an empty answer
// (NOERROR with no records) — is answered 502 `dns_error` (X-Tollgate-Decision: error) within the
// DNS timeout, never a 403 policy denial, never a hang; on the plain absolute-form path, on an
// intercepted CONNECT (`allow`) and on a pass-through CONNECT (`direct`), where no tunnel is opened.
// Each failure leaves an audit row (decision error, status 502, reason dns_error, an error naming
// the resolution) and the body names the cause without leaking the proxy token or the resolver's
// address. No retry storm: the test DNS server counts the queries each client request causes (one
// A and one AAAA are expected; at most MAX_QUERIES_PER_REQUEST are accepted). A policy denial, by
// contrast, is a 403 deny that asks the DNS server nothing. Afterwards a name that resolves works
// (plain and intercepted): the gateway is healthy.
// The names exist only in the test DNS server (TTL 0, not in `upstreams:`), so the gateway really
// resolves them through `dns.servers`.
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { waitFor } from '../../helpers/cli-process.ts';
import { startTestDns, type DnsAnswer } from '../../helpers/dns-server.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel, type ParsedResponse } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const DNS_TIMEOUT_MS = 800;
/** The gateway must answer a silent DNS server within its timeout plus this margin. */
const MARGIN_MS = 2500;
/** The client gives up (and the test fails) after this: a hang is seen as "no response". */
const CLIENT_WAIT_MS = DNS_TIMEOUT_MS + MARGIN_MS + 1500;
/** How long a refused CONNECT may stay open after its answer before the gateway closes it. */
const CLOSE_WAIT_MS = 1000;
/** One lookup asks A and AAAA; allow one retransmission each, nothing like a storm. */
const MAX_QUERIES_PER_REQUEST = 4;
/** Repeated requests to one failing name, to see that queries grow linearly and stay bounded. */
const REPEATS = 5;
const A = 1;
const AAAA = 28;

type Failure = 'nxdomain' | 'servfail' | 'timeout' | 'empty';
type Route = 'plain' | 'intercepted' | 'direct';
const FAILURES: readonly Failure[] = ['nxdomain', 'servfail', 'timeout', 'empty'];
const ROUTES: readonly Route[] = ['plain', 'intercepted', 'direct'];

/** One name per failure and route, so the queries of each request can be told apart. */
const failingHost = (f: Failure, r: Route) => `${f}-${r}.dnsfail.test`;
const GOOD = 'good.dnsfail.test';
const DENIED = 'denied.elsewhere.test';
const DNS_ANSWER: Record<Failure, DnsAnswer | undefined> = {
  nxdomain: undefined, // not in the table: the helper answers NXDOMAIN
  servfail: 'servfail',
  timeout: 'timeout', // the helper never answers
  empty: [], // NOERROR, no answer records, for A and for AAAA
};

const pki = await makeTestCa();
const goodHttp = await startUpstream();
const goodHttps = await startUpstream({ tls: await pki.issue([GOOD]) });
const dns = await startTestDns(0);
for (const f of FAILURES) {
  for (const r of ROUTES) {
    const answer = DNS_ANSWER[f];
    if (answer !== undefined) dns.records.set(failingHost(f, r), answer);
  }
}
dns.records.set(GOOD, ['127.0.0.1']);

const tg = await startTestGateway({
  upstreamCaPem: pki.caPem,
  alphaRules: [
    // Every failing name is allowed by policy: a 403 for any of them would be a bug.
    ...FAILURES.flatMap((f) => [
      `  - { host: ${failingHost(f, 'plain')}, action: allow, ports: [80] }`,
      `  - { host: ${failingHost(f, 'intercepted')}, action: allow, ports: [443] }`,
      `  - { host: ${failingHost(f, 'direct')}, action: direct, ports: [443] }`,
    ]),
    `  - { host: ${GOOD}, action: allow, ports: [${goodHttp.port}, ${goodHttps.port}] }`,
    ...['servfail', 'timeout'].map((a) => `  - { host: a-only-${a}.dnsfail.test, action: allow, ports: [${goodHttp.port}] }`),
    '  - { host: both-fail.dnsfail.test, action: allow, ports: [80] }',
    // The control name resolves to loopback: an address rule lets the guard dial it on those ports.
    `  - { host: 127.0.0.1, action: allow, ports: [${goodHttp.port}, ${goodHttps.port}] }`,
  ].join('\n'),
  extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: ${DNS_TIMEOUT_MS} }`,
});
const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));
t.teardown(async () => {
  db.close();
  await tg.stop();
  await Promise.all([goodHttp.close(), goodHttps.close(), dns.close()]);
});

const auth = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;

function queriesFor(host: string, since: number): { a: number; aaaa: number; total: number } {
  const qs = dns.queries.slice(since).filter((q) => q.name === host);
  return { a: qs.filter((q) => q.type === A).length, aaaa: qs.filter((q) => q.type === AAAA).length, total: qs.length };
}

interface Attempt {
  res: ParsedResponse | undefined;
  /** Everything the client received on the proxy connection. */
  text: string;
  /** The gateway closed the connection (a refused CONNECT must be closed). */
  closed: boolean;
  ms: number;
  queries: { a: number; aaaa: number; total: number };
  /** For an intercepting gateway that answers the CONNECT 200 first: the CONNECT's own status line. */
  connectStatus?: string;
}

async function attempt(f: Failure, route: Route, n = 0): Promise<Attempt> {
  const host = failingHost(f, route);
  const mark = dns.queries.length;
  const started = Date.now();
  if (route === 'plain') {
    const r = await rawSend(tg.proxyPort, `GET http://${host}/dns-2.17/${f}/${n} HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`, { waitMs: CLIENT_WAIT_MS, until: hasResponses(1) });
    return { res: parseResponses(r.text)[0], text: r.text, closed: r.closed, ms: Date.now() - started, queries: queriesFor(host, mark) };
  }
  // CONNECT: the answer to the CONNECT itself, then (on the same connection) whether the gateway
  // closes it and sends nothing more.
  const conn = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
  conn.on('error', () => undefined);
  const head = await collect(conn, `CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n${auth}\r\n`, { waitMs: CLIENT_WAIT_MS, until: hasResponses(1) });
  const ms = Date.now() - started;
  const res = parseResponses(head.text)[0];
  if (route === 'intercepted' && res?.status === 200 && !head.closed) {
    // A gateway may intercept first and resolve for the inner request: judge that request instead.
    try {
      const sock = await tlsOverTunnel(conn, tg.caPem, host);
      const innerStart = Date.now();
      const inner = await collect(sock, `GET /dns-2.17/${f}/${n} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, { waitMs: CLIENT_WAIT_MS, until: hasResponses(1) });
      sock.destroy();
      return { res: parseResponses(inner.text)[0], text: inner.text, closed: inner.closed, ms: Date.now() - innerStart, queries: queriesFor(host, mark), connectStatus: '200' };
    } catch (err) {
      return { res: undefined, text: `TLS over the intercepted tunnel failed: ${String(err)}`, closed: true, ms, queries: queriesFor(host, mark), connectStatus: '200' };
    } finally {
      conn.destroy();
    }
  }
  const after = head.closed ? { text: '', closed: true } : await collect(conn, undefined, { waitMs: CLOSE_WAIT_MS });
  conn.destroy();
  return { res, text: head.text + after.text, closed: after.closed, ms, queries: queriesFor(host, mark) };
}

interface AuditRow {
  state: string; kind: string; via: string; host: string; path: string | null; decision: string; reason: string | null;
  status: number | null; error: string | null; address: string | null; bytes_out: number; bytes_in: number;
}

/** The completed audit rows for `host` (rows are completed a few ms after the response). */
async function auditRows(host: string, expected: number): Promise<AuditRow[]> {
  const read = () => db.prepare<[string], AuditRow>("SELECT * FROM audit_requests WHERE host = ? AND state = 'complete' ORDER BY id").all(host);
  await waitFor(() => read().length >= expected, 3000);
  return read();
}

const RESOLUTION_ERROR = /dns|resolv|ENOTFOUND|ESERVFAIL|ETIMEOUT|ETIMEDOUT|ENODATA|no addresses/i;

function assertDnsError(t: Test, label: string, a: Attempt, f: Failure, route: Route): void {
  const host = failingHost(f, route);
  t.ok(a.res, `${label}: the gateway answered (${a.ms} ms; received ${JSON.stringify(a.text.slice(0, 80))})`);
  t.equal(a.res?.status, 502, `${label}: 502, not a 403 denial or a 504 (got ${a.res?.status ?? 'nothing'} ${a.res?.headers['x-tollgate-reason'] ?? ''})`);
  t.equal(a.res?.headers['x-tollgate-reason'], 'dns_error', `${label}: X-Tollgate-Reason dns_error`);
  t.equal(a.res?.headers['x-tollgate-decision'], 'error', `${label}: X-Tollgate-Decision error (a failure, not a policy deny)`);
  const body = a.res?.body ?? '';
  t.match(body, /could not be resolved|has no addresses|dns_error/, `${label}: the body names the cause`);
  t.ok(body.includes(host), `${label}: the body names the host`);
  t.notOk(body.includes(tg.token), `${label}: the body does not echo the proxy token`);
  t.notOk(/proxy-authorization|basic [a-z0-9+/=]{8,}/i.test(body), `${label}: the body carries no credentials`);
  t.notOk(body.includes(`:${dns.port}`), `${label}: the body does not reveal the resolver's address`);
  t.notOk(/\n\s+at /.test(body), `${label}: the body carries no stack trace`);
  const limit = f === 'timeout' ? DNS_TIMEOUT_MS + MARGIN_MS : DNS_TIMEOUT_MS;
  t.ok(a.ms < limit, `${label}: answered in ${a.ms} ms (< ${limit} ms${f === 'timeout' ? ': the DNS timeout plus a margin' : ': the DNS server answered at once'})`);
  t.ok(a.queries.total >= 1, `${label}: the gateway asked the configured DNS server (${a.queries.total} queries)`);
  t.ok(a.queries.total <= MAX_QUERIES_PER_REQUEST, `${label}: no retry storm — ${a.queries.total} queries (A ${a.queries.a}, AAAA ${a.queries.aaaa}) ≤ ${MAX_QUERIES_PER_REQUEST}`);
  if (route !== 'plain' && a.connectStatus === undefined) {
    t.notOk(/^HTTP\/1\.1 200/.test(a.text), `${label}: the CONNECT was not answered 200 — no tunnel was opened`);
    t.ok(a.closed, `${label}: the gateway closed the connection after refusing the CONNECT`);
    t.equal(parseResponses(a.text).length, 1, `${label}: nothing but the refusal came back on the connection`);
  }
  if (route === 'direct') t.equal(a.connectStatus, undefined, `${label}: a pass-through CONNECT is refused before any tunnel`);
}

function assertAuditRow(t: Test, label: string, row: AuditRow | undefined, f: Failure, route: Route): void {
  t.ok(row, `${label}: an audit row was written`);
  if (!row) return;
  t.match(row, {
    state: 'complete',
    decision: 'error',
    status: 502,
    reason: 'dns_error',
    error: RESOLUTION_ERROR,
  }, `${label}: audit row decision error / 502 / dns_error / error naming the resolution (got ${row.decision} ${row.status ?? '-'} ${row.reason ?? '-'} ${JSON.stringify(row.error)})`);
  t.not(row.decision, 'deny', `${label}: the row is not recorded as a policy denial`);
  t.equal(row.address, null, `${label}: no address was vetted or dialled`);
  t.equal(row.bytes_out, 0, `${label}: nothing was relayed to the client from an upstream`);
  t.notOk((row.error ?? '').includes(tg.token), `${label}: the audit error does not hold the proxy token`);
  if (route === 'plain') t.equal(row.kind, 'request', `${label}: a request row`);
  else if (row.kind === 'tunnel') t.equal(row.via, 'connect', `${label}: the CONNECT's tunnel row`);
  t.equal(row.host, failingHost(f, route), `${label}: the row names the host`);
}

const upstreamBefore = { http: goodHttp.tcpConnections, https: goodHttps.tcpConnections };

for (const f of FAILURES) {
  t.test(`${f}: 502 dns_error on every route, audited, without a retry storm`, async (t) => {
    // The routes use different names, so they run side by side (the silent server costs one timeout, not three).
    const attempts = await Promise.all(ROUTES.map((route) => attempt(f, route)));
    for (const [i, route] of ROUTES.entries()) {
      const label = `[${f} ${route}]`;
      const a = attempts[i] as Attempt;
      assertDnsError(t, label, a, f, route);
      // One row for the refused request or CONNECT (a gateway that intercepts first adds the tunnel's own row).
      const expected = a.connectStatus === '200' ? 2 : 1;
      const rows = await auditRows(failingHost(f, route), expected);
      t.equal(rows.length, expected, `${label}: ${expected} completed audit row(s) for the attempt`);
      const failed = rows.filter((r) => r.status !== 200);
      t.equal(failed.length, 1, `${label}: exactly one row records the failure`);
      assertAuditRow(t, label, failed[0], f, route);
    }
  });
}

t.test('repeated failures: queries grow with requests and stay bounded per request (NXDOMAIN, SERVFAIL, empty)', async (t) => {
  for (const f of ['nxdomain', 'servfail', 'empty'] as const) {
    const host = failingHost(f, 'plain');
    const mark = dns.queries.length;
    for (let i = 1; i <= REPEATS; i++) {
      const a = await attempt(f, 'plain', i);
      t.equal(a.res?.status, 502, `[${f} repeat ${i}] 502`);
      t.equal(a.res?.headers['x-tollgate-reason'], 'dns_error', `[${f} repeat ${i}] dns_error`);
      t.ok(a.queries.total <= MAX_QUERIES_PER_REQUEST, `[${f} repeat ${i}] ${a.queries.total} queries ≤ ${MAX_QUERIES_PER_REQUEST}`);
    }
    // Nothing keeps querying in the background once the requests are answered.
    const settled = dns.queries.length;
    await new Promise((r) => setTimeout(r, 150));
    t.equal(queriesFor(host, settled).total, 0, `[${f}] no queries for ${host} after the last answer`);
    const total = queriesFor(host, mark).total;
    t.ok(total <= REPEATS * MAX_QUERIES_PER_REQUEST, `[${f}] ${total} queries for ${REPEATS} requests (≤ ${REPEATS * MAX_QUERIES_PER_REQUEST})`);
    const rows = await auditRows(host, 1 + REPEATS);
    t.equal(rows.filter((r) => r.reason === 'dns_error' && r.status === 502).length, 1 + REPEATS, `[${f}] every request has its dns_error audit row`);
  }
});

t.test('a policy denial is a 403 deny that asks the DNS server nothing: distinct from dns_error', async (t) => {
  const mark = dns.queries.length;
  const r = await rawSend(tg.proxyPort, `GET http://${DENIED}/dns-2.17/denied HTTP/1.1\r\nHost: ${DENIED}\r\n${auth}Connection: close\r\n\r\n`, { waitMs: CLIENT_WAIT_MS, until: hasResponses(1) });
  const res = parseResponses(r.text)[0];
  t.equal(res?.status, 403, `403 for a host the policy does not allow (got ${res?.status ?? 'nothing'})`);
  t.equal(res?.headers['x-tollgate-decision'], 'deny', 'X-Tollgate-Decision deny');
  t.not(res?.headers['x-tollgate-reason'], 'dns_error', `the reason is a policy reason (${res?.headers['x-tollgate-reason'] ?? '-'})`);
  t.equal(queriesFor(DENIED, mark).total, 0, 'the denied name was never looked up');
  const rows = await auditRows(DENIED, 1);
  t.match(rows[0], { decision: 'deny', status: 403 }, 'its audit row is a deny');
});

t.test('after the failures the gateway is healthy: a name that resolves works (plain and intercepted)', async (t) => {
  t.same({ http: goodHttp.tcpConnections, https: goodHttps.tcpConnections }, upstreamBefore, 'no failing request reached any origin');
  const plain = await rawSend(tg.proxyPort, `GET http://${GOOD}:${goodHttp.port}/control HTTP/1.1\r\nHost: ${GOOD}:${goodHttp.port}\r\n${auth}Connection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
  const p = parseResponses(plain.text)[0];
  t.equal(p?.status, 200, `plain control: 200 (got ${p?.status ?? 'nothing'} ${p?.headers['x-tollgate-reason'] ?? ''})`);
  t.equal(p?.headers['x-upstream'], 'yes', 'plain control: the origin answered');

  const started = Date.now();
  const tunnel = await openTunnel(tg.proxyPort, `${GOOD}:${goodHttps.port}`, { 'Proxy-Authorization': tg.proxyAuth });
  const sock = await tlsOverTunnel(tunnel, tg.caPem, GOOD);
  const inner = await collect(sock, `GET /control-tls HTTP/1.1\r\nHost: ${GOOD}:${goodHttps.port}\r\nConnection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
  sock.destroy();
  tunnel.destroy();
  const i = parseResponses(inner.text)[0];
  t.equal(i?.status, 200, `intercepted control: 200 (got ${i?.status ?? 'nothing'} ${i?.headers['x-tollgate-reason'] ?? ''})`);
  t.equal(i?.headers['x-upstream'], 'yes', 'intercepted control: the origin answered');
  t.ok(Date.now() - started < DNS_TIMEOUT_MS + MARGIN_MS, 'the control requests were not slowed by the earlier failures');
  t.ok(goodHttp.seen.some((s) => s.url === '/control') && goodHttps.seen.some((s) => s.url === '/control-tls'), 'the origins saw the control requests');
});

t.test('one address family failing does not sink the other: A answers, AAAA fails or is dropped', async (t) => {
  for (const [label, aaaa] of [['SERVFAIL', 'servfail'], ['no answer', 'timeout']] as const) {
    const host = `a-only-${aaaa}.dnsfail.test`;
    dns.records.set(host, { A: ['127.0.0.1'], AAAA: aaaa });
    const started = Date.now();
    const r = await rawSend(tg.proxyPort, `GET http://${host}:${goodHttp.port}/one-family HTTP/1.1\r\nHost: ${host}:${goodHttp.port}\r\n${auth}Connection: close\r\n\r\n`, { waitMs: CLIENT_WAIT_MS, until: hasResponses(1) });
    const res = parseResponses(r.text)[0];
    t.equal(res?.status, 200, `[AAAA ${label}] 200 through the A record (got ${res?.status ?? 'nothing'} ${res?.headers['x-tollgate-reason'] ?? ''})`);
    t.equal(res?.headers['x-upstream'], 'yes', `[AAAA ${label}] the origin answered`);
    t.ok(Date.now() - started < DNS_TIMEOUT_MS + MARGIN_MS, `[AAAA ${label}] within the DNS timeout`);
  }
  dns.records.set('both-fail.dnsfail.test', { A: 'servfail', AAAA: 'timeout' });
  const r = await rawSend(tg.proxyPort, `GET http://both-fail.dnsfail.test/x HTTP/1.1\r\nHost: both-fail.dnsfail.test\r\n${auth}Connection: close\r\n\r\n`, { waitMs: CLIENT_WAIT_MS, until: hasResponses(1) });
  const res = parseResponses(r.text)[0];
  t.equal(res?.status, 502, 'both families failing is still a 502');
  t.equal(res?.headers['x-tollgate-reason'], 'dns_error', 'with reason dns_error');
});
