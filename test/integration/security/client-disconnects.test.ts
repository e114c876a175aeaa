// Security case 7.07 (../shared/security-cases.md): clients that go away at every stage, many times
// over (a bounded count per kind, not the catalog's 10,000, to stay fast): before the response,
// during the request body, during the TLS handshake inside a CONNECT, and a TCP RST during an SSE
// stream — on the plain path and inside intercepted tunnels. Each unmetered upstream request is
// aborted (the upstream sees its connection closed); a metered stream is drained to its final usage
// within the drain bound and charged (6.03); afterwards the gateway (in this process) holds no
// client connection, tunnel or exchange, its open file descriptors are back near the baseline, no
// error was logged or thrown, and it still answers.
import { readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { fakeAnthropic, llmGatewayOptions, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { sleep, waitFor } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, openTunnel, rawSend, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

/** Iterations per kind and route (a tunnel costs two TLS handshakes, both ends in this process). */
const N = { plain: 200, tunnel: 50 } as const;
/** Broken handshakes inside CONNECT. */
const N_HANDSHAKE = 150;
/** Clients in flight at once. */
const BATCH = 20;
/** Metered streams cut by a RST (each is drained for ~1 s, all at once). */
const METERED = 10;
const DRAIN_MS = 5000;
/**
 * Open descriptors allowed above the baseline once everything has settled: a leak holds one per
 * iteration (hundreds); the gateway's WAL checkpointer thread, started once the WAL reaches 4 MiB,
 * holds about a dozen.
 */
const FD_SLACK = 30;

const HOLD = 'hold.allowed.test';
const HOLD_TLS = 'hold-tls.allowed.test';
const SSE = 'sse.allowed.test';
const SSE_TLS = 'sse-tls.allowed.test';

/** Runs `fn(0..n-1)`, `batch` at a time. */
async function inBatches(n: number, batch: number, fn: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += batch) await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => fn(i + j)));
}

// Every upstream request by URL: when it arrived, and whether its connection closed before the response finished.
interface Seen { arrived: Promise<void>; closed: Promise<void>; aborted: boolean; done: boolean }
const requests = new Map<string, Seen & { arrive: () => void; close: () => void }>();
function seen(url: string): Seen & { arrive: () => void; close: () => void } {
  let s = requests.get(url);
  if (!s) {
    let arrive!: () => void;
    let close!: () => void;
    const arrived = new Promise<void>((r) => { arrive = r; });
    const closed = new Promise<void>((r) => { close = r; });
    s = { arrived, closed, arrive, close, aborted: false, done: false };
    requests.set(url, s);
  }
  return s;
}
/** Whether `p` settles within `ms` (the timer is cleared either way). */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => { clearTimeout(timer); resolve(true); });
  });
}

/** Never answers; notes the request's arrival (at its head: bodies are streamed) and its close. */
const hold: UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => {
  const s = seen(req.url ?? '');
  req.on('data', () => undefined);
  res.once('close', () => { s.aborted = !res.writableFinished; s.close(); });
  s.arrive();
};
/** An endless SSE stream: an event every 20 ms until the connection closes. */
const sse: UpstreamHandler = (req, res) => {
  const s = seen(req.url ?? '');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let n = 0;
  res.write(`data: event ${n++}\n\n`);
  const timer = setInterval(() => res.write(`data: event ${n++}\n\n`), 20);
  res.once('close', () => { clearInterval(timer); s.aborted = !res.writableFinished; s.close(); });
  s.arrive();
};

const pki = await makeTestCa();
const holdUp = await startUpstream({ handler: hold, streamBody: true });
const holdTlsUp = await startUpstream({ tls: await pki.issue([HOLD_TLS]), handler: hold, streamBody: true });
const sseUp = await startUpstream({ handler: sse });
const sseTlsUp = await startUpstream({ tls: await pki.issue([SSE_TLS]), handler: sse });
const ctl: FakeLlmControl = { mode: 'slow', sent: 0, finished: 0 };
const ant = await startUpstream({ tls: await pki.issue(['api.anthropic.com', 'api.openai.com']), handler: fakeAnthropic(ctl) });
/** Upstream connections still open, by upstream (both their ends are descriptors of this process). */
const upstreamOpen = new Map<string, Set<net.Socket>>();
for (const [name, up] of [[HOLD, holdUp], [HOLD_TLS, holdTlsUp], [SSE, sseUp], [SSE_TLS, sseTlsUp], ['api.anthropic.com', ant]] as const) {
  const open = new Set<net.Socket>();
  upstreamOpen.set(name, open);
  up.server.on('connection', (sock: net.Socket) => { open.add(sock); sock.once('close', () => open.delete(sock)); });
}
const openUpstreamConnections = () => [...upstreamOpen.values()].reduce((n, set) => n + set.size, 0);

// Its own price table: the metered case needs one priced model, not the shipped list.
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
  ant: ant.port, oai: ant.port, caPem: pki.caPem, antKey: 'ant-key', oaiKey: 'unused',
  files: { 'prices.yaml': PRICES }, extraYaml: `metering: { drain_ms: ${DRAIN_MS} }`,
});
const tg = await startTestGateway({
  ...llm,
  upstreams: { ...llm.upstreams, [HOLD]: holdUp.port, [HOLD_TLS]: holdTlsUp.port, [SSE]: sseUp.port, [SSE_TLS]: sseTlsUp.port },
  alphaRules: [llm.alphaRules.replace(/^\n/, ''), ...[HOLD, HOLD_TLS, SSE, SSE_TLS].map((h) => `  - { host: ${h}, action: allow }`)].join('\n'),
});
const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));

// Anything thrown and not caught, anywhere in this process (the gateway runs in it).
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => { uncaught.push(err); };
process.on('uncaughtExceptionMonitor', onUncaught);

t.teardown(async () => {
  process.off('uncaughtExceptionMonitor', onUncaught);
  db.close();
  await tg.stop();
  await Promise.all([holdUp.close(), holdTlsUp.close(), sseUp.close(), sseTlsUp.close(), ant.close()]);
});

// ---- helpers -----------------------------------------------------------------------------

const auth = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;
const fds = () => readdirSync('/proc/self/fd').length;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${tg.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

function plainSocket(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}
/** An intercepted tunnel: the TLS socket and the TCP socket under it (for a RST). */
async function tunnelSockets(host: string): Promise<{ tls: tls.TLSSocket; raw: net.Socket }> {
  const raw = await openTunnel(tg.proxyPort, `${host}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  raw.on('error', () => undefined);
  const sock = await tlsOverTunnel(raw, tg.caPem, host);
  sock.on('error', () => undefined);
  return { tls: sock, raw };
}
/** A socket to the route: plain TCP to the proxy, or TLS inside a fresh intercepted tunnel. */
async function open(route: 'plain' | 'tunnel', host: string): Promise<{ sock: net.Socket; raw: net.Socket }> {
  if (route === 'plain') {
    const s = await plainSocket();
    return { sock: s, raw: s };
  }
  const { tls: s, raw } = await tunnelSockets(host);
  return { sock: s, raw };
}
const head = (route: 'plain' | 'tunnel', method: string, host: string, p: string) =>
  route === 'plain' ? `${method} http://${host}${p} HTTP/1.1\r\nHost: ${host}\r\n${auth}` : `${method} ${p} HTTP/1.1\r\nHost: ${host}\r\n`;

/**
 * After a batch of disconnects: every upstream request in `urls` was closed before its response
 * finished; the gateway has nothing left in flight or open; descriptors are near the baseline.
 */
async function assertCleanAfter(t: Test, urls: string[], baseline: number, what: string): Promise<void> {
  const closed = await within(Promise.all(urls.map((u) => seen(u).closed)), 3000);
  const notClosed = urls.filter((u) => !requests.get(u)?.aborted);
  t.ok(closed && notClosed.length === 0, `${what}: the upstream saw all ${urls.length} requests closed before their response finished (${notClosed.length} not: ${notClosed.slice(0, 3).join(', ')})`);
  await assertGatewayIdle(t, baseline, what);
}
/**
 * The gateway is idle again: no exchange, tunnel or client connection, and this process's open
 * descriptors near the baseline. Idle upstream connections are left out of the count (2 descriptors
 * each: both ends live here) but bounded: after an aborted request the gateway's pool (undici)
 * re-dials an idle spare for that slot, closed after a keep-alive timeout — one per pool slot in
 * use, so a few tens here, never one per request.
 */
async function assertGatewayIdle(t: Test, baseline: number, what: string): Promise<void> {
  let state = { exchanges: NaN, tunnels: NaN, connections: NaN };
  for (let i = 0; i < 100; i++) {
    state = { exchanges: await metric('tollgate_proxy_active_exchanges'), tunnels: await metric('tollgate_proxy_open_tunnels'), connections: await metric('tollgate_proxy_open_connections') };
    if (state.exchanges === 0 && state.tunnels === 0 && state.connections === 0) break;
    await sleep(20);
  }
  t.same(state, { exchanges: 0, tunnels: 0, connections: 0 }, `${what}: no exchange, tunnel or client connection left in the gateway`);
  const others = () => fds() - 2 * openUpstreamConnections();
  await waitFor(() => others() <= baseline + FD_SLACK, 3000);
  t.ok(others() <= baseline + FD_SLACK, `${what}: ${others()} open descriptors besides idle upstream connections (baseline ${baseline}, slack ${FD_SLACK}; ${fds()} in all)`);
  const perUpstream = [...upstreamOpen].map(([name, set]) => [name, set.size] as const);
  t.ok(perUpstream.every(([, n]) => n <= 2 * BATCH), `${what}: idle upstream connections bounded by the pool slots used (≤ ${2 * BATCH} each, not one per request): ${JSON.stringify(Object.fromEntries(perUpstream))}`);
}

// A ClientHello for the handshake cases, captured from Node's own TLS client.
const clientHello = await new Promise<Buffer>((resolve) => {
  const stub = new Duplex({ read() {}, write(chunk: Buffer, _e, cb) { resolve(Buffer.from(chunk)); cb(); } });
  const c = tls.connect({ socket: stub as unknown as net.Socket, servername: HOLD_TLS, ALPNProtocols: ['http/1.1'] });
  c.on('error', () => undefined);
  setTimeout(() => c.destroy(), 50);
});

// ---- warm-up and baseline ----------------------------------------------------------------

// One complete round of each kind first, so that leaf certificates, pools, database statements and
// lazy modules exist before the baseline is taken.
let baseline = 0;
t.before(async () => {
  for (const route of ['plain', 'tunnel'] as const) {
    const host = route === 'plain' ? SSE : SSE_TLS;
    const { sock } = await open(route, host);
    await collect(sock, `${head(route, 'GET', host, `/warm-${route}`)}\r\n`, { waitMs: 3000, until: (x) => x.includes('event 1') });
    sock.destroy();
    const hostH = route === 'plain' ? HOLD : HOLD_TLS;
    const h = await open(route, hostH);
    h.sock.write(`${head(route, 'GET', hostH, `/warm-hold-${route}`)}\r\n`);
    await within(seen(`/warm-hold-${route}`).arrived, 3000);
    h.sock.destroy();
  }
  await sleep(300);
  baseline = fds() - 2 * openUpstreamConnections();
});

// ---- 7.07 --------------------------------------------------------------------------------

t.test(`disconnect before the response: ${N.plain} plain and ${N.tunnel} in tunnels, each upstream request aborted`, async (t) => {
  for (const [route, host] of [['plain', HOLD], ['tunnel', HOLD_TLS]] as const) {
    const urls: string[] = [];
    let reached = 0;
    const started = Date.now();
    await inBatches(N[route], BATCH, async (i) => {
      const url = `/before-${route}-${i}`;
      urls.push(url);
      const { sock } = await open(route, host);
      sock.write(`${head(route, 'GET', host, url)}\r\n`);
      if (await within(seen(url).arrived, 3000)) reached++;
      sock.destroy();
    });
    t.equal(reached, N[route], `[${route}] every request reached the upstream before the client left (${Date.now() - started} ms)`);
    await assertCleanAfter(t, urls, baseline, `[${route}]`);
  }
});

t.test(`disconnect during the request body: ${N.plain} plain and ${N.tunnel} in tunnels, each upstream request aborted`, async (t) => {
  for (const [route, host] of [['plain', HOLD], ['tunnel', HOLD_TLS]] as const) {
    const urls: string[] = [];
    let reached = 0;
    await inBatches(N[route], BATCH, async (i) => {
      const url = `/body-${route}-${i}`;
      urls.push(url);
      const { sock, raw } = await open(route, host);
      sock.write(`${head(route, 'POST', host, url)}Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(4096)}`);
      if (await within(seen(url).arrived, 3000)) reached++;
      sock.write('y'.repeat(4096));
      // every other one with a RST instead of a FIN
      if (i % 2 === 0) raw.resetAndDestroy();
      else sock.destroy();
    });
    t.equal(reached, N[route], `[${route}] every request head reached the upstream while its body was still coming`);
    t.ok(urls.every((u) => holdRequest(route, u)?.complete === false), `[${route}] no upstream request body was completed`);
    await assertCleanAfter(t, urls, baseline, `[${route}]`);
  }
});
const holdRequest = (route: 'plain' | 'tunnel', url: string) => (route === 'plain' ? holdUp : holdTlsUp).seen.find((r) => r.url === url);

t.test(`disconnect during the TLS handshake inside CONNECT: ${N_HANDSHAKE} times, three ways`, async (t) => {
  const before = { api: holdTlsUp.tcpConnections };
  let established = 0;
  let serverSpoke = 0;
  await inBatches(N_HANDSHAKE, BATCH, async (i) => {
    const raw = await openTunnel(tg.proxyPort, `${HOLD_TLS}:443`, { 'Proxy-Authorization': tg.proxyAuth });
    established++;
    raw.on('error', () => undefined);
    switch (i % 3) {
      case 0: // half a ClientHello, then gone
        raw.write(clientHello.subarray(0, clientHello.length >> 1));
        await sleep(2);
        raw.destroy();
        break;
      case 1: { // the whole ClientHello; gone once the gateway has answered (mid-handshake)
        const answered = new Promise<void>((r) => raw.once('data', () => r()));
        raw.write(clientHello);
        if (await within(answered, 3000)) serverSpoke++;
        raw.destroy();
        break;
      }
      default: // the whole ClientHello, then a RST at once
        raw.write(clientHello);
        raw.resetAndDestroy();
    }
  });
  t.equal(established, N_HANDSHAKE, 'every CONNECT was established');
  t.equal(serverSpoke, Math.floor((N_HANDSHAKE + 1) / 3), 'the gateway answered every full ClientHello it had time to read');
  t.equal(holdTlsUp.tcpConnections, before.api, 'no handshake that broke off reached the upstream');
  await assertGatewayIdle(t, baseline, '[handshake]');
});

t.test(`RST during an SSE stream: ${N.plain} plain and ${N.tunnel} in tunnels, each upstream stream aborted`, async (t) => {
  for (const [route, host] of [['plain', SSE], ['tunnel', SSE_TLS]] as const) {
    const urls: string[] = [];
    let streaming = 0;
    await inBatches(N[route], BATCH, async (i) => {
      const url = `/sse-${route}-${i}`;
      urls.push(url);
      const { sock, raw } = await open(route, host);
      const r = await collect(sock, `${head(route, 'GET', host, url)}\r\n`, { waitMs: 3000, until: (x) => x.includes('data: event 1'), destroyOnTimeout: false });
      if (/^HTTP\/1\.1 200 [\s\S]*data: event 1/.test(r.text)) streaming++;
      raw.resetAndDestroy();
      if (route === 'tunnel') sock.destroy();
    });
    t.equal(streaming, N[route], `[${route}] every stream was flowing when the client reset it`);
    await assertCleanAfter(t, urls, baseline, `[${route}]`);
  }
});

t.test(`RST during a metered SSE stream (${METERED} at once): drained to the final usage within drain_ms and charged`, async (t) => {
  ctl.mode = 'slow';
  const finishedBefore = ctl.finished;
  const body = JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'a long story' }] });
  const started = Date.now();
  let streaming = 0;
  await Promise.all(Array.from({ length: METERED }, async () => {
    const { tls: sock, raw } = await tunnelSockets('api.anthropic.com');
    const r = await collect(sock, `POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      { waitMs: 3000, until: (x) => x.includes('word2'), destroyOnTimeout: false });
    if (/^HTTP\/1\.1 200 /.test(r.text) && !r.text.includes('message_stop')) streaming++;
    raw.resetAndDestroy();
    sock.destroy();
  }));
  t.equal(streaming, METERED, 'every stream was cut before its end');
  type LedgerRow = { state: string; cost_micros: number; estimated: number; output_tokens: number };
  const read = () => db.prepare<[], LedgerRow>("SELECT state, cost_micros, estimated, output_tokens FROM ledger_requests WHERE subject = 'alpha-bot'").all();
  await waitFor(() => read().length >= METERED && read().every((r) => r.state !== 'reserved'), DRAIN_MS + 3000);
  const elapsed = Date.now() - started;
  t.equal(ctl.finished - finishedBefore, METERED, 'every upstream stream was read to its end (drained, not aborted)');
  t.ok(elapsed < DRAIN_MS + 3000, `settled ${elapsed} ms after the first request (drain bound ${DRAIN_MS} ms)`);
  const rows = read();
  t.equal(rows.length, METERED, 'one ledger row per request');
  t.ok(rows.every((r) => r.state === 'settled' && r.estimated === 0 && r.output_tokens === 15 && r.cost_micros > 0), 'each settled with the usage the provider reported');
  await assertGatewayIdle(t, baseline, '[metered]');
});

t.test('the audit row of an exchange its client abandoned says so', async (t) => {
  // forwardHttp (src/proxy/forward-http.ts) records status 499 "client disconnected before the
  // response" or "client disconnected during the response" once the aborted upstream request has
  // failed. The exchange used to be ended (row and log line written) on the response's 'close'
  // event, before that: "allowed", status null (or 200 for a stream), error null. It now waits
  // for the forwarder.
  type Row = { state: string; status: number | null; error: string | null };
  const before = { status: 499, error: /client disconnected before the response/ };
  const during = { status: 200, error: /client disconnected during the response/ };
  for (const [url, want] of [
    ['/before-plain-0', before], ['/before-tunnel-0', before], ['/body-plain-1', before], ['/body-tunnel-0', before],
    ['/sse-plain-0', during], ['/sse-tunnel-0', during],
  ] as const) {
    const row = db.prepare<[string], Row>('SELECT state, status, error FROM audit_requests WHERE path = ?').get(url);
    t.equal(row?.state, 'complete', `[${url}] the row is complete`);
    t.match(row, want, `[${url}] it records the disconnect (status ${row?.status}, error ${JSON.stringify(row?.error)})`);
  }
});

t.test('after all of this: no uncaught error, no error logged, and the gateway still answers', async (t) => {
  t.same(uncaught, [], 'nothing was thrown uncaught (the gateway shares this process)');
  const errors = tg.logs.filter((l) => l['level'] === 'error');
  t.same(errors, [], 'the gateway logged no error');
  const r = await rawSend(tg.proxyPort, `GET http://${SSE}/after HTTP/1.1\r\nHost: ${SSE}\r\n${auth}Connection: close\r\n\r\n`, { waitMs: 3000, until: (x) => x.includes('event 1') });
  t.match(r.text, /^HTTP\/1\.1 200 /, 'a new request is answered');
});
