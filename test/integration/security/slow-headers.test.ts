// Security case 8.01 (../shared/security-cases.md), slow headers (slowloris), scaled for a 2-core CI
// box: with timeouts.headers_ms at 1.5 s, 200 connections on the proxy port each dribble one byte of
// a request head every 400 ms (half from the request line's first byte, half after a whole request
// line and its Host and Proxy-Authorization lines), 20 dribble a CONNECT head, and inside intercepted
// tunnels 20 dribble the inner request's head after the TLS handshake and 10 dribble the TLS
// ClientHello itself (headers_ms also bounds the handshake inside a tunnel, docs/configuration.md).
// Meanwhile a normal client sends sequential requests, plain and tunnelled, to a local upstream:
// every one is answered in time. Each slow connection is closed by the gateway between headers_ms/2
// and headers_ms + 2.5 s after its first byte; no slow head reaches the upstream or leaves a request
// row (each slow tunnel leaves its CONNECT row, completed); once they are gone the gateway holds no
// client connection and this process's descriptors are back near the baseline. The test cuts every
// slow connection itself 1 s past that bound, so a gateway without a headers timeout fails the test
// instead of hanging it.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import t from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { sleep, waitFor } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const HEADERS_MS = 1500;
/** One byte of a slow head per connection, this often. */
const TRICKLE_MS = 400;
/** A slow connection must be closed by the gateway within this time after its first byte… */
const LATEST_MS = HEADERS_MS + 2500;
/** …and not before this (it was cut by the headers timeout, not by anything earlier). */
const EARLIEST_MS = HEADERS_MS * 0.5;
/** The test cuts a slow connection the gateway left open this long after its first byte. */
const GIVE_UP_MS = LATEST_MS + 1000;
/** Well past GIVE_UP_MS: within the test only the headers timeout can close a slow connection. */
const IDLE_MS = 20_000;

type Kind = 'plain, from the request line' | 'plain, after the request line' | 'CONNECT head' | 'tunnel, inner request head' | 'tunnel, TLS ClientHello';
const SLOW: Record<Kind, number> = {
  'plain, from the request line': 100,
  'plain, after the request line': 100,
  'CONNECT head': 20,
  'tunnel, inner request head': 20,
  'tunnel, TLS ClientHello': 10,
};
const TOTAL_SLOW = Object.values(SLOW).reduce((a, b) => a + b, 0);
/** Slow connections set up at once (a tunnel costs a CONNECT and a TLS handshake, both ends in this process). */
const OPEN_BATCH = 25;
/** Setting up one slow connection (connect, CONNECT, handshake) must not take longer. */
const SETUP_MS = 5000;

/** Every request of the normal client must be answered within this (the "benchmark p99 within SLO"). */
const NORMAL_MAX_MS = 2000;
/** At least this many normal requests must be answered while ≥ 90 % of the slow connections are open. */
const MIN_NORMAL_UNDER_ATTACK = 3;
/** Open descriptors allowed above the baseline once everything has settled. */
const FD_SLACK = 20;
/**
 * Open descriptors allowed during the attack beyond two per slow connection (its two ends, both in
 * this process): the normal client's connections and the pool's. An upstream connection per slow
 * head would be hundreds more.
 */
const PEAK_SLACK = 60;

const PLAIN = 'plain.allowed.test';
const TLS_HOST = 'tls.allowed.test';
const SLOW_PLAIN = 'slow-plain.allowed.test';
const SLOW_CONNECT = 'slow-connect.allowed.test';
const SLOW_TUNNEL = 'slow-tunnel.allowed.test';
const SLOW_HANDSHAKE = 'slow-handshake.allowed.test';

const pki = await makeTestCa();
const plainUp = await startUpstream();
const tlsUp = await startUpstream({ tls: await pki.issue([TLS_HOST]) });
const tg = await startTestGateway({
  // the slow hosts are mapped (and so allowed) like the others: nothing of theirs may reach an upstream
  upstreams: { [PLAIN]: plainUp.port, [TLS_HOST]: tlsUp.port, [SLOW_PLAIN]: plainUp.port, [SLOW_CONNECT]: tlsUp.port, [SLOW_TUNNEL]: tlsUp.port, [SLOW_HANDSHAKE]: tlsUp.port },
  upstreamCaPem: pki.caPem,
  timeouts: { headers_ms: HEADERS_MS, idle_ms: IDLE_MS },
});
const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));

// Anything thrown and not caught, anywhere in this process (the gateway runs in it).
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => { uncaught.push(err); };
process.on('uncaughtExceptionMonitor', onUncaught);

/** Every socket this test opened, destroyed at the end whatever happened. */
const opened = new Set<net.Socket>();
t.teardown(async () => {
  process.off('uncaughtExceptionMonitor', onUncaught);
  for (const s of opened) s.destroy();
  db.close();
  await tg.stop();
  await Promise.all([plainUp.close(), tlsUp.close()]);
});

// ---- helpers -----------------------------------------------------------------------------

const auth = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;
const fds = () => readdirSync('/proc/self/fd').length;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${tg.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** `p`, or a rejection naming `what` after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e instanceof Error ? e : new Error(String(e))); });
  });
}

function connectRaw(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
    opened.add(s);
    s.once('error', reject);
    s.once('connect', () => { s.off('error', reject); s.on('error', () => undefined); resolve(s); });
  });
}

async function tunnel(host: string): Promise<net.Socket> {
  const raw = await openTunnel(tg.proxyPort, `${host}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  opened.add(raw);
  raw.on('error', () => undefined);
  return raw;
}

/** The ClientHello a client sends for `servername` (captured from an in-memory stream, never sent anywhere). */
function clientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
        resolve(Buffer.from(chunk));
        cb();
        setImmediate(() => hello.destroy());
      },
    });
    const hello = tls.connect({ socket: sink as unknown as net.Socket, servername, ALPNProtocols: ['http/1.1'] });
    hello.on('error', () => undefined);
  });
}

/** Bytes `from`… of `text`, then 'a' for ever: a head that never ends. */
const endless = (text: string, from: number) => (i: number) => Buffer.from(text[from + i] ?? 'a', 'latin1');

interface Slow {
  kind: Kind;
  /** When its first byte was written. */
  startedAt: number;
  /** When the connection ended (by the gateway, or cut by the test at GIVE_UP_MS). */
  closedAt: number | undefined;
  byGateway: boolean;
  received: string;
}
const slows: Slow[] = [];
let live = 0;
let mostLive = 0;

/**
 * Writes `first` on `out` now and then one more byte every TRICKLE_MS (while `more` has one), until
 * the gateway ends the connection or GIVE_UP_MS passes. `raw` is the TCP socket under `out` (the
 * same socket for a plain connection). Resolves once the connection is gone.
 */
function dribble(kind: Kind, raw: net.Socket, out: net.Socket, first: Buffer, more: (i: number) => Buffer | undefined, started: () => void): Promise<void> {
  return new Promise((resolve) => {
    const s: Slow = { kind, startedAt: Date.now(), closedAt: undefined, byGateway: false, received: '' };
    slows.push(s);
    live++;
    mostLive = Math.max(mostLive, live);
    let cut = false;
    let i = 0;
    const tick = setInterval(() => {
      const b = more(i++);
      if (b && !out.destroyed) out.write(b);
    }, TRICKLE_MS);
    const giveUp = setTimeout(() => { cut = true; end(); }, GIVE_UP_MS);
    function end(): void {
      if (s.closedAt !== undefined) return;
      s.closedAt = Date.now();
      s.byGateway = !cut;
      live--;
      clearInterval(tick);
      clearTimeout(giveUp);
      out.destroy();
      raw.destroy();
      resolve();
    }
    out.on('data', (c: Buffer) => { s.received += c.toString('latin1'); });
    for (const x of new Set([raw, out])) {
      x.on('error', () => undefined);
      x.once('end', end);
      x.once('close', end);
    }
    if (out.destroyed || raw.destroyed) end();
    else out.write(first);
    started();
  });
}

/**
 * Sets up one slow connection of `kind` number `n` (`started` is called once its first byte is
 * written); resolves when it is gone, with an error text if it could not be set up.
 */
async function slowConnection(kind: Kind, n: number, hello: Buffer, started: () => void): Promise<string | undefined> {
  try {
    switch (kind) {
      case 'plain, from the request line': {
        const text = `GET http://${SLOW_PLAIN}/slow-line-${n} HTTP/1.1\r\nHost: ${SLOW_PLAIN}\r\n${auth}X-Slow: `;
        const sock = await within(connectRaw(), SETUP_MS, 'connect');
        await dribble(kind, sock, sock, endless(text, 0)(0), endless(text, 1), started);
        return undefined;
      }
      case 'plain, after the request line': {
        const sock = await within(connectRaw(), SETUP_MS, 'connect');
        const head = `GET http://${SLOW_PLAIN}/slow-header-${n} HTTP/1.1\r\nHost: ${SLOW_PLAIN}\r\n${auth}`;
        await dribble(kind, sock, sock, Buffer.from(head, 'latin1'), endless(`X-Slow-${n}: `, 0), started);
        return undefined;
      }
      case 'CONNECT head': {
        const text = `CONNECT ${SLOW_CONNECT}:443 HTTP/1.1\r\nHost: ${SLOW_CONNECT}:443\r\n${auth}X-Slow: `;
        const sock = await within(connectRaw(), SETUP_MS, 'connect');
        await dribble(kind, sock, sock, endless(text, 0)(0), endless(text, 1), started);
        return undefined;
      }
      case 'tunnel, inner request head': {
        const raw = await within(tunnel(SLOW_TUNNEL), SETUP_MS, 'CONNECT');
        const sock = await within(tlsOverTunnel(raw, tg.caPem, SLOW_TUNNEL), SETUP_MS, 'TLS handshake');
        opened.add(sock);
        const head = `GET /slow-tunnel-${n} HTTP/1.1\r\nHost: ${SLOW_TUNNEL}\r\n`;
        await dribble(kind, raw, sock, Buffer.from(head, 'latin1'), endless(`X-Slow-${n}: `, 0), started);
        return undefined;
      }
      case 'tunnel, TLS ClientHello': {
        const raw = await within(tunnel(SLOW_HANDSHAKE), SETUP_MS, 'CONNECT');
        await dribble(kind, raw, raw, hello.subarray(0, 1), (i) => (i + 1 < hello.length ? hello.subarray(i + 1, i + 2) : undefined), started);
        return undefined;
      }
    }
  } catch (err) {
    return `${kind} #${n}: ${String(err)}`;
  }
}

interface NormalResult { n: number; route: 'plain' | 'tunnel'; ok: boolean; ms: number; detail: string; liveAtEnd: number }

/** One request of the normal client, plain or in an intercepted tunnel, on a new connection. */
async function normalRequest(n: number, route: NormalResult['route']): Promise<NormalResult> {
  const url = `/normal-${n}`;
  const started = Date.now();
  let text = '';
  try {
    if (route === 'plain') {
      text = (await rawSend(tg.proxyPort, `GET http://${PLAIN}${url} HTTP/1.1\r\nHost: ${PLAIN}\r\n${auth}Connection: close\r\n\r\n`, { waitMs: NORMAL_MAX_MS * 2, until: hasResponses(1) })).text;
    } else {
      const raw = await within(tunnel(TLS_HOST), NORMAL_MAX_MS * 2, 'CONNECT');
      const sock = await within(tlsOverTunnel(raw, tg.caPem, TLS_HOST), NORMAL_MAX_MS * 2, 'TLS handshake');
      opened.add(sock);
      text = (await collect(sock, `GET ${url} HTTP/1.1\r\nHost: ${TLS_HOST}\r\nConnection: close\r\n\r\n`, { waitMs: NORMAL_MAX_MS * 2, until: hasResponses(1) })).text;
      sock.destroy();
      raw.destroy();
    }
  } catch (err) {
    return { n, route, ok: false, ms: Date.now() - started, detail: String(err), liveAtEnd: live };
  }
  const ms = Date.now() - started;
  const res = parseResponses(text)[0];
  let echoed: unknown;
  try { echoed = (JSON.parse(res?.body ?? '') as { url?: unknown }).url; } catch { echoed = undefined; }
  const ok = res?.status === 200 && res.headers['x-upstream'] === 'yes' && echoed === url;
  return { n, route, ok, ms, detail: ok ? '' : text.slice(0, 200), liveAtEnd: live };
}

// ---- the attack ----------------------------------------------------------------------------

// Warm-up (a leaf for each tunnel host, a pooled upstream connection each), then the baseline.
const warm = [await normalRequest(-1, 'plain'), await normalRequest(0, 'tunnel')];
await sleep(200);
const baselineConnections = await metric('tollgate_proxy_open_connections');
const baseline = fds();
const hello = await clientHello(SLOW_HANDSHAKE);

const setupErrors: string[] = [];
let peakFds = baseline;
const sampler = setInterval(() => { peakFds = Math.max(peakFds, fds()); }, 100);
const attackStarted = Date.now();
let attackOver = false;

// The normal client: sequential requests for as long as the attack lasts (bounded by the give-up time).
const normal: NormalResult[] = [];
const normalDone = (async () => {
  const until = attackStarted + GIVE_UP_MS + SETUP_MS * 2;
  for (let n = 1; !attackOver && Date.now() < until; n++) normal.push(await normalRequest(n, n % 2 === 1 ? 'plain' : 'tunnel'));
})();

// The slow connections, OPEN_BATCH set up at a time; each batch waits only for its set-up, not its end.
const ends: Array<Promise<void>> = [];
const jobs = (Object.entries(SLOW) as Array<[Kind, number]>).flatMap(([kind, count]) => Array.from({ length: count }, (_, n) => ({ kind, n })));
for (let i = 0; i < jobs.length; i += OPEN_BATCH) {
  await Promise.all(jobs.slice(i, i + OPEN_BATCH).map(({ kind, n }) => new Promise<void>((started) => {
    // the batch goes on once this one dribbles (its first byte written) or has failed
    ends.push(slowConnection(kind, n, hello, started).then((err) => { if (err) setupErrors.push(err); started(); }));
  })));
}
const allOpenAfterMs = Date.now() - attackStarted;
await Promise.all(ends);
attackOver = true;
await normalDone;
clearInterval(sampler);
const attackMs = Date.now() - attackStarted;

// ---- assertions ----------------------------------------------------------------------------

t.test('set-up: every slow connection was opened and dribbled at once', async (t) => {
  t.same(setupErrors, [], 'no slow connection failed to set up');
  t.ok(warm.every((r) => r.ok), `the warm-up requests succeeded: ${JSON.stringify(warm)}`);
  for (const [kind, count] of Object.entries(SLOW)) t.equal(slows.filter((s) => s.kind === kind).length, count, `${count} × ${kind}`);
  t.ok(mostLive >= TOTAL_SLOW * 0.9, `≥ 90 % of the ${TOTAL_SLOW} slow connections were open at the same time (at most ${mostLive}; all set up after ${allOpenAfterMs} ms; attack over after ${attackMs} ms)`);
});

for (const kind of Object.keys(SLOW) as Kind[]) {
  t.test(`${kind}: closed by the gateway ${EARLIEST_MS}–${LATEST_MS} ms after the first byte (headers_ms ${HEADERS_MS})`, async (t) => {
    const mine = slows.filter((s) => s.kind === kind);
    const open = mine.filter((s) => !s.byGateway).length;
    t.equal(open, 0, `every connection closed by the gateway (${open} of ${mine.length} were still open after ${GIVE_UP_MS} ms and cut by the test)`);
    // ms from the first byte to the close, of those the gateway closed
    const times = mine.filter((s) => s.byGateway).map((s) => (s.closedAt ?? NaN) - s.startedAt).sort((a, b) => a - b);
    const spread = times.length ? `closed after ${times[0]}–${times[times.length - 1]} ms, median ${times[times.length >> 1]} ms` : 'none closed by the gateway';
    t.same(times.filter((ms) => ms < EARLIEST_MS), [], `none closed before ${EARLIEST_MS} ms`);
    t.same(times.filter((ms) => ms > LATEST_MS), [], `none closed after ${LATEST_MS} ms (${spread})`);
    // What a slow client may receive: nothing, or a refusal; never a forwarded response.
    const answered = mine.map((s) => parseResponses(s.received)[0]).filter((r) => r !== undefined);
    t.ok(answered.every((r) => r.status >= 400 && r.headers['x-upstream'] === undefined), `no slow connection got anything but a refusal (statuses: ${JSON.stringify([...new Set(answered.map((r) => r.status))])})`);
  });
}

t.test('the normal client is unaffected: every sequential request answered, in time, during the attack', async (t) => {
  const failed = normal.filter((r) => !r.ok);
  t.same(failed, [], `all ${normal.length} normal requests (plain and tunnelled) got the upstream's 200`);
  const slowest = Math.max(...normal.map((r) => r.ms));
  t.ok(slowest <= NORMAL_MAX_MS, `each answered within ${NORMAL_MAX_MS} ms (slowest ${slowest} ms)`);
  const underAttack = normal.filter((r) => r.ok && r.liveAtEnd >= TOTAL_SLOW * 0.9).length;
  t.ok(underAttack >= MIN_NORMAL_UNDER_ATTACK, `${underAttack} answered while ≥ 90 % of the slow connections were open (at least ${MIN_NORMAL_UNDER_ATTACK})`);
  t.ok(normal.some((r) => r.route === 'plain' && r.ok) && normal.some((r) => r.route === 'tunnel' && r.ok), 'both routes were exercised');
});

t.test('nothing of the slow heads reached the upstream', async (t) => {
  const urls = [...plainUp.seen, ...tlsUp.seen].map((r) => r.url);
  const expected = [...warm, ...normal].map((r) => `/normal-${r.n}`);
  t.same(urls.filter((u) => !u.startsWith('/normal-')), [], 'the upstreams saw only the normal client\'s requests');
  t.equal(urls.length, expected.length, `one upstream request per normal request (${expected.length})`);
});

t.test('audit: no request row for a slow head; each slow tunnel has its CONNECT row, completed', async (t) => {
  interface Row { state: string; kind: string; via: string; status: number | null; decision: string; path: string | null }
  const rows = (where: string, ...args: string[]) => db.prepare<string[], Row>(`SELECT state, kind, via, status, decision, path FROM audit_requests WHERE ${where}`).all(...args);
  // A head that never completed is not a request: the gateway has nothing to decide or record.
  t.same(rows("path LIKE '/slow-%'"), [], 'no row for any slow request head (plain or inside a tunnel)');
  t.same(rows('host IN (?, ?)', SLOW_PLAIN, SLOW_CONNECT), [], 'no row for the slow plain requests or the slow CONNECT heads');
  // A CONNECT that was established is an exchange (docs/audit.md): one tunnel row each, completed when it closed.
  for (const [host, count] of [[SLOW_TUNNEL, SLOW['tunnel, inner request head']], [SLOW_HANDSHAKE, SLOW['tunnel, TLS ClientHello']]] as const) {
    t.ok(await waitFor(() => rows("host = ? AND state = 'complete'", host).length === count, 3000), `${host}: ${count} completed rows`);
    const mine = rows('host = ?', host);
    t.equal(mine.length, count, `${host}: one row per tunnel`);
    t.ok(mine.every((r) => r.kind === 'tunnel' && r.via === 'connect' && r.decision === 'allow' && r.status === 200 && r.path === null), `${host}: each a completed, allowed CONNECT with status 200`);
  }
  t.ok(await waitFor(() => rows("path LIKE '/normal-%' AND state = 'complete'").length === warm.length + normal.length, 3000), 'every normal request has its completed row');
  const normalRows = rows("path LIKE '/normal-%'");
  t.ok(normalRows.every((r) => r.kind === 'request' && r.status === 200), 'each a request answered 200');
});

t.test('afterwards: no client connection left in the gateway, descriptors back near the baseline, no error', async (t) => {
  t.ok(peakFds <= baseline + 2 * TOTAL_SLOW + PEAK_SLACK, `descriptors during the attack bounded by the connections (peak ${peakFds}, baseline ${baseline}, ${TOTAL_SLOW} slow connections × 2 ends + ${PEAK_SLACK})`);
  let connections = NaN;
  for (let i = 0; i < 30; i++) {
    connections = await metric('tollgate_proxy_open_connections');
    if (connections <= baselineConnections) break;
    await sleep(100);
  }
  t.ok(connections <= baselineConnections, `the gateway's open client connections are back at ${baselineConnections} (${connections})`);
  t.equal(await metric('tollgate_proxy_open_tunnels'), 0, 'no tunnel left open');
  t.ok(await waitFor(() => fds() <= baseline + FD_SLACK, 3000), `open descriptors back near the baseline: ${fds()} (baseline ${baseline}, slack ${FD_SLACK})`);
  t.same(tg.logs.filter((l) => l['level'] === 'error'), [], 'no error logged');
  t.same(uncaught, [], 'nothing thrown and not caught');
  const after = await normalRequest(1_000_000, 'plain');
  t.ok(after.ok, 'the gateway still answers');
});
