// Security case 7.06 (../shared/security-cases.md), the parts upstream-failures.test.ts leaves out:
// a SYN blackhole and a TLS handshake that never completes → 504 within connect_ms; a response
// body that stalls half-way → aborted after idle_ms, and a metered one charged an estimate; an
// upstream that half-closes after its response → relayed without hanging (forwarded requests, a
// read-to-close body, a pass-through tunnel); an audit row naming the error for every failure
// (refused, connect timeout, TLS stall, no headers, stalled body); and no leaked sockets — every
// upstream connection that carried a failed request is closed again and no connect is left
// half-open (seen from the upstream and from /proc/net/tcp).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { llmGatewayOptions } from '../../helpers/fake-llm.ts';
import { sleep, waitFor } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel, type Collected } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

const CONNECT_MS = 700;
const FIRST_BYTE_MS = 700;
const IDLE_MS = 1200;
/** Slack on top of a configured timeout: the gateway must answer within it (timers, a loaded CI box). */
const SLACK_MS = 1500;

const REFUSED = 'refused.allowed.test';
const BLACKHOLE = 'blackhole.allowed.test';
const TLS_STALL = 'tls-stall.allowed.test';
const NO_HEAD = 'no-head.allowed.test';
const NO_HEAD_TLS = 'no-head-tls.allowed.test';
const STALL = 'stall.allowed.test';
const STALL_TLS = 'stall-tls.allowed.test';
const HALF = 'half.allowed.test';
const LOCAL_LLM = 'llm.allowed.test';
const HALF_DIRECT = 'half-direct.allowed.test';


const pki = await makeTestCa();

// ---- upstreams ---------------------------------------------------------------------------

/** Raw sockets an upstream accepted that are not closed yet. */
function tracked(server: net.Server): { open: Set<net.Socket>; accepted: () => number } {
  const open = new Set<net.Socket>();
  let n = 0;
  server.on('connection', (s: net.Socket) => {
    n++;
    open.add(s);
    s.on('error', () => undefined);
    s.once('close', () => open.delete(s));
  });
  return { open, accepted: () => n };
}
const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as net.AddressInfo).port)));
const closeServer = (s: net.Server, open: Set<net.Socket>) => {
  for (const x of open) x.destroy();
  return new Promise<void>((r) => s.close(() => r()));
};

// Refused: a port with nothing listening.
const downPort = await new Promise<number>((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
});

// SYN blackhole on loopback: a listener (backlog 1) in a worker thread whose event loop is blocked,
// so it never accepts; once its accept queue is full the kernel drops further SYNs and a connect
// hangs exactly as it does towards a firewalled host.
const release = new Int32Array(new SharedArrayBuffer(4));
const blackholeWorker = new Worker(`
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const s = net.createServer(() => undefined);
s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  parentPort.postMessage(s.address().port);
  while (Atomics.load(workerData, 0) === 0) Atomics.wait(workerData, 0, 0, 50);
  s.close();
  parentPort.close();
});`, { eval: true, workerData: release });
const blackholePort = await new Promise<number>((r) => blackholeWorker.once('message', (p: number) => r(p)));
const fillers: net.Socket[] = [];
let blackholeProven = false;
for (let i = 0; i < 16 && !blackholeProven; i++) {
  const s = net.connect({ host: '127.0.0.1', port: blackholePort });
  s.on('error', () => undefined);
  fillers.push(s);
  blackholeProven = !(await new Promise<boolean>((r) => { s.once('connect', () => r(true)); setTimeout(() => r(false), 300); }));
}

// TLS stall: accepts TCP, reads the ClientHello, never answers it.
const tlsStall = net.createServer((s) => { s.on('data', () => undefined); });
const tlsStallSockets = tracked(tlsStall);
const tlsStallPort = await listen(tlsStall);

// Response headers never sent (plain and TLS).
const noHead = await startUpstream({ handler: () => undefined });
const noHeadTls = await startUpstream({ tls: await pki.issue([NO_HEAD_TLS]), handler: () => undefined });

// Head and the first part of the body, then silence. Records when its response was closed.
const stallCloses = new Map<string, { at: number; finished: boolean }>();
const stallHandler: UpstreamHandler = (req, res) => {
  const url = req.url ?? '';
  if (url.includes('chunked')) res.writeHead(200, { 'content-type': 'text/plain' });
  else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
  res.write('first part of the body\n');
  res.once('close', () => stallCloses.set(url, { at: Date.now(), finished: res.writableFinished }));
};
const stall = await startUpstream({ handler: stallHandler });
const stallTls = await startUpstream({ tls: await pki.issue([STALL_TLS]), handler: stallHandler });

// Answers one request per connection, then half-closes (FIN) and keeps reading: a gateway that
// never closes its own side would leave this socket open for ever (allowHalfOpen).
function halfCloser(s: net.Socket): void {
  let buf = '';
  s.on('data', (c: Buffer) => {
    buf += c.toString('latin1');
    if (!buf.includes('\r\n\r\n')) return;
    const path0 = /^[A-Z]+ (\S+)/.exec(buf)?.[1] ?? '/';
    buf = '';
    const body = `half-closed after ${path0}\n`;
    if (path0.includes('read-to-close')) s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${body}`);
    else s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
}
const half = net.createServer({ allowHalfOpen: true }, halfCloser);
const halfSockets = tracked(half);
const halfPort = await listen(half);
const halfDirectPair = await pki.issue([HALF_DIRECT]);
const halfDirect = tls.createServer({ cert: halfDirectPair.certPem, key: halfDirectPair.keyPem, allowHalfOpen: true }, halfCloser);
const halfDirectSockets = tracked(halfDirect);
const halfDirectPort = await listen(halfDirect);

// A metered provider that stalls mid-stream: message_start (with input usage) and a few deltas, then nothing.
const ANT_KEY = `CANARY_ANT_${Math.random().toString(36).slice(2)}`;
const llmCloses: Array<{ at: number; finished: boolean }> = [];
const stallingAnthropic: UpstreamHandler = (_req, res) => {
  const sse = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
  sse('message_start', { type: 'message_start', message: { id: 'msg_stall', type: 'message', role: 'assistant', content: [], model: 'claude-haiku-4-5-20251001', stop_reason: null, stop_sequence: null, usage: { input_tokens: 100, output_tokens: 1 } } });
  sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  for (let i = 0; i < 5; i++) sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `word${i} ` } });
  res.once('close', () => llmCloses.push({ at: Date.now(), finished: res.writableFinished }));
};
const ant = await startUpstream({ tls: await pki.issue(['api.anthropic.com', 'api.openai.com']), handler: stallingAnthropic });

// Its own small price table: the metered case needs one priced model, not the shipped list.
const PRICES = [
  'as_of: "2026-01-01"',
  'sources: [test]',
  'providers:',
  '  anthropic:',
  '    models:',
  '      claude-haiku-4-5: { input: 1, output: 5, max_output_tokens: 64000 }',
  '',
].join('\n');
const llm = llmGatewayOptions({
  ant: ant.port, oai: ant.port, caPem: pki.caPem, antKey: ANT_KEY, oaiKey: 'unused',
  files: { 'prices.yaml': PRICES },
  // a metered OpenAI-compatible base on plain http (its requests arrive on the proxy's own connections)
  extraYaml: `metering: { drain_ms: 3000, openai_compatible: [ { name: local, base_url: "http://${LOCAL_LLM}/v1", prices: anthropic } ] }`,
});
const tg = await startTestGateway({
  ...llm,
  upstreams: {
    ...llm.upstreams,
    [REFUSED]: downPort, [BLACKHOLE]: blackholePort, [TLS_STALL]: tlsStallPort, [NO_HEAD]: noHead.port, [NO_HEAD_TLS]: noHeadTls.port,
    [STALL]: stall.port, [STALL_TLS]: stallTls.port, [HALF]: halfPort, [HALF_DIRECT]: halfDirectPort, [LOCAL_LLM]: stall.port,
  },
  alphaRules: [
    llm.alphaRules.replace(/^\n/, ''),
    ...[REFUSED, BLACKHOLE, TLS_STALL, NO_HEAD, NO_HEAD_TLS, STALL, STALL_TLS, HALF, LOCAL_LLM].map((h) => `  - { host: ${h}, action: allow }`),
    `  - { host: ${HALF_DIRECT}, action: direct }`,
  ].join('\n'),
  timeouts: { connect_ms: CONNECT_MS, first_byte_ms: FIRST_BYTE_MS, idle_ms: IDLE_MS },
});
const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));

t.teardown(async () => {
  db.close();
  await tg.stop();
  for (const s of fillers) s.destroy();
  Atomics.store(release, 0, 1);
  Atomics.notify(release, 0);
  await blackholeWorker.terminate();
  await Promise.all([
    closeServer(tlsStall, tlsStallSockets.open), closeServer(half, halfSockets.open), closeServer(halfDirect, halfDirectSockets.open),
    noHead.close(), noHeadTls.close(), stall.close(), stallTls.close(), ant.close(),
  ]);
});

// ---- helpers -----------------------------------------------------------------------------

const auth = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;
const plainGet = (host: string, p: string, scheme = 'http') => `GET ${scheme}://${host}${p} HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`;
const innerGet = (host: string, p: string, close = true) => `GET ${p} HTTP/1.1\r\nHost: ${host}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;

async function intercepted(host: string): Promise<tls.TLSSocket> {
  const sock = await openTunnel(tg.proxyPort, `${host}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  return tlsOverTunnel(sock, tg.caPem, host);
}

/** Sends on a fresh plain connection or a fresh intercepted tunnel; resolves with the answer and how long it took. */
async function timed(route: 'plain' | 'tunnel', host: string, p: string, waitMs: number, scheme = 'http'): Promise<Collected & { ms: number }> {
  const started = Date.now();
  if (route === 'plain') {
    const r = await rawSend(tg.proxyPort, plainGet(host, p, scheme), { waitMs, until: hasResponses(1) });
    return { ...r, ms: Date.now() - started };
  }
  const sock = await intercepted(host);
  const r = await collect(sock, innerGet(host, p), { waitMs, until: hasResponses(1) });
  sock.destroy();
  return { ...r, ms: Date.now() - started };
}

interface AuditRow { state: string; decision: string; reason: string | null; status: number | null; error: string | null; host: string; via: string; bytes_out: number }
/** The completed audit row of the request to `p` (rows are completed a few ms after the response). */
async function auditRow(p: string): Promise<AuditRow | undefined> {
  const read = () => db.prepare<[string], AuditRow>('SELECT * FROM audit_requests WHERE path = ?').get(p);
  await waitFor(() => read()?.state === 'complete', 3000);
  return read();
}

/**
 * Sockets of this process (the gateway runs in it) that still hold a TCP connection to `port`:
 * /proc/net/tcp rows whose remote port is `port`, in any state but TIME_WAIT, with an owner (inode ≠ 0).
 */
function socketsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1).filter((line) => {
    const f = line.trim().split(/\s+/);
    return f.length > 9 && f[2]?.endsWith(`:${hex}`) && f[3] !== '06' && f[9] !== '0';
  }).length;
}

const timeoutBound = (ms: number, limit: number) => ms >= limit - 100 && ms < limit + SLACK_MS;

// ---- 7.06 --------------------------------------------------------------------------------

t.test('connection refused → 502 at once, with an audit row naming the error', async (t) => {
  const [plain, tunnel] = await Promise.all([timed('plain', REFUSED, '/refused-plain', 4000), timed('tunnel', REFUSED, '/refused-tunnel', 4000)]);
  for (const [name, r] of [['plain', plain], ['tunnel', tunnel]] as const) {
    const res = parseResponses(r.text)[0];
    t.equal(res?.status, 502, `[${name}] 502`);
    t.equal(res?.headers['x-tollgate-reason'], 'upstream_unavailable', `[${name}] upstream_unavailable`);
    t.ok(r.ms < CONNECT_MS, `[${name}] answered in ${r.ms} ms, without waiting for connect_ms`);
    t.match(await auditRow(`/refused-${name}`), { state: 'complete', decision: 'allow', status: 502, reason: 'upstream_unavailable', error: /ECONNREFUSED|refused/ }, `[${name}] audit row`);
  }
});

t.test(`SYN blackhole → 504 within connect_ms (${CONNECT_MS} ms), the half-open connect abandoned`, async (t) => {
  t.ok(blackholeProven, 'the blackhole drops SYNs (a test connect did not complete)');
  const own = fillers.length;
  t.equal(socketsTo(blackholePort), own, `/proc/net/tcp shows the test's own ${own} sockets towards the blackhole`);
  let answered = false;
  const pending = Promise.all([timed('plain', BLACKHOLE, '/blackhole-plain', 6000), timed('tunnel', BLACKHOLE, '/blackhole-tunnel', 6000)]).finally(() => { answered = true; });
  let most = 0;
  while (!answered) {
    most = Math.max(most, socketsTo(blackholePort));
    await sleep(10);
  }
  const [plain, tunnel] = await pending;
  t.ok(most > own, `while waiting, the gateway held connects (SYN_SENT) towards it (${most - own} at most)`);
  for (const [name, r] of [['plain', plain], ['tunnel', tunnel]] as const) {
    const res = parseResponses(r.text)[0];
    t.equal(res?.status, 504, `[${name}] 504`);
    t.equal(res?.headers['x-tollgate-reason'], 'upstream_timeout', `[${name}] upstream_timeout`);
    t.match(res?.body ?? '', /blackhole\.allowed\.test[\s\S]*connect timeout/, `[${name}] the body names the upstream and the cause`);
    t.ok(timeoutBound(r.ms, CONNECT_MS), `[${name}] answered after ${r.ms} ms`);
    t.match(await auditRow(`/blackhole-${name}`), { decision: 'allow', status: 504, reason: 'upstream_timeout', error: /connect timeout/ }, `[${name}] audit row`);
  }
  t.ok(await waitFor(() => socketsTo(blackholePort) === own, 1000), `the gateway abandoned its connects (${socketsTo(blackholePort) - own} left)`);
});

t.test(`TLS handshake stall → 504 within connect_ms (${CONNECT_MS} ms), the stalled connection closed`, async (t) => {
  const accepted = tlsStallSockets.accepted();
  const [tunnel, plainHttps] = await Promise.all([timed('tunnel', TLS_STALL, '/tls-stall-tunnel', 6000), timed('plain', TLS_STALL, '/tls-stall-plain', 6000, 'https')]);
  for (const [name, r] of [['tunnel', tunnel], ['plain', plainHttps]] as const) {
    const res = parseResponses(r.text)[0];
    t.equal(res?.status, 504, `[${name}] 504`);
    t.equal(res?.headers['x-tollgate-reason'], 'upstream_timeout', `[${name}] upstream_timeout`);
    t.ok(timeoutBound(r.ms, CONNECT_MS), `[${name}] answered after ${r.ms} ms`);
    t.match(await auditRow(`/tls-stall-${name}`), { decision: 'allow', status: 504, reason: 'upstream_timeout', error: /connect timeout/ }, `[${name}] audit row`);
  }
  t.ok(tlsStallSockets.accepted() >= accepted + 2, 'the gateway did reach the stalling upstream (TCP accepted)');
  t.ok(await waitFor(() => tlsStallSockets.open.size === 0, 1000), `the upstream saw every stalled connection closed (${tlsStallSockets.open.size} open)`);
  t.equal(socketsTo(tlsStallPort), 0, 'no gateway socket left towards it');
});

t.test(`response headers never sent → 504 after first_byte_ms (${FIRST_BYTE_MS} ms), audit row, upstream request closed`, async (t) => {
  const [plain, tunnel] = await Promise.all([timed('plain', NO_HEAD, '/no-head-plain', 6000), timed('tunnel', NO_HEAD_TLS, '/no-head-tunnel', 6000)]);
  for (const [name, r, up] of [['plain', plain, noHead], ['tunnel', tunnel, noHeadTls]] as const) {
    const res = parseResponses(r.text)[0];
    t.equal(res?.status, 504, `[${name}] 504`);
    t.equal(res?.headers['x-tollgate-reason'], 'upstream_timeout', `[${name}] upstream_timeout`);
    t.ok(timeoutBound(r.ms, FIRST_BYTE_MS), `[${name}] answered after ${r.ms} ms`);
    t.match(await auditRow(`/no-head-${name}`), { decision: 'allow', status: 504, reason: 'upstream_timeout', error: /header|first|time/i }, `[${name}] audit row`);
    const seen = up.seen.find((s) => s.url === `/no-head-${name}`);
    t.ok(seen, `[${name}] the request reached the upstream`);
    t.ok(await waitFor(() => seen?.aborted === true, 1000), `[${name}] the upstream saw its request closed, not left open`);
    t.equal(socketsTo(up.port), 0, `[${name}] no gateway socket left towards it`);
  }
});

// Shared by the next two tests: four requests whose bodies stall after the first part.
const STALL_CASES = [
  ['plain', STALL, '/stall-plain'], ['plain', STALL, '/stall-plain-chunked'],
  ['tunnel', STALL_TLS, '/stall-tunnel'], ['tunnel', STALL_TLS, '/stall-tunnel-chunked'],
] as const;

t.test(`a body that stalls mid-response is cut after idle_ms (${IDLE_MS} ms), the upstream request closed`, async (t) => {
  const run = async (route: 'plain' | 'tunnel', host: string, p: string) => {
    const started = Date.now();
    const sock = route === 'plain' ? net.connect({ host: '127.0.0.1', port: tg.proxyPort }) : await intercepted(host);
    sock.on('error', () => undefined);
    const r = await collect(sock, route === 'plain' ? plainGet(host, p) : innerGet(host, p), { waitMs: IDLE_MS + 4000 });
    sock.destroy();
    return { ...r, ms: Date.now() - started };
  };
  const results = await Promise.all(STALL_CASES.map(([route, host, p]) => run(route, host, p)));
  for (const [i, [route, , p]] of STALL_CASES.entries()) {
    const r = results[i]!;
    const name = `${route} ${p}`;
    t.match(r.text, /^HTTP\/1\.1 200 [\s\S]*first part of the body/, `[${name}] the head and the first part were relayed`);
    t.equal(parseResponses(r.text).length, 0, `[${name}] the response is not complete (no false end of message)`);
    t.ok(r.closed, `[${name}] the gateway closed the client connection`);
    t.ok(timeoutBound(r.ms, IDLE_MS), `[${name}] cut after ${r.ms} ms`);
    t.ok(await waitFor(() => stallCloses.has(p), 1000), `[${name}] the upstream saw its response closed`);
    t.equal(stallCloses.get(p)?.finished, false, `[${name}] (aborted, it never finished)`);
  }
  // The stalled connections are closed (above). undici then dials one spare connection per pool
  // slot whose request was aborted; it carries nothing and closes after the pool's keep-alive
  // timeout. Bounded by the slots, never one per request:
  t.ok(socketsTo(stall.port) <= 2 && socketsTo(stallTls.port) <= 2, `at most one idle spare per concurrent request (${socketsTo(stall.port)} + ${socketsTo(stallTls.port)})`);
  t.equal(stall.seen.length + stallTls.seen.length, STALL_CASES.length, 'no request was sent twice');
});

t.test('a metered stream that stalls mid-response is cut after idle_ms and charged an estimate', async (t) => {
  const body = JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] });
  const sock = await intercepted('api.anthropic.com');
  const started = Date.now();
  const r = await collect(sock, `POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, { waitMs: IDLE_MS + 6000 });
  sock.destroy();
  const ms = Date.now() - started;
  t.match(r.text, /^HTTP\/1\.1 200 [\s\S]*word4/, 'the stream started');
  t.notMatch(r.text, /message_stop/, 'and never ended normally');
  t.ok(r.closed, 'the gateway closed the client connection');
  t.ok(ms < IDLE_MS + 3000 + SLACK_MS, `cut after ${ms} ms (idle_ms ${IDLE_MS}, at most a drain of 3000 ms more)`);
  t.ok(await waitFor(() => llmCloses.length > 0, 4000), 'the upstream saw its response closed');
  t.equal(llmCloses[0]?.finished, false, '(aborted, never finished)');
  type LedgerRow = { state: string; cost_micros: number; estimated: number; input_tokens: number; output_tokens: number };
  const read = () => db.prepare<[], LedgerRow>("SELECT * FROM ledger_requests WHERE subject = 'alpha-bot'").all();
  await waitFor(() => read().length > 0 && read().every((x) => x.state !== 'reserved'), 8000);
  const rows = read();
  t.equal(rows.length, 1, 'one ledger row');
  t.match(rows[0], { state: 'settled', estimated: 1 }, 'settled as an estimate, not left reserved nor released');
  t.ok((rows[0]?.cost_micros ?? 0) > 0, `charged ${rows[0]?.cost_micros} µ$, not $0`);
  const row = await auditRow('/v1/messages');
  t.match(row, { state: 'complete', status: 200, estimated: 1, cost_micros: rows[0]?.cost_micros }, 'the audit row carries the estimate');
  t.not(row?.error ?? null, null, 'and an error (what it says: see the next test)');
});

t.test('the audit row of a response cut by a stalled body says it stalled', async (t) => {
  // The stalled requests of the two tests above. The client connection's idle timer used to fire
  // first (same idle_ms as undici's coarser body timeout) and end the exchange before the forwarder
  // recorded why the response was cut: unmetered rows read "allowed, 200, error null" like a
  // complete response, and the metered row blamed the client. While a response is forwarded the
  // client timer now waits a little longer than the upstream's.
  for (const [route, , p] of [...STALL_CASES, ['tunnel', 'api.anthropic.com', '/v1/messages'] as const]) {
    const row = await auditRow(p);
    t.match(row, { state: 'complete', decision: 'allow', status: 200 }, `[${route} ${p}] audit row`);
    t.match(row?.error ?? '', /stall|idle|timeout/i, `[${route} ${p}] the row says the body stalled (error: ${JSON.stringify(row?.error)})`);
  }
});

t.test('every request of a kept-alive connection has the idle bound: a metered body that stalls is cut', async (t) => {
  // Node puts a kept-alive socket's timeout back to server.timeout when its next request arrives; the
  // metering stage reads a metered body whole before forwarding, so a client stalling there must
  // still meet idle_ms.
  const before = stall.seen.length;
  const sock = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
  sock.on('error', () => undefined);
  const first = await collect(sock, `GET http://${HALF}/one HTTP/1.1\r\nHost: ${HALF}\r\n${auth}\r\n`, { waitMs: 3000, until: hasResponses(1), destroyOnTimeout: false });
  t.match(parseResponses(first.text)[0], { status: 200 }, 'the first request of the connection');
  const started = Date.now();
  const second = await collect(sock, `POST http://${LOCAL_LLM}/v1/chat/completions HTTP/1.1\r\nHost: ${LOCAL_LLM}\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`, { waitMs: IDLE_MS + 2000 + SLACK_MS + 2000 });
  const ms = Date.now() - started;
  sock.destroy();
  t.ok(second.closed, `the gateway closed the stalled connection after ${ms} ms`);
  t.ok(ms < IDLE_MS + 2000 + SLACK_MS, `within idle_ms (${IDLE_MS}) and the forwarding grace`);
  t.equal(stall.seen.length, before, 'nothing was forwarded');
});

t.test('an upstream that half-closes after each response: relayed at once, its sockets closed, the next request works', async (t) => {
  const acceptedBefore = halfSockets.accepted();
  // plain keep-alive client: two requests on one connection, each answered by a fresh upstream connection
  const sock = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
  sock.on('error', () => undefined);
  const started = Date.now();
  const first = await collect(sock, `GET http://${HALF}/one HTTP/1.1\r\nHost: ${HALF}\r\n${auth}\r\n`, { waitMs: 3000, until: hasResponses(1), destroyOnTimeout: false });
  const second = await collect(sock, `GET http://${HALF}/two HTTP/1.1\r\nHost: ${HALF}\r\n${auth}\r\n`, { waitMs: 3000, until: hasResponses(1) });
  const ms = Date.now() - started;
  sock.destroy();
  t.match(parseResponses(first.text)[0], { status: 200, body: 'half-closed after /one\n' }, 'first response relayed');
  t.match(parseResponses(second.text)[0], { status: 200, body: 'half-closed after /two\n' }, 'second response relayed (not sent on the half-closed connection)');
  t.ok(ms < 2500, `both in ${ms} ms (no wait for the 3 s read timeout)`);
  // a body delimited by the upstream's FIN, inside a tunnel with keep-alive
  const tun = await openTunnel(tg.proxyPort, `${HALF}:80`, { 'Proxy-Authorization': tg.proxyAuth });
  const t0 = Date.now();
  const rtc = await collect(tun, innerGet(HALF, '/read-to-close', false), { waitMs: 3000, until: hasResponses(1) });
  const rtcMs = Date.now() - t0;
  tun.destroy();
  t.match(parseResponses(rtc.text)[0], { status: 200, body: 'half-closed after /read-to-close\n' }, 'a read-to-close body is relayed whole and its end signalled');
  t.ok(rtcMs < 2500, `in ${rtcMs} ms (no wait for the 3 s read timeout)`);
  t.ok(halfSockets.accepted() >= acceptedBefore + 3, 'each request used a new upstream connection');
  t.ok(await waitFor(() => halfSockets.open.size === 0, 1000), `the gateway closed its side of every half-closed connection (${halfSockets.open.size} open)`);
  t.equal(socketsTo(halfPort), 0, 'no gateway socket left towards it');
  t.match(await auditRow('/read-to-close'), { decision: 'allow', status: 200, error: null }, 'the read-to-close response is audited as complete');
});

t.test('a pass-through tunnel whose upstream half-closes after its response: the client gets it all, then EOF; nothing left open', async (t) => {
  const raw = await openTunnel(tg.proxyPort, `${HALF_DIRECT}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  const sock = await tlsOverTunnel(raw, pki.caPem, HALF_DIRECT);
  const started = Date.now();
  const r = await collect(sock, innerGet(HALF_DIRECT, '/direct', false), { waitMs: 3000 });
  const ms = Date.now() - started;
  sock.destroy();
  t.match(parseResponses(r.text)[0], { status: 200, body: 'half-closed after /direct\n' }, 'the whole response');
  t.ok(r.closed, 'then the tunnel closed');
  t.ok(ms < 2500, `in ${ms} ms (not at the 3 s read timeout)`);
  t.ok(await waitFor(() => halfDirectSockets.open.size === 0, 1000), `the upstream socket is closed (${halfDirectSockets.open.size} open)`);
  t.equal(socketsTo(halfDirectPort), 0, 'no gateway socket left towards it');
});

t.test('after all of this: no open client connections or exchanges in the gateway, and it still forwards', async (t) => {
  const metric = async (name: string) => {
    const text = await (await fetch(`${tg.adminUrl}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  };
  let exchanges = NaN;
  for (let i = 0; i < 50; i++) {
    exchanges = await metric('tollgate_proxy_active_exchanges');
    if (exchanges === 0) break;
    await sleep(20);
  }
  t.equal(exchanges, 0, 'no exchange left in flight');
  t.equal(await metric('tollgate_proxy_open_tunnels'), 0, 'no tunnel left open');
  t.equal(await metric('tollgate_proxy_open_connections'), 0, 'no client connection left open');
  const r = await rawSend(tg.proxyPort, plainGet(HALF, '/still-ok'), { waitMs: 3000, until: hasResponses(1) });
  t.equal(parseResponses(r.text)[0]?.status, 200);
});
