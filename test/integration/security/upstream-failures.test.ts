// Security case 7.06 and part of 7.07 (../shared/security-cases.md): the upstream refuses, never
// answers, or presents a bad certificate → 502 / 504 naming the upstream and the cause, and a bad
// certificate means not one application byte upstream; a client that goes away mid-response
// aborts its upstream request.
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { collect, hasResponses, parseResponses, rawSend } from '../../helpers/raw-client.ts';
import { API, ECHO, startSecurityFixture } from '../../helpers/security-fixture.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

const FIRST_BYTE_MS = 800;
const DOWN = 'down.allowed.test';
const SILENT = 'silent.allowed.test';
const SILENT_TLS = 'silent-tls.allowed.test';
const UNTRUSTED = 'untrusted.allowed.test';
const WRONG_NAME = 'wrong-name.allowed.test';
const EXPIRED = 'expired.allowed.test';
const SLOW = 'slow.allowed.test';
const SLOW_TLS = 'slow-tls.allowed.test';

const pki = await makeTestCa();
const otherCa = await makeTestCa('Some Other CA');

// A port with nothing listening: bind, note the port, close.
const downPort = await new Promise<number>((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
});

// Accepts, reads, never answers (plain TCP and TLS).
const silentSockets = new Set<net.Socket>();
let silentBytes = 0;
const keep = (s: net.Socket) => { silentSockets.add(s); s.on('data', (c: Buffer) => { silentBytes += c.length; }); s.on('error', () => undefined); };
const silent = net.createServer(keep);
const silentTlsPair = await pki.issue([SILENT_TLS]);
const silentTls = tls.createServer({ cert: silentTlsPair.certPem, key: silentTlsPair.keyPem }, keep);
await Promise.all([silent, silentTls].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))));

const untrusted = await startUpstream({ tls: await otherCa.issue([UNTRUSTED]) });
const wrongName = await startUpstream({ tls: await pki.issue(['somebody-else.test']) });
const expired = await startUpstream({ tls: await pki.issue([EXPIRED], { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) }) });

// Streams a chunk every 50 ms for ~5 s; records whether the response was abandoned.
const closes: Array<{ url: string; finished: boolean }> = [];
const slowHandler: UpstreamHandler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  let n = 0;
  const timer = setInterval(() => {
    res.write(`chunk ${n++}\n`);
    if (n >= 100) { clearInterval(timer); res.end(); }
  }, 50);
  res.once('close', () => { clearInterval(timer); closes.push({ url: req.url ?? '', finished: res.writableFinished }); });
};
const slow = await startUpstream({ handler: slowHandler });
const slowTls = await startUpstream({ tls: await pki.issue([SLOW_TLS]), handler: slowHandler });

const fx = await startSecurityFixture({
  pki,
  upstreams: {
    [DOWN]: downPort,
    [SILENT]: (silent.address() as net.AddressInfo).port,
    [SILENT_TLS]: (silentTls.address() as net.AddressInfo).port,
    [UNTRUSTED]: untrusted.port,
    [WRONG_NAME]: wrongName.port,
    [EXPIRED]: expired.port,
    [SLOW]: slow.port,
    [SLOW_TLS]: slowTls.port,
  },
  gateway: {
    alphaRules: [ECHO, API, DOWN, SILENT, SILENT_TLS, UNTRUSTED, WRONG_NAME, EXPIRED, SLOW, SLOW_TLS].map((h) => `  - { host: ${h}, action: allow }`).join('\n'),
    timeouts: { first_byte_ms: FIRST_BYTE_MS, connect_ms: 1000 },
  },
});
t.teardown(async () => {
  await fx.close();
  for (const s of silentSockets) s.destroy();
  await Promise.all([
    new Promise((r) => silent.close(r)), new Promise((r) => silentTls.close(r)),
    untrusted.close(), wrongName.close(), expired.close(), slow.close(), slowTls.close(),
  ]);
});

const plainGet = (host: string, path: string, scheme = 'http') => `GET ${scheme}://${host}${path} HTTP/1.1\r\nHost: ${host}\r\n${fx.authLine}Connection: close\r\n\r\n`;
const innerGet = (host: string, path: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

async function viaTunnel(host: string, bytes: string, waitMs = 4000): Promise<string> {
  const sock = await fx.intercepted(host);
  const r = await collect(sock, bytes, { waitMs, until: hasResponses(1) });
  sock.destroy();
  return r.text;
}

t.test('connection refused → 502 naming the upstream', async (t) => {
  for (const [name, text] of [
    ['plain', (await rawSend(fx.tg.proxyPort, plainGet(DOWN, '/x'), { waitMs: 4000, until: hasResponses(1) })).text],
    ['tunnel', await viaTunnel(DOWN, innerGet(DOWN, '/x'))],
  ] as const) {
    const res = parseResponses(text)[0];
    t.equal(res?.status, 502, `[${name}] 502`);
    t.equal(res?.headers['x-tollgate-reason'], 'upstream_unavailable', `[${name}] reason`);
    t.match(res?.body ?? '', new RegExp(`${DOWN.replace(/\./g, '\\.')}[\\s\\S]*connection refused`), `[${name}] the body names the upstream and the cause`);
  }
});

t.test(`an upstream that accepts but never answers → 504 after first_byte_ms (${FIRST_BYTE_MS} ms)`, async (t) => {
  for (const [name, run] of [
    ['plain', async () => (await rawSend(fx.tg.proxyPort, plainGet(SILENT, '/hang'), { waitMs: 5000, until: hasResponses(1) })).text],
    ['tunnel', () => viaTunnel(SILENT_TLS, innerGet(SILENT_TLS, '/hang'), 5000)],
  ] as const) {
    const started = Date.now();
    const text = await run();
    const elapsed = Date.now() - started;
    const res = parseResponses(text)[0];
    t.equal(res?.status, 504, `[${name}] 504`);
    t.equal(res?.headers['x-tollgate-reason'], 'upstream_timeout', `[${name}] reason`);
    t.match(res?.body ?? '', /silent(-tls)?\.allowed\.test/, `[${name}] the body names the upstream`);
    t.ok(elapsed >= FIRST_BYTE_MS - 100 && elapsed < FIRST_BYTE_MS + 2000, `[${name}] answered after ${elapsed} ms`);
  }
  t.ok(silentBytes > 0, 'the request did reach the silent upstream (this is a timeout, not a refusal)');
});

t.test('upstream TLS with a bad certificate → 502 upstream_tls_error, zero application bytes upstream', async (t) => {
  for (const [host, up] of [[UNTRUSTED, untrusted], [WRONG_NAME, wrongName], [EXPIRED, expired]] as const) {
    for (const [name, run] of [
      ['tunnel', () => viaTunnel(host, innerGet(host, '/secret?token=x'))],
      ['plain https://', async () => (await rawSend(fx.tg.proxyPort, plainGet(host, '/secret?token=x', 'https'), { waitMs: 4000, until: hasResponses(1) })).text],
    ] as const) {
      const text = await run();
      const res = parseResponses(text)[0];
      t.equal(res?.status, 502, `[${host} ${name}] 502`);
      t.equal(res?.headers['x-tollgate-reason'], 'upstream_tls_error', `[${host} ${name}] upstream_tls_error`);
      t.match(res?.body ?? '', new RegExp(host.replace(/\./g, '\\.')), `[${host} ${name}] the body names the upstream`);
    }
    t.ok(up.tcpConnections > 0, `[${host}] the gateway did try the handshake`);
    t.equal(up.connections, 0, `[${host}] no TLS session was ever established`);
    t.same(up.seen, [], `[${host}] not one request reached it`);
  }
});

t.test('a client that disconnects mid-response aborts the upstream request', async (t) => {
  for (const [name, host, open, bytes] of [
    ['plain', SLOW, () => fx.plain.open(), plainGet(SLOW, '/stream-plain')],
    ['tunnel', SLOW_TLS, () => fx.intercepted(SLOW_TLS), innerGet(SLOW_TLS, '/stream-tunnel')],
  ] as const) {
    const sock = await open();
    const started = Date.now();
    const r = await collect(sock, bytes, { waitMs: 3000, until: (x) => x.includes('chunk 1\n') });
    t.match(r.text, /^HTTP\/1\.1 200 /, `[${name}] streaming started`);
    sock.destroy();
    const url = `/stream-${name}`;
    for (let i = 0; i < 60 && !closes.some((c) => c.url === url); i++) await new Promise((res) => setTimeout(res, 25));
    const c = closes.find((x) => x.url === url);
    t.ok(c, `[${name}] the upstream saw the close (${Date.now() - started} ms after the request)`);
    t.equal(c?.finished, false, `[${name}] before the response had finished (aborted, not drained for ${host})`);
  }
});

t.test('a client that disconnects before the response aborts the upstream request', async (t) => {
  const sock = await fx.plain.open();
  sock.write(plainGet(SILENT, '/gone-early'));
  const before = silentSockets.size;
  for (let i = 0; i < 40 && silentSockets.size === before; i++) await new Promise((res) => setTimeout(res, 25));
  const upstreamSock = [...silentSockets].at(-1);
  sock.destroy();
  const closed = await new Promise<boolean>((resolve) => {
    if (!upstreamSock || upstreamSock.destroyed) { resolve(Boolean(upstreamSock)); return; }
    const timer = setTimeout(() => resolve(false), FIRST_BYTE_MS / 2);
    upstreamSock.once('close', () => { clearTimeout(timer); resolve(true); });
  });
  t.ok(closed, 'the upstream connection was closed well before the first-byte timeout');
});

t.test('after all of this, the gateway still forwards', async (t) => {
  const r = await rawSend(fx.tg.proxyPort, plainGet(ECHO, '/still-ok'), { waitMs: 3000 });
  t.equal(parseResponses(r.text)[0]?.status, 200);
});

t.test('CANARY-CLEAN', async (t) => fx.assertCanaryClean(t));
