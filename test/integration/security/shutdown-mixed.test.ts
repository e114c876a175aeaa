// Security case 7.08 (../shared/security-cases.md): graceful shutdown of a real `tollgate serve`
// process on SIGTERM with a mixed load in flight — six plain requests and one inside an
// intercepted tunnel, a metered streaming call whose provider answers only after the signal,
// CONNECT tunnels (intercepted and pass-through, idle and active), SSE streams and WebSockets
// (plain path and intercepted). Expect: the listener closes at once; in-flight requests finish (and
// are told to close their connection); streams and tunnels keep flowing until the drain deadline
// (timeouts.shutdown_ms) and are closed then; the process exits 0 soon after the deadline;
// tollgate.db then holds every exchange completed (no open row), the chain verifies, and the
// metered call is settled with its usage. A second signal during the drain forces the exit at once.
//
// The gateways run as child processes started like bin/tollgate (tsx register, then
// src/cli/main.ts `serve`), loaded ahead and parked until they are told to start: loading the
// sources costs seconds.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { openDatabase } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { sleep, until } from '../../helpers/cli-process.ts';
import { fakeAnthropic, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { collect, hasResponses, openTunnel, parseResponses, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { loadParkedGateway, prepareGatewayDir, startParked, type ParkedGateway } from '../../helpers/parked-gateway.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { clientFrame, startWebSocketUpstream } from '../../helpers/websocket-upstream.ts';

const DEADLINE = 2500; // timeouts.shutdown_ms of the first gateway
const SLOW_MS = 700; // what an in-flight request still needs when SIGTERM arrives (at most)
const ECHO = 'echo.allowed.test';
const API = 'api.allowed.test';
const WS = 'ws.allowed.test';
const WSS = 'wss.allowed.test';
const DIRECT = 'direct.allowed.test';
const ANT = 'api.anthropic.com';

// --- upstreams -----------------------------------------------------------------------------------
/** /slow/*: answers after SLOW_MS; /sse/*: an event every 100 ms until the connection closes (30 s at most). */
const handler = (req: IncomingMessage, res: ServerResponse) => {
  if (req.url?.startsWith('/sse/')) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let n = 0;
    const timer = setInterval(() => {
      if (res.destroyed || n++ > 300) { clearInterval(timer); res.end(); return; }
      res.write(`data: ${n}\n\n`);
    }, 100);
    res.once('close', () => clearInterval(timer));
    return;
  }
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`done ${req.url}`);
  }, req.url?.startsWith('/slow/') ? SLOW_MS : 0);
};
const pki = await makeTestCa();
const echo = await startUpstream({ handler });
const api = await startUpstream({ tls: await pki.issue([API]), handler });
const ws = await startWebSocketUpstream();
const wss = await startWebSocketUpstream({ tls: await pki.issue([WSS]) });
/** The provider holds its answer until the test releases it (after SIGTERM). */
let releaseProvider: () => void = () => undefined;
const ctl: FakeLlmControl = { mode: 'delay', hold: new Promise<void>((r) => { releaseProvider = r; }), sent: 0, finished: 0 };
const ant = await startUpstream({ tls: await pki.issue([ANT]), handler: fakeAnthropic(ctl) });
/** The pass-through origin: a TLS echo (pass-through tunnels carry TLS only, with the CONNECT host as SNI). */
const directSockets = new Set<net.Socket>();
const directPair = await pki.issue([DIRECT]);
const direct = tls.createServer({ cert: directPair.certPem, key: directPair.keyPem }, (s) => { directSockets.add(s); s.on('error', () => undefined); s.once('close', () => directSockets.delete(s)); s.pipe(s); });
await new Promise<void>((r) => direct.listen(0, '127.0.0.1', () => r()));
const directPort = (direct.address() as net.AddressInfo).port;

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-shutdown-mixed-'));
t.teardown(async () => {
  for (const s of directSockets) s.destroy();
  await Promise.all([echo.close(), api.close(), ws.close(), wss.close(), ant.close(), new Promise((r) => direct.close(r))]);
  rmSync(dir, { recursive: true, force: true });
});

// --- the gateways' directory (one data dir; two configs that differ in the drain deadline) --------
const files: Record<string, string> = {
  'org.yaml': 'organization: T\nteams:\n  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }\nagents:\n  alpha-bot: { name: Bot, team: alpha }\n',
  'policies/alpha.yaml': [
    'team: alpha',
    'rules:',
    ...[ECHO, API, WS, WSS, ANT].map((h) => `  - { host: ${h}, action: allow }`),
    `  - { host: ${DIRECT}, action: direct }`,
    '  - { host: "*", action: deny }',
    'credentials:',
    `  - { host: ${ANT}, header: { name: x-api-key, secret: anthropic-key } }`,
    '',
  ].join('\n'),
  'secrets/anthropic-key': 'CANARY_ANT_shutdown\n',
  'upstream-ca.pem': pki.caPem,
  'prices.yaml': 'as_of: "2026-01-01"\nsources: [test]\nproviders:\n  anthropic:\n    models:\n      claude-haiku-4-5: { input: 1, cache_write: 1.25, cache_read: 0.1, output: 5, max_output_tokens: 64000 }\n',
};
const yaml = (shutdownMs: number) => [
  'listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }',
  'data_dir: ./data',
  'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
  'upstreams:',
  `  ${ECHO}: 127.0.0.1:${echo.port}`,
  `  ${API}: 127.0.0.1:${api.port}`,
  `  ${WS}: 127.0.0.1:${ws.port}`,
  `  ${WSS}: 127.0.0.1:${wss.port}`,
  `  ${ANT}: 127.0.0.1:${ant.port}`,
  `  ${DIRECT}: 127.0.0.1:${directPort}`,
  'tls: { upstream_ca: [./upstream-ca.pem] }',
  `timeouts: { shutdown_ms: ${shutdownMs}, idle_ms: 30000 }`,
  'log: { level: info }',
  '',
].join('\n');
files['drain.yaml'] = yaml(DEADLINE);
files['long-drain.yaml'] = yaml(30_000);
const { dbFile, token, auth: authValue } = await prepareGatewayDir(dir, files);
const authLine = `Proxy-Authorization: ${authValue}\r\n`;

// --- gateway processes ---------------------------------------------------------------------------
const gateways: ParkedGateway[] = [];
const start = startParked;
t.teardown(() => { for (const g of gateways) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL'); });
const drainGw = loadParkedGateway(path.join(dir, 'drain.yaml'));
gateways.push(drainGw);
/** Loaded once the first is (the two would only compete for the CPU), while the drain runs. */
const forcedGwLoaded = drainGw.warm.then(() => {
  const g = loadParkedGateway(path.join(dir, 'long-drain.yaml'));
  gateways.push(g);
  return g;
});
forcedGwLoaded.catch(() => undefined);

// --- client side ---------------------------------------------------------------------------------
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const wsHeaders = `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`;

/** A connection the test watches: when data last arrived, when it closed. */
interface Watched { name: string; sock: net.Socket; lastData: number; closedAt: number | undefined; text: () => string }
function watch(name: string, sock: net.Socket): Watched {
  const chunks: Buffer[] = [];
  const w: Watched = { name, sock, lastData: 0, closedAt: undefined, text: () => Buffer.concat(chunks).toString('latin1') };
  sock.on('data', (c: Buffer) => { chunks.push(c); w.lastData = Date.now(); });
  sock.on('error', () => undefined);
  sock.once('close', () => { w.closedAt = Date.now(); });
  return w;
}

function connectPlain(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

async function intercepted(port: number, caPem: string, host: string): Promise<tls.TLSSocket> {
  return tlsOverTunnel(await openTunnel(port, `${host}:443`, { 'Proxy-Authorization': authValue }), caPem, host);
}

/** A pass-through tunnel with TLS to the echo origin established through it. */
async function passThrough(port: number): Promise<tls.TLSSocket> {
  return tlsOverTunnel(await openTunnel(port, `${DIRECT}:443`, { 'Proxy-Authorization': authValue }), pki.caPem, DIRECT);
}

/** Sends an upgrade head and waits for the 101. */
async function upgrade(sock: net.Socket, head: string): Promise<string> {
  const r = await collect(sock, head, { waitMs: 3000, until: (x) => x.includes('\r\n\r\n'), destroyOnTimeout: false });
  return /^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1] ?? r.text.slice(0, 40);
}

interface AuditRow { request_id: string; state: string; kind: string; via: string; method: string; host: string; path: string | null; decision: string; status: number | null; error: string | null; cost_micros: number | null }

// --- the drain -----------------------------------------------------------------------------------
const drained: { rows?: AuditRow[]; sigterm?: number } = {};

t.test('SIGTERM with requests, streams, tunnels and WebSockets in flight: drain, deadline, exit 0', async (t) => {
  const t0 = Date.now();
  await drainGw.warm;
  const t1 = Date.now();
  const port = await start(drainGw);
  t.comment(`loaded ${t1 - t0} ms after the test began, listening ${Date.now() - t1} ms later`);
  const gwCa = readFileSync(path.join(dir, 'certs/ca.pem'), 'utf8');

  // Streams and tunnels, opened first
  const ssePlain = watch('SSE (plain)', await connectPlain(port));
  ssePlain.sock.write(`GET http://${ECHO}/sse/plain HTTP/1.1\r\nHost: ${ECHO}\r\n${authLine}\r\n`);
  const sseTunnel = watch('SSE (intercepted)', await intercepted(port, gwCa, API));
  sseTunnel.sock.write(`GET /sse/tunnel HTTP/1.1\r\nHost: ${API}\r\n\r\n`);
  const wsPlainSock = await connectPlain(port);
  t.equal(await upgrade(wsPlainSock, `GET http://${WS}/ws HTTP/1.1\r\nHost: ${WS}\r\n${authLine}${wsHeaders}\r\n`), '101', 'WebSocket on the plain path: 101');
  const wsPlain = watch('WebSocket (plain)', wsPlainSock);
  const wssSock = await intercepted(port, gwCa, WSS);
  t.equal(await upgrade(wssSock, `GET /chat HTTP/1.1\r\nHost: ${WSS}\r\n${wsHeaders}\r\n`), '101', 'WebSocket in an intercepted tunnel: 101');
  const wsTunnel = watch('WebSocket (intercepted)', wssSock);
  const directActive = watch('pass-through tunnel (active)', await passThrough(port));
  const directIdle = watch('pass-through tunnel (idle)', await passThrough(port));
  const idleIntercepted = [watch('intercepted tunnel (idle) 1', await intercepted(port, gwCa, API)), watch('intercepted tunnel (idle) 2', await intercepted(port, gwCa, API))];
  // the active ones keep sending: a frame on each WebSocket, bytes through the pass-through tunnel
  let n = 0;
  const pump = setInterval(() => {
    n++;
    for (const w of [wsPlain, wsTunnel]) if (!w.sock.destroyed) w.sock.write(clientFrame(`tick ${n}`));
    if (!directActive.sock.destroyed) directActive.sock.write(`tick ${n}\n`);
  }, 100);
  t.teardown(() => clearInterval(pump));
  const streams = [ssePlain, sseTunnel, wsPlain, wsTunnel, directActive];
  await until('every stream to flow', () => streams.every((w) => w.lastData > 0), 5000).catch((err: Error) => {
    throw new Error(`${err.message}: ${streams.filter((w) => w.lastData === 0).map((w) => w.name).join(', ')}`);
  });

  // Requests in flight: six plain, one inside an intercepted tunnel, one metered stream
  const slowPlain = await Promise.all(Array.from({ length: 6 }, () => connectPlain(port)));
  const slowAnswers = slowPlain.map((s, i) => collect(s, `GET http://${ECHO}/slow/${i} HTTP/1.1\r\nHost: ${ECHO}\r\n${authLine}\r\n`, { waitMs: 6000, until: hasResponses(1), destroyOnTimeout: false }));
  const slowTunnelSock = await intercepted(port, gwCa, API);
  const slowTunnelAnswer = collect(slowTunnelSock, `GET /slow/tunnel HTTP/1.1\r\nHost: ${API}\r\n\r\n`, { waitMs: 6000, until: hasResponses(1), destroyOnTimeout: false });
  const dispatcher = new ProxyAgent({ uri: `http://alpha:${token}@127.0.0.1:${port}`, requestTls: { ca: gwCa } });
  t.teardown(() => dispatcher.destroy());
  const metered = request(`https://${ANT}/v1/messages`, {
    dispatcher, method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'count' }] }),
  }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }), (e: Error) => ({ status: 0, body: e.message }));
  await until('the requests to reach their upstreams', () => echo.seen.filter((s) => s.url.startsWith('/slow/')).length === 6 && api.seen.some((s) => s.url === '/slow/tunnel') && ant.seen.length === 1, 5000);

  // SIGTERM
  const sigterm = Date.now();
  t.comment(`load in place ${sigterm - t0} ms after the test began`);
  drained.sigterm = sigterm;
  drainGw.child.kill('SIGTERM');
  await sleep(150);
  t.not(await connectResult(port), 'connected', `the listener is closed at once (${Date.now() - sigterm} ms after SIGTERM)`);
  releaseProvider(); // the metered call gets its answer only now, during the drain

  // in-flight requests finish
  const answers = (await Promise.all(slowAnswers)).map((a) => parseResponses(a.text)[0]);
  t.same(answers.map((a) => a?.status), [200, 200, 200, 200, 200, 200], 'the six in-flight plain requests are answered 200');
  t.same(answers.map((a) => a?.body), [0, 1, 2, 3, 4, 5].map((i) => `done /slow/${i}`), 'with their whole bodies');
  t.same(answers.map((a) => a?.headers['connection']), Array(6).fill('close'), 'each told to close its connection');
  const inTunnel = parseResponses((await slowTunnelAnswer).text)[0];
  t.equal(inTunnel?.status, 200, 'the in-flight request inside an intercepted tunnel is answered 200');
  t.equal(inTunnel?.body, 'done /slow/tunnel');
  const m = await metered;
  t.equal(m.status, 200, 'the metered stream in flight is answered');
  t.ok(m.body.includes('message_stop'), 'and streamed to its end');

  // streams and active tunnels flow until the deadline, then are closed
  const exit = await drainGw.exited;
  clearInterval(pump);
  await until('every watched connection to close', () => [...streams, directIdle, ...idleIntercepted].every((w) => w.closedAt !== undefined), 3000).catch(() => undefined);
  for (const w of streams) {
    t.ok(w.lastData >= sigterm + DEADLINE - 600, `${w.name}: data still flowed ${w.lastData - sigterm} ms after SIGTERM (deadline ${DEADLINE} ms)`);
    t.ok(w.closedAt !== undefined && w.closedAt >= sigterm + DEADLINE - 300 && w.closedAt <= sigterm + DEADLINE + 1500, `${w.name}: closed ${w.closedAt === undefined ? 'never' : `${w.closedAt - sigterm} ms`} after SIGTERM: at the deadline`);
  }
  t.ok(directIdle.closedAt !== undefined && directIdle.closedAt >= sigterm + DEADLINE - 300 && directIdle.closedAt <= sigterm + DEADLINE + 1500, `${directIdle.name}: closed ${directIdle.closedAt === undefined ? 'never' : `${directIdle.closedAt - sigterm} ms`} after SIGTERM: at the deadline`);
  for (const w of idleIntercepted) {
    // no request in flight: closed like an idle keep-alive connection (at once), at the deadline at the latest
    t.ok(w.closedAt !== undefined && w.closedAt <= sigterm + DEADLINE + 1500, `${w.name}: closed ${w.closedAt === undefined ? 'never' : `${w.closedAt - sigterm} ms`} after SIGTERM`);
  }
  t.ok(sseTunnel.text().includes('data: '), 'the intercepted SSE stream carried events');

  // the process
  t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'the gateway exits 0');
  t.ok(exit.at - sigterm >= DEADLINE - 300, `it waited for the drain deadline (${exit.at - sigterm} ms)`);
  t.ok(exit.at - sigterm <= DEADLINE + 2500, `and exited ${exit.at - sigterm} ms after SIGTERM (deadline ${DEADLINE} ms + slack)`);
  t.ok(drainGw.logs.some((l) => l['msg'] === 'stopped'), 'it logged "stopped"');

  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  drained.rows = db.prepare<[], AuditRow>('SELECT request_id, state, kind, via, method, host, path, decision, status, error, cost_micros FROM audit_requests').all();
});

t.test('after the drain: every exchange has a completed row, the chain verifies, the metered call is settled', async (t) => {
  const rows = drained.rows ?? [];
  t.ok(rows.length > 0, `${rows.length} rows`);
  t.same(rows.filter((r) => r.state !== 'complete').map((r) => `${r.kind} ${r.host}${r.path ?? ''}`), [], 'no row is left open');
  const one = (what: string, pred: (r: AuditRow) => boolean) => {
    const found = rows.filter(pred);
    t.equal(found.length, 1, `one row for ${what}`);
    return found[0];
  };
  for (let i = 0; i < 6; i++) t.match(one(`/slow/${i}`, (r) => r.path === `/slow/${i}`), { kind: 'request', via: 'plain', decision: 'allow', status: 200 });
  t.match(one('/slow/tunnel', (r) => r.path === '/slow/tunnel'), { kind: 'request', via: 'intercepted', decision: 'allow', status: 200 });
  t.match(one('the plain SSE stream', (r) => r.path === '/sse/plain'), { kind: 'request', via: 'plain', state: 'complete' });
  t.match(one('the intercepted SSE stream', (r) => r.path === '/sse/tunnel'), { kind: 'request', via: 'intercepted', state: 'complete' });
  t.match(one('the plain WebSocket', (r) => r.path === '/ws'), { kind: 'upgrade', via: 'plain', status: 101 });
  t.match(one('the intercepted WebSocket', (r) => r.path === '/chat'), { kind: 'upgrade', via: 'intercepted', status: 101 });
  const tunnels = rows.filter((r) => r.kind === 'tunnel');
  t.equal(tunnels.filter((r) => r.host === DIRECT && r.decision === 'direct').length, 2, 'two pass-through tunnel rows');
  // API: SSE, 2 idle, the slow request; WSS; ANT
  t.equal(tunnels.filter((r) => r.host === API).length, 4, 'four intercepted tunnel rows to the API');
  t.equal(tunnels.filter((r) => r.host === WSS).length, 1, 'one to the WebSocket origin');
  t.equal(tunnels.filter((r) => r.host === ANT).length, 1, 'one to the provider');
  const call = one('the metered call', (r) => r.path === '/v1/messages');
  t.match(call, { via: 'intercepted', status: 200 }, 'the metered call completed');
  t.ok((call?.cost_micros ?? 0) > 0, `its cost is on the row (${String(call?.cost_micros)} µ$)`);

  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check');
  t.match(verifyAuditStore(db), { ok: true, openRows: 0 }, 'both chains verify');
  const ledger = db.prepare('SELECT id, state, cost_micros, estimated FROM ledger_requests').all() as Array<{ id: string; state: string; cost_micros: number; estimated: number }>;
  t.equal(ledger.length, 1, 'one ledger row');
  t.match(ledger[0], { id: call?.request_id, state: 'settled', cost_micros: 100 * 1 + 1000 * 0.1 + 200 * 1.25 + 15 * 5, estimated: 0 }, 'the metered call is settled with its usage');
});

t.test('a second signal during the drain forces the exit', async (t) => {
  const forcedGw = await forcedGwLoaded;
  const port = await start(forcedGw);
  const tunnel = watch('pass-through tunnel', await passThrough(port));
  tunnel.sock.write('hello\n');
  await until('the tunnel to echo', () => tunnel.lastData > 0, 3000);
  forcedGw.child.kill('SIGTERM');
  await sleep(300);
  t.not(await connectResult(port), 'connected', 'the first SIGTERM closed the listener');
  t.equal(forcedGw.child.exitCode, null, 'and the gateway drains (deadline 30 s): still running');
  t.equal(tunnel.closedAt, undefined, 'the open tunnel gets the deadline');
  const second = Date.now();
  forcedGw.child.kill('SIGTERM');
  const exit = await Promise.race([forcedGw.exited, sleep(5000).then(() => undefined)]);
  t.ok(exit, 'the second SIGTERM ends the process');
  t.ok(exit && exit.at - second < 1500, `at once (${exit ? exit.at - second : '>5000'} ms)`);
  t.equal(exit?.code, 1, 'exit code 1: the drain was cut short');
  t.ok(forcedGw.logs.some((l) => l['msg'] === 'second signal: exiting now'), 'it logged why');
  await until('the tunnel to close', () => tunnel.closedAt !== undefined, 2000).catch(() => undefined);
  t.ok(tunnel.closedAt !== undefined, 'the tunnel is closed with the process');
});
