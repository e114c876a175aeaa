// Security case 8.04 (../shared/security-cases.md), idle tunnel reaping, scaled for CI: with
// timeouts.idle_ms at 1 s, 60 idle intercepted tunnels (CONNECT + TLS handshake, one request, then
// silence), 60 idle pass-through (`direct`) tunnels (CONNECT + a TLS session with the upstream, then
// silence) and 30 CONNECTs that never start their handshake are all closed by the gateway within
// idle_ms (+ slack); the open-connection and tunnel gauges and this process's descriptors return to
// their baseline; the agent's tunnel slots (limits.per_principal.max_tunnels, set to exactly the
// number of tunnels opened) come back, so it can open as many again.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { waitFor } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const IDLE_MS = 1000;
const SLACK_MS = 2500;
const INTERCEPTED = 60;
const DIRECT = 60;
const SILENT = 30;
const TOTAL = INTERCEPTED + DIRECT + SILENT;
const SECURE = 'secure.allowed.test';
const PASS = 'pass.allowed.test';

const pki = await makeTestCa();
const secure = await startUpstream({ tls: await pki.issue([SECURE]) });
const pass = await startUpstream({ tls: await pki.issue([PASS]) });
const tg = await startTestGateway({
  upstreams: { [SECURE]: secure.port, [PASS]: pass.port },
  upstreamCaPem: pki.caPem,
  alphaRules: [`  - { host: ${SECURE}, action: allow }`, `  - { host: ${PASS}, action: direct }`].join('\n'),
  timeouts: { idle_ms: IDLE_MS, headers_ms: 60_000 },
  extraYaml: `limits: { per_principal: { max_tunnels: ${TOTAL} } }`,
});
t.teardown(async () => {
  await tg.stop();
  await Promise.all([secure.close(), pass.close()]);
});

const fds = () => readdirSync('/proc/self/fd').length;
async function gauge(name: string): Promise<number> {
  const text = await (await fetch(`${tg.adminUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

interface Opened { socket: net.Socket; openedAt: number; closedAt?: number }
function watch(socket: net.Socket, openedAt: number): Opened {
  const o: Opened = { socket, openedAt };
  socket.on('error', () => undefined);
  socket.once('close', () => { o.closedAt = Date.now(); });
  return o;
}

async function openAll(): Promise<Opened[]> {
  const out: Opened[] = [];
  const auth = { 'Proxy-Authorization': tg.proxyAuth };
  for (let i = 0; i < INTERCEPTED; i++) {
    const s = await tlsOverTunnel(await openTunnel(tg.proxyPort, `${SECURE}:443`, auth), tg.caPem, SECURE);
    const r = await collect(s, `GET /idle-${i} HTTP/1.1\r\nHost: ${SECURE}\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
    if (parseResponses(r.text)[0]?.status !== 200) throw new Error(`intercepted tunnel ${i}: no 200`);
    out.push(watch(s, Date.now()));
  }
  for (let i = 0; i < DIRECT; i++) {
    const raw = await openTunnel(tg.proxyPort, `${PASS}:443`, auth);
    const s = tls.connect({ socket: raw, servername: PASS, ca: pki.caPem, ALPNProtocols: ['http/1.1'] });
    await new Promise<void>((resolve, reject) => { s.once('secureConnect', () => resolve()); s.once('error', reject); });
    out.push(watch(s, Date.now()));
  }
  for (let i = 0; i < SILENT; i++) out.push(watch(await openTunnel(tg.proxyPort, `${SECURE}:443`, auth), Date.now()));
  return out;
}

t.test(`${TOTAL} idle tunnels are closed after idle_ms (${IDLE_MS} ms); gauges, descriptors and tunnel slots come back`, async (t) => {
  const baseline = fds();
  const open = await openAll();
  t.equal(open.length, TOTAL, `${TOTAL} tunnels opened (${INTERCEPTED} intercepted, ${DIRECT} pass-through, ${SILENT} without a handshake)`);
  t.ok(await waitFor(() => open.every((o) => o.closedAt !== undefined), IDLE_MS + SLACK_MS + 3000), 'every one was closed by the gateway');
  const late = open.filter((o) => o.closedAt === undefined || o.closedAt - o.openedAt > IDLE_MS + SLACK_MS);
  t.same(late.length, 0, `none later than idle_ms + ${SLACK_MS} ms after it went idle`);
  const early = open.filter((o) => o.closedAt !== undefined && o.closedAt - o.openedAt < IDLE_MS * 0.8);
  t.same(early.length, 0, 'none before idle_ms');
  for (const o of open) o.socket.destroy();
  // A leak holds at least one descriptor per tunnel (150 here). The slack covers what the gateway
  // may open meanwhile: its WAL checkpointer thread starts once the WAL reaches 4 MiB (about a
  // dozen descriptors: the thread's event loop, the database, its WAL and shared memory).
  t.ok(await waitFor(() => fds() <= baseline + 25, 3000), `descriptors back near the baseline (${fds()}, baseline ${baseline})`);
  let tunnels = NaN;
  let connections = NaN;
  for (let i = 0; i < 30; i++) {
    [tunnels, connections] = [await gauge('tollgate_proxy_open_tunnels'), await gauge('tollgate_proxy_open_connections')];
    if (tunnels === 0 && connections === 0) break;
    await waitFor(() => false, 100);
  }
  t.equal(tunnels, 0, 'no tunnel left open (tollgate_proxy_open_tunnels)');
  t.equal(connections, 0, 'no client connection left (tollgate_proxy_open_connections)');
  // every tunnel's row is complete; a pass-through tunnel that was set up reads 200, not "the client left before the tunnel was set up"
  const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));
  try {
    const read = () => db.prepare("SELECT host, state, status, error FROM audit_requests WHERE kind = 'tunnel'").all() as Array<{ host: string; state: string; status: number | null; error: string | null }>;
    t.ok(await waitFor(() => read().filter((r) => r.state === 'complete').length === TOTAL, 3000), `${TOTAL} completed tunnel rows`);
    const direct = read().filter((r) => r.host === PASS);
    t.equal(direct.length, DIRECT, 'one row per pass-through tunnel');
    t.same(direct.filter((r) => r.status !== 200 || /before the tunnel was set up/.test(r.error ?? '')), [], 'each pass-through row: 200, not a client that left early');
  } finally {
    db.close();
  }
  // every slot came back: the agent may hold TOTAL tunnels again
  const again = await openAll();
  t.equal(again.length, TOTAL, `the agent opens ${TOTAL} tunnels again (its max_tunnels)`);
  for (const o of again) o.socket.destroy();
});
