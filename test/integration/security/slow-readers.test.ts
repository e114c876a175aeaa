// Security case 8.02 (../shared/security-cases.md), scaled down: slow readers and backpressure
// against a real `tollgate serve` process (its own pid, so its resident memory is read from
// /proc/<pid>/status on its own).
//  - Downloads: 25 clients (20 plain, 5 inside intercepted tunnels) ask for a 256 MiB body that the
//    origin generates on the fly, writing only while its socket takes more (write() → false: wait
//    for 'drain'), and read it at a trickle (4 KiB every 100 ms) for 5 s. Expect: the gateway's RSS
//    stays within RSS_BOUND_KIB of its warmed-up baseline, and each origin connection could hand over
//    at most UPSTREAM_BOUND while its client had read well under 1 MiB — the gateway stops reading
//    the upstream when its client does not read. A gateway that buffered would be fed what the
//    origin pushes at loopback speed (the fast reader at the end measures that: hundreds of MiB a
//    second), i.e. gigabytes in 5 s across 25 connections.
//  - Uploads: 20 clients send chunked bodies at a trickle (4 KiB every 100 ms, longer than
//    first_byte_ms) and 4 push as fast as the gateway accepts to an origin that reads at a trickle.
//    Expect: bounded RSS; the trickles are streamed (the origin has them while they are sent) and
//    complete; the fast uploaders are held back (what the gateway accepted stays bounded).
//  - Idle: a client that stops reading its download altogether, and one that stops sending
//    half-way through its body, are closed after timeouts.idle_ms (1.5 s); the origin sees each
//    request aborted, never completed. first_byte_ms is 2.5 s: longer than idle_ms (an operator who
//    reaps idle clients quickly but lets LLMs think), shorter than a trickle upload (a body still
//    moving must not be cut by it).
// A regression must not take the machine down with it: origins stop pumping past RUNAWAY_CAP per
// connection and the fast uploaders stop past it too (under 2 GiB in all, at worst).
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { procRssKiB } from '../../../bench/lib/proc.ts';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { sleep, waitFor } from '../../helpers/cli-process.ts';
import { writeMinimalGatewayDir } from '../../helpers/minimal-gateway-dir.ts';
import { loadParkedGateway, startParked } from '../../helpers/parked-gateway.ts';
import { collect, hasResponses, openTunnel, parseResponses, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const IDLE_MS = 1500;
/** Longer than idle_ms, shorter than a trickle upload (see above). */
const FIRST_BYTE_MS = 2500;
/** The client connection's timer while a response is forwarded: max(idle_ms, first_byte_ms) + 2 s (proxy-server.ts). */
const FORWARDING_IDLE_MS = Math.max(IDLE_MS, FIRST_BYTE_MS) + 2000;
const BIG = 'big.allowed.test'; // plain HTTP download origin
const BIG_TLS = 'big-tls.allowed.test'; // HTTPS download origin, reached through intercepted tunnels
const UP = 'upload.allowed.test'; // upload origin
const BODY_BYTES = 256 * MiB;
const BLOCK = Buffer.alloc(64 * KiB, 0x61);
const PLAIN_READERS = 20;
const TLS_READERS = 5;
const READ_EVERY_MS = 100;
const READ_BYTES = 4 * KiB;
const SLOW_READ_MS = 5000;
/**
 * Measured (2 cores, with and without another suite running): +15 to +39 MiB, reached within the
 * first second (stream buffers filling, the V8 heap growing) and flat after. A gateway that did not
 * pause its upstreams would hold up to RUNAWAY_CAP per connection: 1.6 GiB for 25 of them.
 */
const RSS_BOUND_KIB = 96 * 1024;
/**
 * Measured: 7.5 to 10.8 MiB per connection — the kernel's socket buffers on both legs (send buffers
 * up to 4 MiB, receive buffers autotuned) — and the same for what the gateway accepts of a fast
 * upload. Without backpressure an origin reaches RUNAWAY_CAP within a second.
 */
const UPSTREAM_BOUND = 24 * MiB;
/** Past this an origin (or a fast uploader) stops pushing, so a regression cannot eat the machine. */
const RUNAWAY_CAP = 64 * MiB;
const TRICKLES = 20;
const TRICKLE_MS = 3500; // > FIRST_BYTE_MS: a body still moving is not cut by the first-byte timer
const FAST_UPLOADERS = 4;
const FAST_UPLOAD_MS = 2500;
const SLACK_MS = 2500; // timers on a busy 2-core machine

const pki = await makeTestCa();

// --- origins -------------------------------------------------------------------------------------
/** Download origin: bytes each request's response handed to its socket (key: the URL). */
const written = new Map<string, number>();
function serveBig(req: IncomingMessage, res: ServerResponse): void {
  const key = req.url ?? '';
  const cap = key.startsWith('/fast') || key.startsWith('/warm') ? BODY_BYTES : RUNAWAY_CAP;
  const total = key.startsWith('/warm') ? 2 * MiB : BODY_BYTES;
  written.set(key, 0);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let sent = 0;
  const pump = (): void => {
    while (sent < total && sent < cap && !res.destroyed) {
      sent += BLOCK.length;
      written.set(key, sent);
      if (!res.write(BLOCK)) { res.once('drain', pump); return; }
    }
    if (sent >= total) res.end();
  };
  pump();
}
/** Upload origin: bytes each request's body delivered (key: the URL); /sink/* reads at a trickle. */
const received = new Map<string, number>();
const sinkTimers = new Set<NodeJS.Timeout>();
function serveUpload(req: IncomingMessage, res: ServerResponse): void {
  const key = req.url ?? '';
  received.set(key, 0);
  const add = (c: Buffer) => received.set(key, (received.get(key) ?? 0) + c.length);
  req.once('end', () => res.end(`got ${received.get(key)}`));
  req.on('error', () => undefined);
  if (!key.startsWith('/sink')) { req.on('data', add); return; }
  const timer = setInterval(() => {
    const c = req.read(Math.min(READ_BYTES, Math.max(1, req.readableLength))) as Buffer | null;
    if (c) add(c);
  }, READ_EVERY_MS);
  sinkTimers.add(timer);
  req.once('close', () => { clearInterval(timer); sinkTimers.delete(timer); });
}
const big = await startUpstream({ handler: serveBig, streamBody: true });
const bigTls = await startUpstream({ tls: await pki.issue([BIG_TLS]), handler: serveBig, streamBody: true });
const up = await startUpstream({ handler: serveUpload, streamBody: true });

// --- the gateway process -------------------------------------------------------------------------
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-slow-readers-'));
const { configFile } = await writeMinimalGatewayDir(dir, ['team: alpha', 'rules:', ...[BIG, BIG_TLS, UP].map((h) => `  - { host: ${h}, action: allow }`), '  - { host: "*", action: deny }', ''].join('\n'));
appendFileSync(path.join(dir, 'upstream-ca.pem'), pki.caPem);
appendFileSync(configFile, [
  'upstreams:',
  `  ${BIG}: 127.0.0.1:${big.port}`,
  `  ${BIG_TLS}: 127.0.0.1:${bigTls.port}`,
  `  ${UP}: 127.0.0.1:${up.port}`,
  'tls: { upstream_ca: [./upstream-ca.pem] }',
  `timeouts: { idle_ms: ${IDLE_MS}, first_byte_ms: ${FIRST_BYTE_MS} }`,
  'log: { level: info }',
  '',
].join('\n'));
const dbFile = path.join(dir, 'data', 'tollgate.db');
openDatabase(dbFile).close();
let token = '';
await tokenIssue({ dbFile, user: 'slow@example.com', team: 'alpha', ttl: '1h', write: (s) => { token += s.trim(); } });
const auth = `Basic ${Buffer.from(`alpha:${token}`).toString('base64')}`;

const gw = loadParkedGateway(configFile);
const sockets = new Set<net.Socket>();
const own = <S extends net.Socket>(s: S): S => {
  sockets.add(s);
  s.on('error', () => undefined);
  s.once('close', () => sockets.delete(s));
  return s;
};
t.teardown(async () => {
  for (const s of sockets) s.destroy();
  for (const timer of sinkTimers) clearInterval(timer);
  const pid = gw.child.pid;
  if (pid !== undefined && gw.child.exitCode === null && gw.child.signalCode === null) process.kill(pid, 'SIGKILL');
  await gw.exited;
  await Promise.all([big.close(), bigTls.close(), up.close()]);
  rmSync(dir, { recursive: true, force: true });
});
const t0 = Date.now();
const port = await startParked(gw);
const pid = gw.child.pid as number;
const gwCa = readFileSync(path.join(dir, 'certs', 'ca.pem'), 'utf8');
t.comment(`gateway pid ${pid} listening on ${port} after ${Date.now() - t0} ms`);

// --- clients -------------------------------------------------------------------------------------
function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = own(net.connect({ host: '127.0.0.1', port }));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}
async function intercepted(host: string): Promise<net.Socket> {
  const raw = own(await openTunnel(port, `${host}:443`, { 'Proxy-Authorization': auth }));
  return own(await tlsOverTunnel(raw, gwCa, host));
}
const plainHead = (method: string, host: string, p: string, extra = '') => `${method} http://${host}${p} HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${auth}\r\n${extra}\r\n`;

/** Samples the gateway's VmRSS (KiB) every 200 ms until stopped; returns the peak. */
function sampleRss(): { stop: () => number } {
  let peak = procRssKiB(pid);
  const timer = setInterval(() => { try { peak = Math.max(peak, procRssKiB(pid)); } catch { /* exited */ } }, 200);
  return { stop: () => { clearInterval(timer); return peak; } };
}
const mib = (kib: number) => (kib / 1024).toFixed(1);

/** A client that asked for a body and reads READ_BYTES of it every READ_EVERY_MS (the socket stays paused). */
interface SlowReader { key: string; sock: net.Socket; read: number; head: string; closedAt: number | undefined }
function slowReader(key: string, sock: net.Socket, request: string): SlowReader {
  const r: SlowReader = { key, sock, read: 0, head: '', closedAt: undefined };
  sock.once('close', () => { r.closedAt = Date.now(); });
  const timer = setInterval(() => {
    if (sock.destroyed) { clearInterval(timer); return; }
    const n = Math.min(READ_BYTES, sock.readableLength);
    const c = (n > 0 ? sock.read(n) : sock.read(0)) as Buffer | null;
    if (!c) return;
    if (r.read === 0) r.head = c.subarray(0, 20).toString('latin1');
    r.read += c.length;
  }, READ_EVERY_MS);
  sock.once('close', () => clearInterval(timer));
  sock.write(request);
  return r;
}

/**
 * A client that sends its request and never reads a byte of the answer: nothing moves on its
 * connection once the socket buffers are full. `cut`: ms from its request until the origin saw the
 * response aborted (or until the wait gave up).
 */
const stoppedReader: { cut: Promise<number> } = { cut: Promise.resolve(-1) };
function startStoppedReader(sock: net.Socket): void {
  sock.write(plainHead('GET', BIG, '/dl/stopped'));
  const at = Date.now();
  const wait = 2 * FORWARDING_IDLE_MS + 2 * SLACK_MS;
  stoppedReader.cut = waitFor(() => big.seen.find((r) => r.url === '/dl/stopped')?.aborted === true, wait).then(() => Date.now() - at);
}

// --- warm-up and baseline ------------------------------------------------------------------------
let baselineKiB = 0;
t.before(async () => {
  // Every path once (plain, intercepted, upload), so the pools, the leaf and the code are loaded.
  for (let i = 0; i < 2; i++) {
    const a = await collect(await connect(), plainHead('GET', BIG, `/warm/p${i}`, 'Connection: close\r\n'), { waitMs: 5000, until: hasResponses(1) });
    const b = await collect(await intercepted(BIG_TLS), `GET /warm/t${i} HTTP/1.1\r\nHost: ${BIG_TLS}\r\nConnection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
    const c = await collect(await connect(), plainHead('POST', UP, `/warm/u${i}`, 'Content-Length: 5\r\nConnection: close\r\n') + 'hello', { waitMs: 5000, until: hasResponses(1) });
    if (![a, b, c].every((x) => parseResponses(x.text)[0]?.status === 200)) throw new Error(`warm-up failed: ${[a, b, c].map((x) => x.text.slice(0, 60)).join(' | ')}`);
  }
  for (const s of sockets) s.destroy();
  await sleep(500);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) { samples.push(procRssKiB(pid)); await sleep(100); }
  baselineKiB = Math.max(...samples);
});

t.test(`${PLAIN_READERS + TLS_READERS} slow readers of a 256 MiB body: bounded RSS, upstream reads paused`, async (t) => {
  const readers: SlowReader[] = [];
  const rss = sampleRss();
  for (let i = 0; i < PLAIN_READERS; i++) readers.push(slowReader(`/dl/p${i}`, await connect(), plainHead('GET', BIG, `/dl/p${i}`)));
  for (let i = 0; i < TLS_READERS; i++) readers.push(slowReader(`/dl/t${i}`, await intercepted(BIG_TLS), `GET /dl/t${i} HTTP/1.1\r\nHost: ${BIG_TLS}\r\n\r\n`));
  const started = Date.now();
  startStoppedReader(await connect());
  // The client learns of a cut only once the kernel has sent what it holds for it: the origin sees
  // it at once (its request aborted). While a response is forwarded the gateway's own bound is the
  // connection timer at max(idle_ms, first_byte_ms) + 2 s since the last write completed, and a
  // slow reader's writes complete in steps of a megabyte and more (the kernel wakes a blocked
  // writer when a third of its send buffer has drained): at ~40 KiB/s a step can take longer than
  // that bound. What must never happen is a cut at idle_ms: so, looked at just before the bound.
  const originOf = (r: SlowReader) => (r.key.startsWith('/dl/t') ? bigTls : big).seen.find((x) => x.url === r.key);
  await sleep(FORWARDING_IDLE_MS - 750);
  const cutEarly = readers.filter((r) => originOf(r)?.aborted === true).map((r) => r.key);
  await sleep(Math.max(0, SLOW_READ_MS - (Date.now() - started)));
  const peak = rss.stop();
  const perConn = readers.map((r) => written.get(r.key) ?? 0);
  const maxWritten = Math.max(...perConn);
  const maxRead = Math.max(...readers.map((r) => r.read));
  t.comment(`RSS: baseline ${mib(baselineKiB)} MiB, peak ${mib(peak)} MiB (+${mib(peak - baselineKiB)} MiB)`);
  t.comment(`origin bytes per connection (MiB): ${perConn.map((b) => (b / MiB).toFixed(1)).join(' ')}`);
  t.comment(`client bytes read (KiB): ${readers.map((r) => Math.round(r.read / KiB)).join(' ')}`);
  t.ok(readers.every((r) => r.head.startsWith('HTTP/1.1 200')), 'every reader got a 200');
  t.equal(readers.filter((r) => r.closedAt !== undefined).length, 0, `no slow reader saw its connection close in ${Date.now() - started} ms`);
  t.same(cutEarly, [], `no slow reader was cut at idle_ms (none of their origin requests aborted in the first ${FORWARDING_IDLE_MS - 750} ms; idle_ms ${IDLE_MS} ms)`);
  t.ok(readers.every((r) => written.has(r.key)), 'every request reached its origin');
  t.ok(maxRead < 1 * MiB, `each client read < 1 MiB (at most ${Math.round(maxRead / KiB)} KiB)`);
  t.ok(maxWritten < UPSTREAM_BOUND, `each origin connection handed over < ${UPSTREAM_BOUND / MiB} MiB (at most ${(maxWritten / MiB).toFixed(1)} MiB of 256): upstream reads pause`);
  t.ok(peak - baselineKiB < RSS_BOUND_KIB, `gateway RSS grew ${mib(peak - baselineKiB)} MiB (< ${mib(RSS_BOUND_KIB)} MiB; ${readers.length} buffered bodies would be GiBs)`);
  for (const r of readers) r.sock.destroy();
});

t.test('slow uploads: trickles streamed and complete, fast uploaders held back, a stalled body cut after idle_ms', async (t) => {
  const rss = sampleRss();
  // A client that stops sending half-way through its body.
  const stall = await connect();
  const stallResponse = collect(stall, plainHead('POST', UP, '/stall', 'Transfer-Encoding: chunked\r\n'), { waitMs: FIRST_BYTE_MS + IDLE_MS + 4 * SLACK_MS, until: () => false, destroyOnTimeout: false });
  for (let i = 0; i < 3; i++) { stall.write(`${(READ_BYTES).toString(16)}\r\n${'s'.repeat(READ_BYTES)}\r\n`); await sleep(READ_EVERY_MS); }
  const stalledAt = Date.now();
  // Trickles: 4 KiB every 100 ms, then the last chunk.
  const trickles = await Promise.all(Array.from({ length: TRICKLES }, async (_, i) => {
    const s = await connect();
    const answer = collect(s, plainHead('POST', UP, `/trickle/${i}`, 'Transfer-Encoding: chunked\r\n'), { waitMs: TRICKLE_MS + 4 * SLACK_MS, until: hasResponses(1) });
    return { key: `/trickle/${i}`, s, answer, sent: 0 };
  }));
  const trickleTimer = setInterval(() => {
    for (const x of trickles) if (!x.s.destroyed) { x.s.write(`${READ_BYTES.toString(16)}\r\n${'t'.repeat(READ_BYTES)}\r\n`); x.sent += READ_BYTES; }
  }, READ_EVERY_MS);
  // Fast uploaders to an origin that reads 4 KiB every 100 ms.
  const fast = await Promise.all(Array.from({ length: FAST_UPLOADERS }, async (_, i) => {
    const s = await connect();
    s.write(plainHead('POST', UP, `/sink/${i}`, `Content-Length: ${BODY_BYTES}\r\n`));
    const f = { key: `/sink/${i}`, s, offered: 0, stop: false };
    const push = (): void => {
      while (!f.stop && !s.destroyed && f.offered < RUNAWAY_CAP) {
        f.offered += BLOCK.length;
        if (!s.write(BLOCK)) { s.once('drain', push); return; }
      }
    };
    push();
    return f;
  }));
  const stallWait = FIRST_BYTE_MS + IDLE_MS + 3 * SLACK_MS;
  const stallClosed = waitFor(() => stall.destroyed, stallWait).then(() => Date.now() - stalledAt);

  await sleep(TRICKLE_MS / 2);
  const sentMid = trickles.reduce((a, x) => a + x.sent, 0);
  const gotMid = trickles.reduce((a, x) => a + (received.get(x.key) ?? 0), 0);
  t.ok(gotMid >= sentMid / 2, `half-way, the origin already has ${Math.round(gotMid / KiB)} of the ${Math.round(sentMid / KiB)} KiB sent: streamed, not stored and forwarded`);
  await sleep(Math.max(0, FAST_UPLOAD_MS - TRICKLE_MS / 2));
  for (const f of fast) f.stop = true;
  const accepted = fast.map((f) => f.offered - f.s.writableLength);
  const sunk = fast.map((f) => received.get(f.key) ?? 0);
  t.comment(`fast uploaders: accepted by the gateway (MiB) ${accepted.map((b) => (b / MiB).toFixed(1)).join(' ')}; read by the origin (KiB) ${sunk.map((b) => Math.round(b / KiB)).join(' ')}`);
  t.ok(fast.every((f) => !f.s.destroyed), 'the fast uploaders are still connected (held back, not cut)');
  t.ok(Math.max(...sunk) < 1 * MiB, 'the origin read < 1 MiB of each');
  t.ok(Math.max(...accepted) < UPSTREAM_BOUND, `the gateway accepted < ${UPSTREAM_BOUND / MiB} MiB of each (at most ${(Math.max(...accepted) / MiB).toFixed(1)} MiB): client reads pause`);
  for (const f of fast) f.s.destroy();

  await sleep(Math.max(0, TRICKLE_MS - FAST_UPLOAD_MS));
  clearInterval(trickleTimer);
  for (const x of trickles) x.s.write('0\r\n\r\n');
  const answers = await Promise.all(trickles.map((x) => x.answer));
  const peak = rss.stop();
  t.comment(`RSS: baseline ${mib(baselineKiB)} MiB, peak ${mib(peak)} MiB (+${mib(peak - baselineKiB)} MiB)`);
  const ok = trickles.filter((x, i) => { const r = parseResponses(answers[i]?.text ?? '')[0]; return r?.status === 200 && r.body === `got ${x.sent}`; });
  t.equal(ok.length, TRICKLES, `every trickle (${Math.round((trickles[0]?.sent ?? 0) / KiB)} KiB over ${TRICKLE_MS} ms, longer than first_byte_ms) completed, its origin got every byte`);
  t.ok(peak - baselineKiB < RSS_BOUND_KIB, `gateway RSS grew ${mib(peak - baselineKiB)} MiB (< ${mib(RSS_BOUND_KIB)} MiB)`);

  const closedAfter = await stallClosed;
  const stalled = up.seen.find((r) => r.url === '/stall');
  t.comment(`stalled upload: closed ${stall.destroyed ? `${closedAfter} ms after its last byte` : 'never'}; answered ${JSON.stringify((await stallResponse).text.split('\r\n')[0] ?? '')}; origin received ${received.get('/stall') ?? 0} bytes`);
  t.ok(stall.destroyed && closedAfter < IDLE_MS + SLACK_MS, `a body that stopped half-way is closed after idle_ms (${IDLE_MS} ms; it was closed ${stall.destroyed ? `${closedAfter} ms` : `more than ${stallWait} ms`} after its last byte)`);
  t.ok(stall.destroyed, 'it is closed (within first_byte_ms + idle_ms + slack) all the same');
  await waitFor(() => stalled?.aborted === true, 2000);
  t.match(stalled, { complete: false, aborted: true }, 'the origin saw the request aborted, never complete');
});

t.test('idle: a reader that never reads its answer is cut, its upstream request aborted', async (t) => {
  // Started with the slow readers, so the wait overlapped the uploads. The client, paused, cannot
  // notice the close itself; the gateway aborting its upstream request is what shows it.
  const ms = await stoppedReader.cut;
  const origin = big.seen.find((r) => r.url === '/dl/stopped');
  const cut = origin?.aborted === true;
  t.comment(`the reader that never read: ${cut ? `cut ${ms} ms after its request` : `still forwarded ${ms} ms after its request`}; its origin handed over ${((written.get('/dl/stopped') ?? 0) / MiB).toFixed(1)} MiB`);
  // A reader that stopped is not told from a slow one within idle_ms (the kernel reports progress to
  // a blocked writer in steps of a megabyte and more): the connection's timer, stretched to
  // max(idle_ms, first_byte_ms) + 2 s while a response is forwarded, ends it — after up to two of
  // those periods in Node (the first one is let go if the write queue changed since the last write).
  const bound = 2 * FORWARDING_IDLE_MS + SLACK_MS;
  t.ok(cut && ms < bound, `cut within twice the forwarding bound (${bound} ms; it took ${cut ? `${ms} ms` : `more than ${ms} ms`})`);
  t.match(origin, { aborted: true }, 'the origin saw its response aborted, never finished');
  t.ok((written.get('/dl/stopped') ?? 0) < UPSTREAM_BOUND, 'and could hand over only what the socket buffers hold meanwhile');
});

t.test('control: a reader at full speed gets far more than UPSTREAM_BOUND through the same gateway', async (t) => {
  const sock = await connect();
  let got = 0;
  sock.on('data', (c: Buffer) => { got += c.length; });
  sock.write(plainHead('GET', BIG, '/fast'));
  await sleep(2000);
  sock.destroy();
  t.ok(got > 2 * UPSTREAM_BOUND, `a reader at full speed got ${(got / MiB).toFixed(0)} MiB in 2 s: the bound above is backpressure, not a slow origin`);
});
