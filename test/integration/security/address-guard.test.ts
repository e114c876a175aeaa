// Security cases 2.01 and 2.02 (../shared/security-cases.md) through the REAL dial path: names that
// exist only in a test DNS server (never in `upstreams:`, which the address guard trusts) and IP
// literals in every spelling, all aimed at the port of a loopback canary. Team alpha allows every
// name (`*.guard.test`, `*`) on that port, so only the address guard stands between a request and
// the canary. Oracles per request: 403 `ip_not_allowed` (400 `malformed_request` only where the
// spelling cannot be parsed), a body without internal detail, an audit row `deny` with the reason
// (and, in its private `error` text, the address class), and no connection at the canary.
// Positive control: team beta, on the same gateway, has an IP rule naming 127.0.0.1 (and ::1) on the
// canary's port — a name resolving to 127.0.0.1 (plain and CONNECT), `2130706433` and a name
// resolving to ::1 then DO reach the canaries, so a silent canary means the guard refused, not that
// the request could never have got there.
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { startTestDns } from '../../helpers/dns-server.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel, type ParsedResponse } from '../../helpers/raw-client.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream-server.ts';
import { formatIp, parseIp } from '../../../src/classify/ip-address.ts';

// ---------------------------------------------------------------------------------------------
// Canaries: an HTTP origin on 127.0.0.1:P that records every request, and (when the machine has
// IPv6 loopback) a raw TCP canary on [::1]:P, the same port.

interface V6Canary { server: net.Server; accepts: number }

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
  });
}

async function tryV6Canary(port: number): Promise<V6Canary | null> {
  const c: V6Canary = { server: net.createServer((s) => { c.accepts++; s.on('error', () => undefined); s.destroy(); }), accepts: 0 };
  return new Promise((resolve) => {
    c.server.once('error', () => resolve(null));
    c.server.listen(port, '::1', () => resolve(c));
  });
}

async function startCanaries(): Promise<{ canary: TestUpstream; v6: V6Canary | null }> {
  let canary = await startUpstream();
  for (let attempt = 0; attempt < 10; attempt++) {
    const v6 = await tryV6Canary(canary.port);
    if (v6) return { canary, v6 };
    // ::1 missing altogether, or this port is taken there: probe ::1 on any port to tell which.
    const probe = await tryV6Canary(0);
    if (!probe) return { canary, v6: null };
    await closeServer(probe.server);
    await canary.close();
    canary = await startUpstream();
  }
  return { canary, v6: null };
}

const { canary, v6 } = await startCanaries();
const P = canary.port;
/** Every accept, on either canary. */
const accepts = () => canary.tcpConnections + (v6?.accepts ?? 0);

// ---------------------------------------------------------------------------------------------
// Test DNS: one name per answer of case 2.01, plus `localhost` (answered as a real resolver would).

/** The address as the gateway writes it (::ffff:7f00:1 → ::ffff:127.0.0.1). */
function canonical(a: string): string {
  const ip = parseIp(a);
  return ip ? formatIp(ip) : a;
}

interface NameCase { name: string; A: string[]; AAAA: string[]; shows: string; cls: RegExp }
const v4 = (a: string): [string[], string[]] => [[a], []];
const v6a = (a: string): [string[], string[]] => [[], [a]];
const NAME_CASES: NameCase[] = ([
  ['127.0.0.1', v4('127.0.0.1'), /loopback/],
  ['127.255.255.254', v4('127.255.255.254'), /loopback/],
  ['0.0.0.0', v4('0.0.0.0'), /unspecified/],
  ['10.0.0.1', v4('10.0.0.1'), /private/],
  ['172.16.0.1', v4('172.16.0.1'), /private/],
  ['192.168.1.1', v4('192.168.1.1'), /private/],
  ['169.254.169.254', v4('169.254.169.254'), /link-local/],
  ['100.64.0.1', v4('100.64.0.1'), /cgnat/],
  ['100.100.100.200', v4('100.100.100.200'), /cgnat/],
  ['198.18.0.1', v4('198.18.0.1'), /benchmarking/],
  ['224.0.0.1', v4('224.0.0.1'), /multicast/],
  ['255.255.255.255', v4('255.255.255.255'), /broadcast/],
  ['::1', v6a('::1'), /loopback/],
  ['::', v6a('::'), /unspecified/],
  ['fe80::1', v6a('fe80::1'), /link-local/],
  ['fc00::1', v6a('fc00::1'), /unique-local/],
  ['fd00:ec2::254', v6a('fd00:ec2::254'), /unique-local/],
  // The DNS helper writes AAAA data from hex groups only: ::ffff:127.0.0.1 is sent as ::ffff:7f00:1.
  ['::ffff:127.0.0.1', v6a('::ffff:7f00:1'), /loopback/],
  ['::ffff:169.254.169.254', v6a('::ffff:a9fe:a9fe'), /link-local/],
  ['64:ff9b::7f00:1 (NAT64 of 127.0.0.1)', v6a('64:ff9b::7f00:1'), /loopback/],
  ['64:ff9b::a9fe:a9fe (NAT64 of metadata)', v6a('64:ff9b::a9fe:a9fe'), /link-local/],
  ['2002:7f00:1::1 (6to4 of 127.0.0.1)', v6a('2002:7f00:1::1'), /loopback/],
  ['2002:a9fe:a9fe::1 (6to4 of metadata)', v6a('2002:a9fe:a9fe::1'), /link-local/],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2 (Teredo)', v6a('2001:0:4136:e378:8000:63bf:3fff:fdd2'), /documentation/],
  ['A 10.0.0.1 + AAAA ::1 (every answer non-public)', [['10.0.0.1'], ['::1']], /private[\s\S]*loopback|loopback[\s\S]*private/],
] satisfies Array<[string, [string[], string[]], RegExp]>).map(([shows, [A, AAAA], cls], i) => ({ name: `n${i}.guard.test`, A, AAAA, shows, cls }));

const dns = await startTestDns(0);
for (const c of NAME_CASES) dns.records.set(c.name, { A: c.A, AAAA: c.AAAA });
dns.records.set('localhost', { A: ['127.0.0.1'], AAAA: ['::1'] });
dns.records.set('ctl.guard.test', { A: ['127.0.0.1'] });
dns.records.set('ctl6.guard.test', { AAAA: ['::1'] });

// ---------------------------------------------------------------------------------------------
// The gateway: alpha allows every name and address by name rules only; beta names 127.0.0.1 (and
// ::1) on P with IP rules — the positive control.

const ports = `[80, 443, ${P}]`;
const tg = await startTestGateway({
  alphaRules: [
    `  - { host: "*.guard.test", action: allow, ports: ${ports} }`,
    `  - { host: "*", action: allow, ports: ${ports} }`,
  ].join('\n'),
  files: {
    'policies/beta.yaml': [
      'team: beta',
      'rules:',
      `  - { host: 127.0.0.1, action: allow, ports: [${P}] }`,
      `  - { host: "::1", action: allow, ports: [${P}] }`,
      `  - { host: "*.guard.test", action: allow, ports: ${ports} }`,
      '  - { host: "*", action: deny }',
      '',
    ].join('\n'),
  },
  extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: 1000 }`,
});
const db = new Database(path.join(tg.dir, 'data', 'tollgate.db'), { readonly: true, fileMustExist: true });
t.teardown(async () => {
  db.close();
  await tg.stop();
  await Promise.all([canary.close(), v6 ? closeServer(v6.server) : Promise.resolve(), dns.close()]);
});

const AUTH_A = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;
const AUTH_B = `Proxy-Authorization: Basic ${Buffer.from(`beta:${tg.tokenB}`).toString('base64')}\r\n`;

// ---------------------------------------------------------------------------------------------
// Requests and oracles.

interface AuditRow { decision: string; reason: string | null; status: number | null; host: string; port: number | null; method: string; team: string | null; agent: string | null; address: string | null; error: string | null }

// Prepared afresh on each poll: every poll is a new read of the WAL.
const selectRow = () => db.prepare<[string], AuditRow>(
  "SELECT decision, reason, status, host, port, method, team, agent, address, error FROM audit_requests WHERE request_id = ? AND state = 'complete'",
);

/** The completed audit row of a request (rows complete a few ms after the response). */
async function auditRow(requestId: string | undefined): Promise<AuditRow | undefined> {
  if (!requestId) return undefined;
  for (let i = 0; i < 100; i++) {
    const row = selectRow().get(requestId);
    if (row) return row;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** Plain absolute-form GET (`authority` as sent) or CONNECT, one connection each. */
async function send(kind: 'GET' | 'CONNECT', authority: string, reqPath: string, auth: string): Promise<ParsedResponse | undefined> {
  const bytes = kind === 'GET'
    ? `GET http://${authority}${reqPath} HTTP/1.1\r\nHost: ${authority}\r\n${auth}Connection: close\r\n\r\n`
    : `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`;
  const r = await rawSend(tg.proxyPort, Buffer.from(bytes, 'utf8'), { waitMs: 4000, until: hasResponses(1) });
  return parseResponses(r.text)[0];
}

/** Things a refusal body must never carry: resolver, file system, stack traces, tokens. */
function internalDetail(body: string): string[] {
  const found: string[] = [];
  if (body.includes(`127.0.0.1:${dns.port}`) || body.includes(`:${dns.port}`)) found.push('the DNS server address');
  if (body.includes(tg.dir) || /\/(?:tmp|work|home|usr)\//.test(body)) found.push('a file path');
  if (/\bat [\w.<>]+ \(|\.ts:\d+|node:internal/.test(body)) found.push('a stack trace');
  if (/\b(?:E[A-Z]{3,}|Error):/.test(body) || /\bE(?:CONNREFUSED|TIMEDOUT|NETUNREACH|HOSTUNREACH|INVAL)\b/.test(body)) found.push('a system error');
  if (body.includes(tg.token) || body.includes(tg.tokenB)) found.push('a token');
  return found;
}

interface Outcome { label: string; res: ParsedResponse | undefined; row: AuditRow | undefined; reqPath: string }

async function refusedCase(label: string, kind: 'GET' | 'CONNECT', authority: string, reqPath: string): Promise<Outcome> {
  const res = await send(kind, authority, reqPath, AUTH_A);
  const row = await auditRow(res?.headers['x-request-id']);
  return { label, res, row, reqPath };
}

interface Expect {
  /** 400 malformed_request is acceptable too (a spelling the parser cannot read). */
  may400?: boolean;
  auditHost?: string;
  cls?: RegExp;
  /** The resolved address the client never sent: naming it in the body tells the client an internal DNS answer. */
  resolved?: string[];
  method: 'GET' | 'CONNECT';
}

/**
 * Refusals whose body quoted a DNS answer of the name: what an internal name resolves to is not the
 * agent's to learn through the gateway (the addresses go to the log and audit row only).
 */
const disclosures: string[] = [];
/** 400s from the HTTP parser carry no X-Request-Id; their audit rows are counted instead. */
const parserRefusals = { count: 0 };

function checkRefusal(t: Test, o: Outcome, e: Expect): void {
  const { res, row, label } = o;
  if (!res) {
    t.fail(`${label}: no response`);
    return;
  }
  const is400 = e.may400 === true && res.status === 400;
  if (is400) {
    t.equal(res.headers['x-tollgate-reason'], 'malformed_request', `${label}: 400 malformed_request`);
  } else {
    t.equal(res.status, 403, `${label}: 403 (got ${res.status} ${res.headers['x-tollgate-reason'] ?? ''})`);
    t.equal(res.headers['x-tollgate-reason'], 'ip_not_allowed', `${label}: X-Tollgate-Reason ip_not_allowed`);
    t.equal(res.headers['x-tollgate-decision'], 'deny', `${label}: X-Tollgate-Decision deny`);
  }
  t.same(internalDetail(res.body), [], `${label}: the body names no internal detail`);
  const quoted = (e.resolved ?? []).filter((a) => res.body.includes(a));
  if (quoted.length > 0) disclosures.push(`${label}: ${quoted.join(', ')}`);
  if (is400 && res.headers['x-request-id'] === undefined) {
    // Refused by Node's HTTP parser before a request existed, answered without an id (checked in bulk).
    parserRefusals.count++;
    return;
  }
  if (!row) {
    t.fail(`${label}: an audit row`);
    return;
  }
  if (is400 && row.method === '') {
    // Refused by the HTTP parser: the row knows the connection only (no method, host or principal).
    t.match(row, { decision: 'deny', reason: 'malformed_request', status: 400, host: '', address: null }, `${label}: the parser refusal's audit row`);
    t.match(row.error ?? '', /HTTP parser refused the request/, `${label}: its error names the parser`);
    return;
  }
  t.match(row, {
    decision: 'deny',
    reason: is400 ? 'malformed_request' : 'ip_not_allowed',
    status: is400 ? 400 : 403,
    method: e.method,
    port: P,
    team: 'alpha',
    agent: 'alpha-bot',
    address: null,
  }, `${label}: audit row deny / reason / status / principal / port, no vetted address`);
  if (e.auditHost !== undefined) t.equal(row.host, e.auditHost, `${label}: audit host ${e.auditHost}`);
  if (e.cls && !is400) t.match(row.error ?? '', e.cls, `${label}: the audit row names the address class (${String(e.cls)})`);
}

/** Parser refusals in the audit trail (prepared afresh on each call: a new read of the WAL). */
const parserRows = (): number => db.prepare<[], { n: number }>(
  "SELECT count(*) AS n FROM audit_requests WHERE state = 'complete' AND reason = 'malformed_request' AND status = 400 AND decision = 'deny' AND host = ''",
).get()?.n ?? 0;

async function checkParserRefusalsAudited(t: Test, baseline: number): Promise<void> {
  if (parserRefusals.count === 0) return;
  let n = 0;
  for (let i = 0; i < 150; i++) {
    n = parserRows() - baseline;
    if (n >= parserRefusals.count) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(n >= parserRefusals.count, `every parser refusal (${parserRefusals.count}) has an audit row deny / malformed_request / 400 (found ${n})`);
}

function checkNothingArrived(t: Test, outcomes: Outcome[], before: number): void {
  t.equal(accepts() - before, 0, `no canary accepted a connection (127.0.0.1:${P}${v6 ? `, [::1]:${P}` : ''})`);
  const paths = new Set(outcomes.map((o) => o.reqPath));
  t.same(canary.seen.filter((s) => paths.has(s.url)).map((s) => s.url), [], 'the canary origin recorded none of these requests');
}

// ---------------------------------------------------------------------------------------------

t.test('2.01: a name allowed by policy whose every answer is non-public is refused, plain and CONNECT', async (t) => {
  const before = accepts();
  const jobs: Array<Promise<[Outcome, Expect]>> = [];
  NAME_CASES.forEach((c, i) => {
    const exp = { auditHost: c.name, cls: c.cls, resolved: [...c.A, ...c.AAAA].map(canonical) };
    jobs.push(refusedCase(`GET ${c.name} → ${c.shows}`, 'GET', `${c.name}:${P}`, `/n/${i}`).then((o) => [o, { ...exp, method: 'GET' }]));
    jobs.push(refusedCase(`CONNECT ${c.name} → ${c.shows}`, 'CONNECT', `${c.name}:${P}`, `/n/${i}/connect`).then((o) => [o, { ...exp, method: 'CONNECT' }]));
  });
  const results = await Promise.all(jobs);
  for (const [o, e] of results) checkRefusal(t, o, e);
  t.same(disclosures, [], 'no refusal body quotes the (internal) address a name resolved to');
  checkNothingArrived(t, results.map(([o]) => o), before);
});

/** 2.02 spellings: [as written in the URL authority (without port), canonical host, parse may fail]. */
const SPELLINGS: Array<[string, string, boolean?]> = [
  ['2130706433', '127.0.0.1'],
  ['0x7f000001', '127.0.0.1'],
  ['017700000001', '127.0.0.1'],
  ['0177.0.0.1', '127.0.0.1'],
  ['0x7f.1', '127.0.0.1'],
  ['127.1', '127.0.0.1'],
  ['127.0.0.1', '127.0.0.1'],
  ['012.0.0.1', '10.0.0.1'],
  ['0', '0.0.0.0'],
  ['0.0.0.0', '0.0.0.0'],
  ['169.254.169.254.', '169.254.169.254'],
  ['0251.0376.0251.0376', '169.254.169.254'],
  ['0xa9fea9fe', '169.254.169.254'],
  ['[::1]', '::1'],
  ['[0:0:0:0:0:0:0:1]', '::1'],
  ['[::]', '::'],
  ['[::ffff:127.0.0.1]', '::ffff:127.0.0.1'],
  ['[::ffff:7f00:1]', '::ffff:127.0.0.1'],
  ['[::ffff:169.254.169.254]', '::ffff:169.254.169.254'],
  ['[64:ff9b::7f00:1]', '64:ff9b::7f00:1'],
  ['[2002:7f00:1::1]', '2002:7f00:1::1'],
  ['[fe80::1]', 'fe80::1'],
  ['127。0。0。1', '127.0.0.1', true],
  ['localhost', 'localhost'],
  ['LOCALHOST', 'localhost'],
  ['localhost.', 'localhost'],
  ['ⓛocalhost', 'localhost', true],
];

t.test('2.02: IP literals in alternative spellings (and localhost) on the canary port are refused', async (t) => {
  const before = accepts();
  const baseline = parserRows();
  parserRefusals.count = 0;
  const jobs: Array<Promise<[Outcome, Expect]>> = [];
  SPELLINGS.forEach(([spelled, canonicalHost, may400], i) => {
    // The audit row carries the canonical host (dotted quad, RFC 5952 IPv6, lower case, no trailing dot).
    const exp = { may400: may400 === true, auditHost: canonicalHost, cls: /loopback|unspecified|link-local|private/ };
    jobs.push(refusedCase(`GET http://${spelled}:${P}/`, 'GET', `${spelled}:${P}`, `/s/${i}`).then((o) => [o, { ...exp, method: 'GET' }]));
    jobs.push(refusedCase(`CONNECT ${spelled}:${P}`, 'CONNECT', `${spelled}:${P}`, `/s/${i}/connect`).then((o) => [o, { ...exp, method: 'CONNECT' }]));
  });
  const results = await Promise.all(jobs);
  for (const [o, e] of results) checkRefusal(t, o, e);
  await checkParserRefusalsAudited(t, baseline);
  checkNothingArrived(t, results.map(([o]) => o), before);
});

// Runs after the refusals (tap runs top-level subtests in order), so the canary counts above
// cannot include the control's connections.
t.test('positive control: an IP rule naming the address lets the same requests reach the canary', async (t) => {
  const before = canary.tcpConnections;
  const viaName = await send('GET', `ctl.guard.test:${P}`, '/control/name', AUTH_B);
  t.equal(viaName?.status, 200, `beta: GET ctl.guard.test (→ 127.0.0.1) is forwarded (${viaName?.status ?? 'none'} ${viaName?.headers['x-tollgate-reason'] ?? ''})`);
  t.equal(viaName?.headers['x-upstream'], 'yes', 'the answer came from the canary');
  const viaLiteral = await send('GET', `2130706433:${P}`, '/control/literal', AUTH_B);
  t.equal(viaLiteral?.status, 200, `beta: GET http://2130706433:${P}/ is forwarded (${viaLiteral?.status ?? 'none'} ${viaLiteral?.headers['x-tollgate-reason'] ?? ''})`);
  const urls = canary.seen.map((s) => s.url);
  t.ok(urls.includes('/control/name') && urls.includes('/control/literal'), 'the canary recorded both control requests');
  t.ok(canary.tcpConnections - before >= 2, 'the canary counted the control connections');

  // CONNECT: admitted for beta; the request inside the intercepted tunnel is dialled (over TLS) to
  // the canary, which is plain HTTP — the handshake fails there, but the accept is what counts.
  const beforeTunnel = canary.tcpConnections;
  const tunnel = await openTunnel(tg.proxyPort, `ctl.guard.test:${P}`, { 'Proxy-Authorization': AUTH_B.slice('Proxy-Authorization: '.length, -2) });
  const sock = await tlsOverTunnel(tunnel, tg.caPem, 'ctl.guard.test');
  await collect(sock, `GET /control/tunnel HTTP/1.1\r\nHost: ctl.guard.test:${P}\r\nConnection: close\r\n\r\n`, { waitMs: 4000, until: hasResponses(1) });
  sock.destroy();
  tunnel.destroy();
  t.ok(canary.tcpConnections - beforeTunnel >= 1, 'beta: CONNECT ctl.guard.test → a connection reached the canary');

  if (v6) {
    const v6Before = v6.accepts;
    await send('GET', `ctl6.guard.test:${P}`, '/control/v6', AUTH_B);
    t.ok(v6.accepts - v6Before >= 1, `beta: GET ctl6.guard.test (→ ::1) reached the [::1]:${P} canary`);
  } else {
    t.comment('no IPv6 loopback here: the [::1] canary and its control are skipped');
  }

  // The rule names the address, not the name: beta is still refused for an address it does not name.
  const other = await send('GET', `${NAME_CASES.find((c) => c.shows === '10.0.0.1')?.name ?? ''}:${P}`, '/control/private', AUTH_B);
  t.equal(other?.headers['x-tollgate-reason'], 'ip_not_allowed', 'beta: a name resolving to 10.0.0.1 (not named) is still refused');
});
