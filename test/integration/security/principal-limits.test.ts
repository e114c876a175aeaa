// Security case 8.03 (../shared/security-cases.md), per-agent fairness, through real gateways:
// agent A (alpha-bot) runs into its limits — open tunnels (limits.per_principal.max_tunnels),
// requests in flight (max_concurrent_requests) and request rate (requests_per_second) — and gets
// 429 with Retry-After (tunnel_limit / rate_limited), audited, with nothing forwarded; agent B
// (beta-bot) keeps working meanwhile; a slot comes back when A's tunnel closes or its request ends.
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { waitFor } from '../../helpers/cli-process.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawExchange, rawSend, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { startTestDns } from '../../helpers/dns-server.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startCanary, startUpstream } from '../../helpers/upstream-server.ts';

const ECHO = 'echo.allowed.test'; // plain http
const SECURE = 'secure.allowed.test'; // https, intercepted
const HOLD = 'hold.allowed.test'; // plain http, answers when released
const MAX_TUNNELS = 4;
const MAX_IN_FLIGHT = 3;

const pki = await makeTestCa();
const echo = await startUpstream();
const secure = await startUpstream({ tls: await pki.issue([SECURE]) });
let releaseHeld: () => void = () => undefined;
let held = new Promise<void>((r) => { releaseHeld = r; });
const hold = await startUpstream({ handler: async (_req, res) => { await held; res.writeHead(200, { 'content-type': 'text/plain' }); res.end('released\n'); } });

const files = {
  'policies/beta.yaml': ['team: beta', 'rules:', `  - { host: ${ECHO}, action: allow }`, `  - { host: ${SECURE}, action: allow }`, '  - { host: "*", action: deny }', ''].join('\n'),
};
const upstreams = { [ECHO]: echo.port, [SECURE]: secure.port, [HOLD]: hold.port };
const slots = await startTestGateway({ upstreams, upstreamCaPem: pki.caPem, files, extraYaml: `limits: { per_principal: { max_tunnels: ${MAX_TUNNELS}, max_concurrent_requests: ${MAX_IN_FLIGHT} } }` });
const rated = await startTestGateway({ upstreams, upstreamCaPem: pki.caPem, files, extraYaml: 'limits: { per_principal: { requests_per_second: 0.5, burst: 5 } }' });
// A resolver that answers 300 ms late (a relay in front of the test DNS server), so a client can
// leave while its CONNECT is still in the gateway's stages.
const SLOW_DNS_HOST = 'slow-dns.allowed.test';
const dns = await startTestDns();
dns.records.set(SLOW_DNS_HOST, ['127.0.0.1']);
const relay = dgram.createSocket('udp4');
relay.on('message', (msg, from) => {
  const up = dgram.createSocket('udp4');
  up.on('message', (answer) => { setTimeout(() => { relay.send(answer, from.port, from.address); up.close(); }, 300); });
  up.send(msg, dns.port, '127.0.0.1');
});
await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
// Where an upgrade to SLOW_DNS_HOST would be dialled: any accept here means a client that had left was forwarded.
const wsCanary = await startCanary();
const flaky = await startTestGateway({
  alphaRules: [`  - { host: ${SLOW_DNS_HOST}, action: allow, ports: [443, ${wsCanary.port}] }`, `  - { host: 127.0.0.1, action: allow, ports: [443, ${wsCanary.port}] }`].join('\n'),
  extraYaml: `dns: { servers: ["127.0.0.1:${relay.address().port}"], timeout_ms: 2000 }\nlimits: { per_principal: { max_tunnels: 2 } }`,
});
t.teardown(async () => {
  releaseHeld();
  relay.close();
  await Promise.all([slots.stop(), rated.stop(), flaky.stop(), dns.close(), wsCanary.close()]);
  await Promise.all([echo.close(), secure.close(), hold.close()]);
});

const basic = (team: string, token: string) => `Basic ${Buffer.from(`${team}:${token}`).toString('base64')}`;
const authA = (tg: TestGateway) => tg.proxyAuth;
const authB = (tg: TestGateway) => basic('beta', tg.tokenB);

/** A plain GET through the proxy on a fresh connection. */
async function get(tg: TestGateway, auth: string, host: string, p: string) {
  const r = await rawSend(tg.proxyPort, `GET http://${host}${p} HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${auth}\r\nConnection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
  return parseResponses(r.text)[0];
}

/** An intercepted tunnel to SECURE, handshake done. */
async function tunnel(tg: TestGateway, auth: string) {
  const raw = await openTunnel(tg.proxyPort, `${SECURE}:443`, { 'Proxy-Authorization': auth });
  return tlsOverTunnel(raw, tg.caPem, SECURE);
}

interface Row { reason: string; status: number; decision: string; agent: string | null; host: string }
function rows(tg: TestGateway, where: string): Row[] {
  const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));
  try {
    return db.prepare(`SELECT reason, status, decision, agent, host FROM audit_requests WHERE ${where}`).all() as Row[];
  } finally {
    db.close();
  }
}

t.test(`tunnels: A holds ${MAX_TUNNELS} open, the next CONNECT is a 429 tunnel_limit; B is unaffected; closing one frees a slot`, async (t) => {
  const open = [];
  for (let i = 0; i < MAX_TUNNELS; i++) open.push(await tunnel(slots, authA(slots)));
  const secureConns = secure.connections;
  const refused = await rawExchange(slots.proxyPort, `CONNECT ${SECURE}:443 HTTP/1.1\r\nHost: ${SECURE}:443\r\nProxy-Authorization: ${authA(slots)}\r\n\r\n`, { waitMs: 3000 });
  const res = parseResponses(refused.text)[0];
  t.equal(res?.status, 429, 'the next CONNECT: 429');
  t.equal(res?.headers['x-tollgate-reason'], 'tunnel_limit');
  t.equal(res?.headers['retry-after'], '1', 'Retry-After: 1');
  t.match(res?.body, /Agent alpha-bot has 4 tunnels open, the most allowed \(limits\.per_principal\.max_tunnels\)/, 'the body names the agent and the setting');
  t.ok(refused.closed, 'and the connection is closed');
  t.equal(secure.connections, secureConns, 'the upstream saw no new connection');

  // B opens a tunnel and sends a request through it meanwhile; and A's open tunnels still work.
  const b = await tunnel(slots, authB(slots));
  const viaB = await collect(b, `GET /from-b HTTP/1.1\r\nHost: ${SECURE}\r\nConnection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
  t.equal(parseResponses(viaB.text)[0]?.status, 200, 'B: a tunnel and a request while A is at its limit');
  b.destroy();
  const viaA = await collect(open[0]!, `GET /in-open-tunnel HTTP/1.1\r\nHost: ${SECURE}\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
  t.equal(parseResponses(viaA.text)[0]?.status, 200, 'A: requests inside its open tunnels go on');

  open.pop()?.destroy();
  let again: Awaited<ReturnType<typeof tunnel>> | undefined;
  await waitFor(() => false, 100);
  for (let i = 0; i < 20 && again === undefined; i++) {
    again = await tunnel(slots, authA(slots)).catch(async () => { await waitFor(() => false, 100); return undefined; });
  }
  t.ok(again, 'a closed tunnel gives its slot back');
  again?.destroy();
  for (const s of open) s.destroy();
  t.ok(await waitFor(() => rows(slots, `reason = 'tunnel_limit' AND state = 'complete'`).length >= 1, 3000), 'the refusal is audited');
  t.match(rows(slots, `reason = 'tunnel_limit'`)[0], { status: 429, decision: 'deny', agent: 'alpha-bot', host: SECURE });
});

t.test(`requests in flight: A's ${MAX_IN_FLIGHT + 1}th concurrent request is a 429 rate_limited; B is unaffected; slots come back`, async (t) => {
  const before = hold.seen.length;
  const pending = Array.from({ length: MAX_IN_FLIGHT }, (_, i) => get(slots, authA(slots), HOLD, `/held-${i}`));
  t.ok(await waitFor(() => hold.seen.length - before === MAX_IN_FLIGHT, 5000), `${MAX_IN_FLIGHT} requests are held at the upstream`);
  const extra = await get(slots, authA(slots), HOLD, '/one-too-many');
  t.equal(extra?.status, 429, 'one more: 429');
  t.equal(extra?.headers['x-tollgate-reason'], 'rate_limited');
  t.equal(extra?.headers['retry-after'], '1');
  t.match(extra?.body, /Agent alpha-bot has 3 requests in flight/);
  t.notOk(hold.seen.some((s) => s.url === '/one-too-many'), 'the refused request never reached the upstream');
  t.equal((await get(slots, authB(slots), ECHO, '/b-meanwhile'))?.status, 200, 'B is answered meanwhile');
  releaseHeld();
  const done = await Promise.all(pending);
  t.same(done.map((r) => r?.status), [200, 200, 200], 'the held requests complete');
  held = new Promise<void>((r) => { releaseHeld = r; });
  releaseHeld();
  t.equal((await get(slots, authA(slots), ECHO, '/after'))?.status, 200, 'and A may send again');
});

t.test('h2c upgrade requests (answered as plain HTTP/1.1, then closed) give their slot back', async (t) => {
  for (let i = 0; i < MAX_IN_FLIGHT + 2; i++) {
    const r = await rawSend(slots.proxyPort, `GET http://${ECHO}/h2c-${i} HTTP/1.1\r\nHost: ${ECHO}\r\nProxy-Authorization: ${authA(slots)}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`, { waitMs: 5000 });
    t.equal(parseResponses(r.text)[0]?.status, 200, `h2c request ${i}: answered as HTTP/1.1`);
  }
  t.equal((await get(slots, authA(slots), ECHO, '/after-h2c'))?.status, 200, `after ${MAX_IN_FLIGHT + 2} of them A is still admitted`);
  t.ok(await waitFor(() => rows(slots, "path LIKE '/h2c-%' AND state = 'complete'").length === MAX_IN_FLIGHT + 2, 3000), 'and each has its completed audit row');
  // clients that keep their side open after the answer (half-open) still give the slot back
  const halfOpen = Array.from({ length: MAX_IN_FLIGHT }, () => net.connect({ host: '127.0.0.1', port: slots.proxyPort, allowHalfOpen: true }));
  for (const [i, s] of halfOpen.entries()) {
    s.on('error', () => undefined);
    const r = await collect(s, `GET http://${ECHO}/h2c-half-${i} HTTP/1.1\r\nHost: ${ECHO}\r\nProxy-Authorization: ${authA(slots)}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`, { waitMs: 5000, until: hasResponses(1), destroyOnTimeout: false });
    t.equal(parseResponses(r.text)[0]?.status, 200, `half-open h2c client ${i}: answered`);
  }
  t.ok(await waitFor(() => halfOpen.every((s) => s.destroyed || s.readableEnded), 5000), 'the gateway ended each connection');
  // within ~2 s of its answer (the gateway's close grace), well before idle_ms (5 s) would reap it
  let after: number | undefined;
  const until = Date.now() + 3500;
  for (let i = 0; Date.now() < until && after !== 200; i++) {
    after = (await get(slots, authA(slots), ECHO, `/after-half-open-${i}`))?.status;
    if (after !== 200) await waitFor(() => false, 100);
  }
  t.equal(after, 200, 'A is admitted again within 3.5 s while those clients still hold their side open');
  for (const s of halfOpen) s.destroy();
});

t.test('a client that resets its CONNECT while the gateway is still resolving gives its tunnel slot back', async (t) => {
  for (let i = 0; i < 2; i++) {
    const s = net.connect({ host: '127.0.0.1', port: flaky.proxyPort });
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`CONNECT ${SLOW_DNS_HOST}:443 HTTP/1.1\r\nHost: ${SLOW_DNS_HOST}:443\r\nProxy-Authorization: ${authA(flaky)}\r\n\r\n`);
    await waitFor(() => false, 50);
    s.resetAndDestroy();
  }
  let tunnels = NaN;
  for (let i = 0; i < 40 && tunnels !== 0; i++) {
    await waitFor(() => false, 100);
    tunnels = Number(/^tollgate_proxy_active_exchanges (\d+)/m.exec(await (await fetch(`${flaky.adminUrl}/metrics`)).text())?.[1]);
  }
  t.equal(tunnels, 0, 'both exchanges ended');
  const third = await openTunnel(flaky.proxyPort, `${SLOW_DNS_HOST}:443`, { 'Proxy-Authorization': authA(flaky) }).then((s) => { s.destroy(); return 'opened'; }, (e: Error) => e.message);
  t.equal(third, 'opened', 'a new tunnel opens (max_tunnels 2: neither reset one still holds a slot)');
  t.ok(await waitFor(() => rows(flaky, `host = '${SLOW_DNS_HOST}' AND state = 'complete'`).length >= 2, 3000), 'the reset CONNECTs have completed audit rows');
  t.same(rows(flaky, `host = '${SLOW_DNS_HOST}' AND state = 'complete' AND status = 499`).length, 2, 'with status 499 (the client went away)');
});

t.test('a WebSocket upgrade whose client leaves while the gateway is still resolving is never forwarded', async (t) => {
  for (let i = 0; i < 3; i++) {
    const s = net.connect({ host: '127.0.0.1', port: flaky.proxyPort });
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    const authority = `${SLOW_DNS_HOST}:${wsCanary.port}`;
    s.write(`GET http://${authority}/ws-${i} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${authA(flaky)}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await waitFor(() => false, 50);
    s.resetAndDestroy();
  }
  await waitFor(() => false, 800); // past the 300 ms DNS answer: a forward would have been dialled by now
  t.equal(wsCanary.accepts(), 0, 'the upstream saw no connection');
  t.ok(await waitFor(() => rows(flaky, "path LIKE '/ws-%' AND state = 'complete' AND status = 499").length === 3, 3000), 'three completed rows, status 499');
  const third = await openTunnel(flaky.proxyPort, `${SLOW_DNS_HOST}:443`, { 'Proxy-Authorization': authA(flaky) }).then((s) => { s.destroy(); return 'opened'; }, (e: Error) => e.message);
  t.equal(third, 'opened', 'and their tunnel slots came back');
});

t.test('rate: past its burst (5) at 0.5 requests/s, A gets 429 with Retry-After; B is unaffected; the bucket refills', async (t) => {
  const statuses: number[] = [];
  let retryAfter: string | undefined;
  for (let i = 0; i < 10; i++) {
    const r = await get(rated, authA(rated), ECHO, `/rate-${i}`);
    statuses.push(r?.status ?? 0);
    if (r?.status === 429) retryAfter ??= r.headers['retry-after'];
  }
  t.same(statuses.slice(0, 5), [200, 200, 200, 200, 200], 'the burst passes');
  t.ok(statuses.filter((s) => s === 429).length >= 3, `then 429s (${statuses.join(' ')})`);
  t.ok(statuses.every((s) => s === 200 || s === 429), 'nothing else');
  t.equal(retryAfter, '2', 'Retry-After: 2 (a token comes back within two seconds)');
  const refused = statuses.flatMap((s, i) => (s === 429 ? [`/rate-${i}`] : []));
  t.notOk(echo.seen.some((s) => refused.includes(s.url)), 'refused requests never reached the upstream');
  for (let i = 0; i < 5; i++) t.equal((await get(rated, authB(rated), ECHO, `/b-rate-${i}`))?.status, 200, `B request ${i}: 200`);
  await waitFor(() => false, 2100);
  t.equal((await get(rated, authA(rated), ECHO, '/rate-later'))?.status, 200, 'two seconds later A is admitted again');
});
