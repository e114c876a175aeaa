// Policy hot reload while traffic flows (security case 7.05, the half reload-faults.test.ts leaves
// out: that file checks each broken file and its signals one at a time, with no traffic running).
// Here seven workers keep sending requests through the gateway — plain HTTP on raw sockets (kept
// alive, and one connection per request), intercepted HTTPS through undici's ProxyAgent (kept-alive
// tunnels) and on raw sockets (a new CONNECT per request), and a control worker for a host both
// policies allow and one both deny — while policies/alpha.yaml is replaced by a YAML syntax error,
// an unknown action, an invalid glob (`*allowed.test`), a binding to an undeclared secret, and a
// file written in two steps whose truncated first write is read by the gateway before the second
// write completes it. The complete file is the valid change: it drops echo.allowed.test. Reloads
// are triggered the way the gateway documents (docs/policy.md "Reloading"): by the file watch.
//
// Every broken file, if any part of it were applied, would allow denied.test and refuse
// echo.allowed.test (or, for the truncated one, refuse echo.allowed.test), so a partial policy
// shows up in the decisions. Expected: while the files are broken every request is decided by the
// last good policy (no refusal of an allowed host, no 5xx, nothing reaches denied.test) and each
// file is rejected with its own signal (log line, metric, audit event); after the valid change
// echo.allowed.test gets 403 and nothing more reaches it, and the switch is atomic: every request
// is either answered by the upstream or refused (never both, never neither), and once one request
// was refused no later request passes. Requests in flight at the switch (a slow response, an SSE
// stream inside an intercepted tunnel, a request whose body is still being uploaded) finish
// normally; the next request on their connection is decided by the new policy.
import { appendFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { until } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, tlsOverTunnel, type ParsedResponse } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

const REJECTED = 'policy reload rejected; the last good policy stays in force';
const RELOADED = 'policy reloaded';
const ECHO = 'echo.allowed.test'; // allowed by the good policy, dropped by the valid change
const KEEP = 'keep.allowed.test'; // allowed by both
const DENIED = 'denied.test'; // denied by both; every broken file would allow it

// ---- upstreams -------------------------------------------------------------------------------
// In-flight responses hold their second half until the test has seen the new policy in force.
let releaseInFlight!: () => void;
const inFlightReleased = new Promise<void>((r) => { releaseInFlight = r; });
const handler: UpstreamHandler = async (req, res, body) => {
  const url = req.url ?? '';
  if (url.startsWith('/slow/')) {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
    res.write('first half;');
    await inFlightReleased;
    res.end('second half');
    return;
  }
  if (url.startsWith('/sse/')) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-upstream': 'yes' });
    res.write('data: one\n\n');
    await inFlightReleased;
    res.write('data: two\n\n');
    res.end('data: done\n\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
  res.end(JSON.stringify({ url, bodyLength: body.length }));
};

const pki = await makeTestCa();
const echoPlain = await startUpstream({ handler });
const echoTls = await startUpstream({ handler, tls: await pki.issue([ECHO]) });
const keep = await startUpstream();
const denied = await startUpstream();

/** One port for echo.allowed.test that serves both schemes: TLS (first byte 0x16) goes to echoTls, the rest to echoPlain. */
const relayed = new Set<net.Socket>();
const front = net.createServer((client) => {
  relayed.add(client);
  client.on('error', () => undefined);
  client.once('close', () => relayed.delete(client));
  client.once('data', (first: Buffer) => {
    client.pause();
    const backend = net.connect({ host: '127.0.0.1', port: first[0] === 0x16 ? echoTls.port : echoPlain.port });
    relayed.add(backend);
    backend.on('error', () => client.destroy());
    backend.once('close', () => { relayed.delete(backend); client.destroy(); });
    client.once('close', () => backend.destroy());
    backend.write(first);
    client.pipe(backend);
    backend.pipe(client);
    client.resume();
  });
});
await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
const frontPort = (front.address() as net.AddressInfo).port;

const tg = await startTestGateway({
  upstreams: { [ECHO]: frontPort, [KEEP]: keep.port, [DENIED]: denied.port },
  upstreamCaPem: pki.caPem,
  alphaRules: `  - { host: ${ECHO}, action: allow }\n  - { host: ${KEEP}, action: allow }`,
});
const httpsAgent = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: tg.caPem } });
t.teardown(async () => {
  releaseInFlight();
  await httpsAgent.close().catch(() => undefined);
  await tg.stop();
  for (const s of relayed) s.destroy();
  await new Promise<void>((r) => front.close(() => r()));
  await Promise.all([echoPlain.close(), echoTls.close(), keep.close(), denied.close()]);
});

const alphaFile = path.join(tg.dir, 'policies', 'alpha.yaml');
/** The URLs echo.allowed.test's upstreams (both schemes) received, with how often. */
const echoSeen = () => {
  const m = new Map<string, number>();
  for (const s of [...echoPlain.seen, ...echoTls.seen]) m.set(s.url, (m.get(s.url) ?? 0) + 1);
  return m;
};

// ---- the policy files ------------------------------------------------------------------------
const VALID_NEW = `team: alpha\nrules:\n  - { host: ${KEEP}, action: allow }\n  - { host: "*", action: deny }\n`;
// The truncated write stops inside the catch-all rule: applied as far as it parses, it would
// allow only keep.allowed.test and refuse echo.allowed.test.
const TRUNCATED_AT = VALID_NEW.indexOf('action: deny }') + 'action: de'.length;
const BROKEN: Array<{ name: string; content: string; problem: RegExp }> = [
  {
    name: 'a YAML syntax error',
    content: `team: alpha\nrules:\n  - { host: ${DENIED}, action: allow }\n  - { host: ${ECHO}, action: deny\n  - { host: "*", action: deny }\n`,
    problem: /^policies\/alpha\.yaml:\d+:\d+: /,
  },
  {
    name: 'an unknown action',
    content: `team: alpha\nrules:\n  - { host: ${DENIED}, action: allow }\n  - { host: ${ECHO}, action: permit }\n  - { host: ${KEEP}, action: allow }\n  - { host: "*", action: deny }\n`,
    problem: /^policies\/alpha\.yaml:4:\d+: rules\[1\]\.action: /,
  },
  {
    name: 'an invalid glob (*allowed.test)',
    content: `team: alpha\nrules:\n  - { host: ${DENIED}, action: allow }\n  - { host: "*allowed.test", action: deny }\n  - { host: "*", action: deny }\n`,
    problem: /^policies\/alpha\.yaml:4:\d+: "\*allowed\.test"/,
  },
  {
    name: 'a binding to an undeclared secret',
    content: `team: alpha\nrules:\n  - { host: ${DENIED}, action: allow }\n  - { host: ${ECHO}, action: deny }\n  - { host: "*", action: deny }\ncredentials:\n  - { host: ${DENIED}, bearer: { secret: no-such-secret } }\n`,
    problem: /^policies\/alpha\.yaml:7:\d+: unknown secret "no-such-secret"/,
  },
];
const TRUNCATED_PROBLEM = /^policies\/alpha\.yaml:4:\d+: /;

/** Waits for a reload verdict logged after log index `from` (a rejection: one whose first problem matches `problem`). */
async function verdictAfter(from: number, expect: 'rejected' | 'reloaded', problem?: RegExp): Promise<number> {
  const find = () => tg.logs.findIndex((l, i) => i >= from
    && l['msg'] === (expect === 'rejected' ? REJECTED : RELOADED)
    && (problem === undefined || problem.test(String((l['problems'] as string[] | undefined)?.[0]))));
  try {
    await until(`a reload ${expect}`, () => find() !== -1, 5000);
  } catch {
    const verdicts = tg.logs.slice(from).filter((l) => l['msg'] === REJECTED || l['msg'] === RELOADED);
    throw new Error(`expected a reload ${expect}${problem ? ` with ${String(problem)}` : ''}; the verdicts were ${JSON.stringify(verdicts)}`);
  }
  return find();
}

// ---- traffic ---------------------------------------------------------------------------------
type Via = 'plain-keepalive' | 'plain-close' | 'https-proxyagent' | 'https-new-tunnel';
const VIAS: readonly Via[] = ['plain-keepalive', 'plain-close', 'https-proxyagent', 'https-new-tunnel'];
interface Outcome {
  worker: string;
  via: Via;
  host: string;
  url: string;
  sentAt: number;
  doneAt: number;
  status: number;
  /** The gateway's X-Tollgate-Reason, when it answered itself. */
  reason: string | undefined;
  /** The answer came from the upstream (x-upstream: yes) and echoes this request's URL. */
  fromUpstream: boolean;
  error: string | undefined;
}
const outcomes: Outcome[] = [];
let stopTraffic = false;
const MAX_PER_WORKER = 1500;
const PAUSE_MS = 4;
const now = () => performance.now();

function plainRequest(host: string, url: string, close: boolean): string {
  return `GET http://${host}${url} HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${tg.proxyAuth}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
}

function record(o: Omit<Outcome, 'fromUpstream'> & { body: string; upstreamHeader: string | undefined }): void {
  const { body, upstreamHeader, ...rest } = o;
  outcomes.push({ ...rest, fromUpstream: upstreamHeader === 'yes' && body.includes(`"url":"${o.url}"`) });
}

/** Plain HTTP on raw sockets: `keepAlive` reuses one connection (reopened if the gateway closes it). */
async function plainWorker(name: string, hosts: string[], keepAlive: boolean): Promise<void> {
  let sock: net.Socket | undefined;
  for (let i = 0; i < MAX_PER_WORKER && !stopTraffic; i++) {
    const host = hosts[i % hosts.length] ?? ECHO;
    const url = `/t/${name}/${i}`;
    if (!sock || sock.destroyed || !keepAlive) {
      sock = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
      sock.on('error', () => undefined);
    }
    const sentAt = now();
    const got = await collect(sock, plainRequest(host, url, !keepAlive), { waitMs: 4000, until: hasResponses(1) });
    const res: ParsedResponse | undefined = parseResponses(got.text)[0];
    record({
      worker: name, via: keepAlive ? 'plain-keepalive' : 'plain-close', host, url, sentAt, doneAt: now(),
      status: res?.status ?? 0, reason: res?.headers['x-tollgate-reason'], body: res?.body ?? '', upstreamHeader: res?.headers['x-upstream'],
      error: res ? undefined : `no response (${got.closed ? 'closed' : 'timed out'}): ${JSON.stringify(got.text.slice(0, 200))}`,
    });
    if (!keepAlive || res?.headers['connection'] === 'close') { sock.destroy(); sock = undefined; }
    await sleep(PAUSE_MS);
  }
  sock?.destroy();
}

/** Intercepted HTTPS through undici's ProxyAgent (CONNECT, then kept-alive requests in the tunnel). */
async function httpsWorker(name: string): Promise<void> {
  for (let i = 0; i < MAX_PER_WORKER && !stopTraffic; i++) {
    const url = `/t/${name}/${i}`;
    const sentAt = now();
    try {
      const res = await request(`https://${ECHO}${url}`, { dispatcher: httpsAgent, headersTimeout: 4000, bodyTimeout: 4000 });
      const body = await res.body.text();
      const h = (k: string) => { const v = res.headers[k]; return Array.isArray(v) ? v.join(',') : v; };
      record({ worker: name, via: 'https-proxyagent', host: ECHO, url, sentAt, doneAt: now(), status: res.statusCode, reason: h('x-tollgate-reason'), body, upstreamHeader: h('x-upstream'), error: undefined });
    } catch (err) {
      record({ worker: name, via: 'https-proxyagent', host: ECHO, url, sentAt, doneAt: now(), status: 0, reason: undefined, body: '', upstreamHeader: undefined, error: String(err) });
    }
    await sleep(PAUSE_MS);
  }
}

/** Intercepted HTTPS on raw sockets, a new CONNECT tunnel for every request (decided at CONNECT, then per request). */
async function httpsTunnelWorker(name: string): Promise<void> {
  for (let i = 0; i < MAX_PER_WORKER && !stopTraffic; i++) {
    const url = `/t/${name}/${i}`;
    const sentAt = now();
    let tunnel: net.Socket | undefined;
    try {
      tunnel = await openTunnel(tg.proxyPort, `${ECHO}:443`, { 'Proxy-Authorization': tg.proxyAuth });
      const tls = await tlsOverTunnel(tunnel, tg.caPem, ECHO);
      const got = await collect(tls, `GET ${url} HTTP/1.1\r\nHost: ${ECHO}\r\nConnection: close\r\n\r\n`, { waitMs: 4000, until: hasResponses(1) });
      tls.destroy();
      const res = parseResponses(got.text)[0];
      record({
        worker: name, via: 'https-new-tunnel', host: ECHO, url, sentAt, doneAt: now(),
        status: res?.status ?? 0, reason: res?.headers['x-tollgate-reason'], body: res?.body ?? '', upstreamHeader: res?.headers['x-upstream'],
        error: res ? undefined : `no response (${got.closed ? 'closed' : 'timed out'}): ${JSON.stringify(got.text.slice(0, 200))}`,
      });
    } catch (err) {
      record({ worker: name, via: 'https-new-tunnel', host: ECHO, url, sentAt, doneAt: now(), status: 0, reason: undefined, body: '', upstreamHeader: undefined, error: String(err) });
    } finally {
      tunnel?.destroy();
    }
    await sleep(PAUSE_MS);
  }
}

/** Traffic kinds that must be seen in every phase: each kind of echo.allowed.test request, and both control hosts. */
const KINDS: Array<{ name: string; is: (o: Outcome) => boolean }> = [
  ...VIAS.map((via) => ({ name: via, is: (o: Outcome) => o.host === ECHO && o.via === via })),
  { name: KEEP, is: (o: Outcome) => o.host === KEEP },
  { name: DENIED, is: (o: Outcome) => o.host === DENIED },
];
const PER_PHASE = 3;
/** Lets traffic run until every kind has `PER_PHASE` requests sent after `since` and answered (at most 4 s). */
async function letTrafficFlow(since: number): Promise<void> {
  const enough = () => KINDS.every((k) => outcomes.filter((o) => k.is(o) && o.sentAt > since).length >= PER_PHASE);
  await until('traffic in this phase', enough, 4000).catch(() => undefined); // the phase checks report a shortfall
}

// ---- in-flight exchanges ---------------------------------------------------------------------
/** Keeps what `s` receives (errors ignored: the checks read what arrived). */
function keepReceived(s: net.Socket) {
  s.on('error', () => undefined);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { chunks, text: () => Buffer.concat(chunks).toString('latin1') };
}

/** A plain keep-alive connection whose response is half sent when the policy switches. */
async function startSlowPlain() {
  const sock = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
  const { chunks, text } = keepReceived(sock);
  sock.write(plainRequest(ECHO, '/slow/plain', false));
  await until('the first half of the slow response', () => text().includes('first half;'), 4000);
  return { sock, text, chunks };
}

/** An SSE stream inside an intercepted tunnel, one event received before the switch. */
async function startSse() {
  const tunnel = await openTunnel(tg.proxyPort, `${ECHO}:443`, { 'Proxy-Authorization': tg.proxyAuth });
  const tls = await tlsOverTunnel(tunnel, tg.caPem, ECHO);
  const { chunks, text } = keepReceived(tls);
  tls.write(`GET /sse/tls HTTP/1.1\r\nHost: ${ECHO}\r\nAccept: text/event-stream\r\n\r\n`);
  await until('the first SSE event', () => text().includes('data: one'), 4000);
  return { tls, text, chunks };
}

/** A POST whose head (and half its body) went out before the switch; the rest is sent after it. */
async function startUpload() {
  const sock = net.connect({ host: '127.0.0.1', port: tg.proxyPort });
  const { text } = keepReceived(sock);
  sock.write(`POST http://${ECHO}/upload/plain HTTP/1.1\r\nHost: ${ECHO}\r\nProxy-Authorization: ${tg.proxyAuth}\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n0123456789`);
  await until('the upload to reach the upstream', () => echoPlain.seen.some((s) => s.url === '/upload/plain'), 4000);
  return { sock, text };
}

t.test('broken reloads under traffic keep the last good policy; the valid one switches atomically; in-flight requests finish', async (t) => {
  const workers = [
    plainWorker('pk1', [ECHO], true),
    plainWorker('pk2', [ECHO], true),
    plainWorker('pc1', [ECHO], false),
    plainWorker('ctl', [KEEP, DENIED], true), // control hosts: the decisions that must never change
    httpsWorker('hs1'),
    httpsWorker('hs2'),
    httpsTunnelWorker('ht1'),
  ];
  const trafficDone = Promise.all(workers);
  t.teardown(async () => { stopTraffic = true; await trafficDone; });
  await letTrafficFlow(now()); // under the good policy

  // -- the broken files, one after another, each with traffic before and after its rejection --
  const rejectedAt: Array<{ name: string; logIndex: number }> = [];
  /** While each broken file was on disk and already rejected: [from, to) in performance.now() time. */
  const brokenPhases: Array<{ name: string; from: number; to: number }> = [];
  for (const b of BROKEN) {
    const from = tg.logs.length;
    writeFileSync(alphaFile, b.content);
    rejectedAt.push({ name: b.name, logIndex: await verdictAfter(from, 'rejected', b.problem) });
    const phaseFrom = now();
    await letTrafficFlow(phaseFrom); // traffic decided while this file is on disk and rejected
    brokenPhases.push({ name: b.name, from: phaseFrom, to: now() });
  }

  // -- exchanges in flight across the switch --
  const slow = await startSlowPlain();
  const sse = await startSse();
  const upload = await startUpload();

  // -- the file written in two steps: the truncated first write is read, then completed --
  let from = tg.logs.length;
  writeFileSync(alphaFile, VALID_NEW.slice(0, TRUNCATED_AT));
  rejectedAt.push({ name: 'a truncated file (first of two writes)', logIndex: await verdictAfter(from, 'rejected', TRUNCATED_PROBLEM) });
  const truncatedFrom = now();
  await letTrafficFlow(truncatedFrom); // the pause between the two writes
  brokenPhases.push({ name: 'a truncated file', from: truncatedFrom, to: now() });
  const validWrittenAt = now();
  from = tg.logs.length;
  appendFileSync(alphaFile, VALID_NEW.slice(TRUNCATED_AT));
  const reloadedIndex = await verdictAfter(from, 'reloaded');
  const switchSeenAt = now(); // the new policy is in force at least since here
  const unansweredAtSwitch = [slow.text(), sse.text(), upload.text()].map((x) => parseResponses(x).length === 0);
  t.equal(tg.logs[reloadedIndex]?.['generation'], 2, 'the completed file is applied as generation 2');
  await letTrafficFlow(switchSeenAt); // traffic under the new policy

  // -- the in-flight exchanges finish after the switch --
  upload.sock.write('abcdefghij');
  releaseInFlight();
  await until('the slow response', () => parseResponses(slow.text()).length === 1, 4000).catch(() => undefined);
  await until('the SSE stream to end', () => parseResponses(sse.text()).length === 1, 4000).catch(() => undefined);
  await until('the upload response', () => parseResponses(upload.text()).length === 1, 4000).catch(() => undefined);
  const inFlightDoneAt = now();
  stopTraffic = true;
  await trafficDone;

  await t.test('the exchanges in flight at the switch finish normally', async (t) => {
    const slowRes = parseResponses(slow.text())[0];
    t.equal(slowRes?.status, 200, 'the slow response decided before the switch completes');
    t.equal(slowRes?.body, 'first half;second half', 'with its whole body');
    const sseRes = parseResponses(sse.text())[0];
    t.equal(sseRes?.status, 200, 'the SSE stream opened in an intercepted tunnel before the switch completes');
    t.equal(sseRes?.body, 'data: one\n\ndata: two\n\ndata: done\n\n', 'with every event, the last ones sent after the switch');
    const upRes = parseResponses(upload.text())[0];
    t.equal(upRes?.status, 200, 'the upload whose body was still arriving at the switch completes');
    t.match(upRes?.body ?? '', /"bodyLength":20/, 'and the upstream got the whole body');
    t.same(unansweredAtSwitch, [true, true, true], 'all three were still unfinished when the new policy was seen in force');
    t.ok(inFlightDoneAt > switchSeenAt);
    for (const url of ['/slow/plain', '/sse/tls', '/upload/plain']) {
      const rec = [...echoPlain.seen, ...echoTls.seen].find((s) => s.url === url);
      t.equal(rec?.aborted, false, `${url}: the upstream finished its response`);
    }

    // The next request on each of those connections is decided by the new policy.
    const nextPlain = await collect(slow.sock, plainRequest(ECHO, '/after/plain', false), { waitMs: 3000, until: hasResponses(1) });
    const np = parseResponses(nextPlain.text)[0];
    t.equal(np?.status, 403, 'the next request on the slow response\'s connection gets 403');
    t.equal(np?.headers['x-tollgate-reason'], 'host_not_allowed');
    const nextTls = await collect(sse.tls, `GET /after/tls HTTP/1.1\r\nHost: ${ECHO}\r\n\r\n`, { waitMs: 3000, until: hasResponses(1) });
    const nt = parseResponses(nextTls.text)[0];
    t.equal(nt?.status, 403, 'the next request in the SSE stream\'s tunnel (opened under the old policy) gets 403');
    t.equal(nt?.headers['x-tollgate-reason'], 'host_not_allowed');
    t.notOk(echoSeen().has('/after/plain') || echoSeen().has('/after/tls'), 'neither reached the upstream');
    slow.sock.destroy();
    sse.tls.destroy();
    upload.sock.destroy();
  });

  const seen = echoSeen();
  const echoOut = outcomes.filter((o) => o.host === ECHO);
  const passed = (o: Outcome) => o.status === 200 && o.fromUpstream && seen.get(o.url) === 1;
  const refused = (o: Outcome) => o.status === 403 && o.reason === 'host_not_allowed' && !seen.has(o.url);
  const brief = (os: Outcome[]) => JSON.stringify(os.slice(0, 5).map((o) => ({ ...o, seen: seen.get(o.url) ?? 0 })));

  await t.test('every request is answered, by the upstream or by a policy refusal, never a gateway error', async (t) => {
    const failed = outcomes.filter((o) => o.error !== undefined || (o.status !== 200 && o.status !== 403));
    t.same(failed.length, 0, `no errors, resets or 5xx (of ${outcomes.length} requests): ${brief(failed)}`);
    const neither = echoOut.filter((o) => !passed(o) && !refused(o));
    t.equal(neither.length, 0, `each echo.allowed.test request either passed and reached its upstream once, or was refused and reached nothing: ${brief(neither)}`);
  });

  await t.test('while the files were broken, the last good policy decided every request', async (t) => {
    // Every kind of request was decided while each broken file was on disk and rejected.
    for (const ph of brokenPhases) {
      const counts = KINDS.map((k) => `${k.name} ${outcomes.filter((o) => k.is(o) && o.sentAt > ph.from && o.doneAt < ph.to).length}`);
      t.ok(KINDS.every((k) => outcomes.filter((o) => k.is(o) && o.sentAt > ph.from && o.doneAt < ph.to).length >= PER_PHASE), `traffic flowed while ${ph.name} was in place (${counts.join(', ')})`);
    }
    const before = echoOut.filter((o) => o.doneAt < validWrittenAt);
    const notPassed = before.filter((o) => !passed(o));
    t.equal(notPassed.length, 0, `every echo.allowed.test request answered before the valid file was written passed (${before.length}): ${brief(notPassed)}`);
    // The check below for the new policy would fail on these: they are what "no reload" looks like.
    t.equal(before.filter(refused).length, 0, 'none of them would pass the check applied after the switch');
    const ctl = outcomes.filter((o) => o.worker === 'ctl');
    const keepBad = ctl.filter((o) => o.host === KEEP && !(o.status === 200 && o.fromUpstream));
    const deniedBad = ctl.filter((o) => o.host === DENIED && !(o.status === 403 && o.reason === 'host_not_allowed'));
    t.equal(keepBad.length, 0, `keep.allowed.test (allowed by both policies) always passed: ${brief(keepBad)}`);
    t.equal(deniedBad.length, 0, `denied.test (allowed first by every broken file) always got 403: ${brief(deniedBad)}`);
    t.equal(denied.seen.length + denied.tcpConnections, 0, 'nothing ever reached denied.test\'s upstream');
  });

  await t.test('after the valid change, echo.allowed.test gets 403 and nothing reaches it', async (t) => {
    const after = echoOut.filter((o) => o.sentAt > switchSeenAt);
    for (const via of VIAS) {
      t.ok(after.filter((o) => o.via === via).length >= PER_PHASE, `${via}: traffic flowed after the switch (${after.filter((o) => o.via === via).length} requests)`);
    }
    const keepAfter = outcomes.filter((o) => o.host === KEEP && o.sentAt > switchSeenAt);
    t.ok(keepAfter.length >= PER_PHASE && keepAfter.every((o) => o.status === 200 && o.fromUpstream), `keep.allowed.test still passes under the new policy (${keepAfter.length} requests)`);
    const notRefused = after.filter((o) => !refused(o));
    t.equal(notRefused.length, 0, `every request sent after the switch got 403 host_not_allowed and reached nothing (${after.length}): ${brief(notRefused)}`);
    const lateArrivals = [...seen.keys()].filter((url) => after.some((o) => o.url === url));
    t.same(lateArrivals, [], 'no request sent after the switch arrived at either echo.allowed.test upstream');
  });

  await t.test('the switch is atomic: once a request was refused, no later one passed', async (t) => {
    const refusals = echoOut.filter(refused);
    t.ok(refusals.length > 0, 'there were refusals');
    const firstRefusalDone = Math.min(...refusals.map((o) => o.doneAt));
    const lastPassSent = Math.max(...echoOut.filter(passed).map((o) => o.sentAt));
    const passedAfterARefusal = echoOut.filter((o) => o.sentAt > firstRefusalDone && passed(o));
    t.equal(passedAfterARefusal.length, 0, `no request sent after the first refusal came back passed: ${brief(passedAfterARefusal)}`);
    t.ok(firstRefusalDone > validWrittenAt, 'and the first refusal came only after the valid file was written');
    t.ok(lastPassSent < switchSeenAt, 'the last request that passed was sent before the new policy was seen in force');
    // The gateway's own order: its exchange log holds no refusal of echo.allowed.test before the
    // reload line, and no request to it allowed after the reload that was not already in flight.
    const echoLog = tg.logs.map((l, i) => ({ l, i })).filter(({ l }) => l['msg'] === 'exchange' && l['host'] === ECHO && l['kind'] === 'request');
    const deniedBeforeReload = echoLog.filter(({ l, i }) => i < reloadedIndex && l['decision'] === 'deny');
    t.same(deniedBeforeReload.map(({ l }) => l), [], 'the exchange log shows no refusal of echo.allowed.test before the reload');
    const inFlightPaths = new Set(['/slow/plain', '/sse/tls', '/upload/plain']);
    const sentBeforeSwitch = new Set(echoOut.filter((o) => o.sentAt < switchSeenAt).map((o) => o.url));
    const allowedAfterReload = echoLog.filter(({ l, i }) => i > reloadedIndex && l['decision'] === 'allow').map(({ l }) => String(l['path']));
    const late = allowedAfterReload.filter((p) => !inFlightPaths.has(p) && !sentBeforeSwitch.has(p));
    t.same(late, [], 'every request the exchange log shows allowed after the reload was sent before the switch');
  });

  await t.test('each broken file produced its reload failure signal; the valid one its reload signal', async (t) => {
    t.equal(rejectedAt.length, BROKEN.length + 1, 'a rejection log line for each broken file, matched by its problem');
    t.ok(rejectedAt.every((r, i) => i === 0 || r.logIndex > (rejectedAt[i - 1]?.logIndex ?? -1)), 'in the order they were written');
    const rejections = tg.logs.filter((l) => l['msg'] === REJECTED);
    const reloads = tg.logs.filter((l) => l['msg'] === RELOADED);
    t.ok(rejections.every((l) => l['generation'] === 1), 'every rejection kept generation 1');
    t.equal(reloads.length, 1, 'one reload applied');
    const metrics = await (await request(`${tg.adminUrl}/metrics`)).body.text();
    t.match(metrics, new RegExp(`^tollgate_policy_reloads_total\\{result="rejected"\\} ${rejections.length}$`, 'm'), 'the metric counts every rejection');
    t.match(metrics, /^tollgate_policy_reloads_total\{result="applied"\} 1$/m, 'and the one applied reload');
    t.match(metrics, /^tollgate_policy_reload_ok 1$/m);
    t.match(metrics, /^tollgate_policy_generation 2$/m);
    const events = () => {
      const db = new BetterSqlite3(path.join(tg.dir, 'data/tollgate.db'), { readonly: true });
      try {
        return db.prepare("SELECT type, detail FROM audit_events WHERE type IN ('policy_rejected', 'policy_reloaded') ORDER BY seq").all() as Array<{ type: string; detail: string }>;
      } finally {
        db.close();
      }
    };
    await until('the reload audit events', () => events().length >= rejections.length + reloads.length, 5000).catch(() => undefined);
    const rows = events().map((e) => ({ type: e.type, detail: JSON.parse(e.detail) as { generation: number; problems: string[] } }));
    const rejectedRows = rows.filter((r) => r.type === 'policy_rejected');
    t.equal(rejectedRows.length, rejections.length, 'one policy_rejected audit event per rejection');
    for (const [i, b] of BROKEN.entries()) {
      t.ok(rejectedRows.some((r) => b.problem.test(r.detail.problems[0] ?? '')), `an audit event for ${b.name} (#${i + 1})`);
    }
    t.ok(rejectedRows.some((r) => TRUNCATED_PROBLEM.test(r.detail.problems[0] ?? '')), 'an audit event for the truncated file');
    t.same(rows.filter((r) => r.type === 'policy_reloaded').map((r) => r.detail.generation), [2], 'one policy_reloaded audit event, generation 2');
  });
});
