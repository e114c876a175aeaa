// Security case 2.03 (../shared/security-cases.md): DNS rebinding between check and connect.
// `rebind.allowed.test` exists only in a test DNS server (TTL 0, not in `upstreams:`). Its first
// answer is a permitted address; every later answer is loopback. The permitted address stands in
// for the case's public 203.0.113.10, which cannot be dialled offline: it is 127.0.0.2, which a
// policy IP rule names, with real origins listening on it. The rebound answer (127.0.0.1, and
// ::1 when the machine has it) has raw-TCP canaries on the SAME ports, so only the address
// differs: a gateway that checks one answer and dials another is seen as a canary accept (or as a
// failed request). Oracle: every request reaches 127.0.0.2 or is denied, the canaries accept
// nothing, and the resolver sees at most one lookup (one A, one AAAA query) per decision.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import t, { type Test } from 'tap';
import { startTestDns } from '../../helpers/dns-server.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel, type ParsedResponse } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

const HOST = 'rebind.allowed.test';
const GOOD = '127.0.0.2';
const ROUNDS = 20;
const A = 1;
const AAAA = 28;

interface Listener { server: net.Server; accepts: number; localAddresses: string[] }

function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    (server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    server.close(() => resolve());
  });
}

/** Counts accepts and the local address each one arrived on. */
function watch(server: net.Server, event: 'connection' | 'secureConnection'): Listener {
  const l: Listener = { server, accepts: 0, localAddresses: [] };
  server.on(event, (s: net.Socket) => {
    l.accepts++;
    l.localAddresses.push(s.localAddress ?? '?');
  });
  return l;
}

/** The origin on the permitted address: says who it is and on which address it was reached; closes every connection. */
const answer = (req: http.IncomingMessage, res: http.ServerResponse) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ origin: 'good', local: req.socket.localAddress, url: req.url });
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
};

/** A raw TCP canary: any accept is a failure. */
function canaryServer(): Listener {
  const server = net.createServer((s) => { s.on('error', () => undefined); s.destroy(); });
  return watch(server, 'connection');
}

const pki = await makeTestCa();
const pair = await pki.issue([HOST]);

const v6 = await (async () => {
  const probe = net.createServer();
  try {
    await listenOn(probe, '::1', 0);
    return true;
  } catch {
    return false;
  } finally {
    await closeServer(probe);
  }
})();
const REBOUND = v6 ? ['127.0.0.1', '::1'] : ['127.0.0.1'];

/**
 * The good origins on 127.0.0.2 (HTTP on P, HTTPS on Q) and canaries on every rebound address at
 * P and Q. Bounded retries when a port is taken on another loopback address.
 */
async function startOrigins(): Promise<{ plainPort: number; tlsPort: number; goodHttp: Listener; goodHttps: Listener; canaries: Array<Listener & { where: string }> }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const goodHttp = watch(http.createServer(answer), 'connection');
    const goodHttps = watch(https.createServer({ cert: pair.certPem, key: pair.keyPem }, answer), 'secureConnection');
    const canaries: Array<Listener & { where: string }> = [];
    try {
      const plainPort = await listenOn(goodHttp.server, GOOD, 0);
      const tlsPort = await listenOn(goodHttps.server, GOOD, 0);
      for (const port of [plainPort, tlsPort]) {
        for (const addr of REBOUND) {
          const c = Object.assign(canaryServer(), { where: `${addr}:${port}` }); // the same object the counter updates
          canaries.push(c);
          await listenOn(c.server, addr, port);
        }
      }
      return { plainPort, tlsPort, goodHttp, goodHttps, canaries };
    } catch (err) {
      lastError = err;
      await Promise.all([goodHttp, goodHttps, ...canaries].map((l) => closeServer(l.server)));
    }
  }
  throw new Error(`cannot bind the origins and canaries on the same ports: ${String(lastError)}`);
}

const origins = await startOrigins();
const { plainPort: P, tlsPort: Q, goodHttp, goodHttps, canaries } = origins;
const dns = await startTestDns(0);
const tg = await startTestGateway({
  upstreamCaPem: pki.caPem,
  alphaRules: [
    `  - { host: ${HOST}, action: allow, ports: [${P}, ${Q}] }`,
    // Names only the first answer; 127.0.0.1 and ::1 stay refused by the address guard.
    `  - { host: ${GOOD}, action: allow, ports: [${P}, ${Q}] }`,
  ].join('\n'),
  extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: 1000 }`,
});
t.teardown(async () => {
  await tg.stop();
  await Promise.all([goodHttp, goodHttps, ...canaries].map((l) => closeServer(l.server)));
  await dns.close();
});

const authLine = `Proxy-Authorization: ${tg.proxyAuth}\r\n`;

/**
 * Makes the next lookup of HOST answer GOOD and every later one REBOUND (per query type: the
 * resolver asks A and AAAA once per lookup). Returns a mark for `lookupsSince`.
 */
function arm(): number {
  const used = new Map<number, number>();
  dns.records.set(HOST, () => {
    const type = dns.queries.at(-1)?.type ?? 0; // the helper logs the query before it asks for the answer
    const n = (used.get(type) ?? 0) + 1;
    used.set(type, n);
    return n === 1 ? [GOOD] : REBOUND;
  });
  return dns.queries.length;
}

function lookupsSince(mark: number): { a: number; aaaa: number } {
  const qs = dns.queries.slice(mark).filter((q) => q.name === HOST);
  return { a: qs.filter((q) => q.type === A).length, aaaa: qs.filter((q) => q.type === AAAA).length };
}

type Outcome = 'good' | 'denied' | 'other';

/** 'good': the origin on 127.0.0.2 answered; 'denied': a Tollgate 403 deny; anything else is 'other'. */
function classify(res: ParsedResponse | undefined): { outcome: Outcome; detail: string } {
  if (!res) return { outcome: 'other', detail: 'no response' };
  const detail = `${res.status} ${res.headers['x-tollgate-reason'] ?? ''} ${res.body.slice(0, 120)}`.trim();
  if (res.status === 200) {
    try {
      const body = JSON.parse(res.body) as { origin?: string; local?: string };
      if (body.origin === 'good' && body.local === GOOD) return { outcome: 'good', detail };
    } catch {
      // not the good origin's answer
    }
    return { outcome: 'other', detail };
  }
  if (res.status === 403 && res.headers['x-tollgate-decision'] === 'deny') return { outcome: 'denied', detail };
  return { outcome: 'other', detail };
}

async function plainRequest(i: number): Promise<{ outcome: Outcome; detail: string; lookups: { a: number; aaaa: number } }> {
  const mark = dns.queries.length;
  const r = await rawSend(tg.proxyPort, `GET http://${HOST}:${P}/plain/${i} HTTP/1.1\r\nHost: ${HOST}:${P}\r\n${authLine}Connection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
  return { ...classify(parseResponses(r.text)[0]), lookups: lookupsSince(mark) };
}

function assertOrigins(t: Test, label: string): void {
  for (const c of canaries) t.equal(c.accepts, 0, `${label}: the loopback canary on ${c.where} accepted nothing`);
  const locals = [...goodHttp.localAddresses, ...goodHttps.localAddresses];
  t.same([...new Set(locals)].filter((a) => a !== GOOD), [], `${label}: every connection the origins accepted arrived on ${GOOD}`);
  const addresses = tg.exchanges().filter((e) => e['host'] === HOST && e['address'] !== undefined).map((e) => e['address']);
  t.same([...new Set(addresses)].filter((a) => a !== GOOD), [], `${label}: every vetted address the gateway recorded is ${GOOD}`);
}

t.test('the case as written: the first answer is permitted, every later one is loopback', async (t) => {
  const mark = arm();
  const outcomes: Array<{ kind: string; outcome: Outcome; detail: string }> = [];
  let decisions = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const p = await plainRequest(i);
    decisions++;
    outcomes.push({ kind: `plain ${i}`, outcome: p.outcome, detail: p.detail });
    t.ok(p.lookups.a <= 1 && p.lookups.aaaa <= 1, `plain ${i}: at most one lookup for its decision (A ${p.lookups.a}, AAAA ${p.lookups.aaaa})`);
    const before = dns.queries.length;
    const c = await rawSend(tg.proxyPort, `CONNECT ${HOST}:${Q} HTTP/1.1\r\nHost: ${HOST}:${Q}\r\n${authLine}\r\n`, { waitMs: 5000, until: hasResponses(1) });
    decisions++;
    const res = parseResponses(c.text)[0];
    outcomes.push({ kind: `CONNECT ${i}`, ...classify(res) });
    const l = lookupsSince(before);
    t.ok(l.a <= 1 && l.aaaa <= 1, `CONNECT ${i}: at most one lookup for its decision (A ${l.a}, AAAA ${l.aaaa})`);
  }
  t.equal(outcomes[0]?.outcome, 'good', `the first decision saw the permitted answer and reached ${GOOD}: ${outcomes[0]?.detail ?? ''}`);
  const bad = outcomes.filter((o) => o.outcome === 'other');
  t.same(bad, [], 'every request reached the permitted address or was denied');
  const otherDenials = outcomes.filter((o) => o.outcome === 'denied' && !o.detail.startsWith('403 ip_not_allowed'));
  t.same(otherDenials, [], 'every denial is the address guard refusing the rebound answer (ip_not_allowed)');
  const total = lookupsSince(mark);
  t.ok(total.a >= 1 && total.a <= decisions, `A queries (${total.a}) ≤ decisions (${decisions})`);
  t.ok(total.aaaa <= decisions, `AAAA queries (${total.aaaa}) ≤ decisions (${decisions})`);
  assertOrigins(t, 'as written');
});

t.test('every decision is rebound right after its check: plain requests and intercepted CONNECTs', async (t) => {
  const httpBefore = goodHttp.accepts;
  for (let i = 0; i < ROUNDS; i++) {
    arm();
    const p = await plainRequest(i);
    t.equal(p.outcome, 'good', `plain ${i}: the origin on ${GOOD} answered (${p.detail})`);
    t.ok(p.lookups.a <= 1 && p.lookups.aaaa <= 1, `plain ${i}: one lookup for its decision (A ${p.lookups.a}, AAAA ${p.lookups.aaaa})`);
  }
  t.equal(goodHttp.accepts - httpBefore, ROUNDS, `each plain request was a fresh connection to ${GOOD}:${P} (the origin closes them)`);

  const httpsBefore = goodHttps.accepts;
  for (let i = 0; i < ROUNDS; i++) {
    // The CONNECT is one decision, the request inside the intercepted tunnel another: each gets a
    // fresh "permitted first, loopback after" answer.
    const connectMark = arm();
    const tunnel = await openTunnel(tg.proxyPort, `${HOST}:${Q}`, { 'Proxy-Authorization': tg.proxyAuth });
    const c = lookupsSince(connectMark);
    t.ok(c.a <= 1 && c.aaaa <= 1, `CONNECT ${i}: one lookup for the CONNECT decision (A ${c.a}, AAAA ${c.aaaa})`);
    const sock = await tlsOverTunnel(tunnel, tg.caPem, HOST);
    const innerMark = arm();
    const r = await collect(sock, `GET /tunnel/${i} HTTP/1.1\r\nHost: ${HOST}:${Q}\r\nConnection: close\r\n\r\n`, { waitMs: 5000, until: hasResponses(1) });
    sock.destroy();
    tunnel.destroy();
    const res = classify(parseResponses(r.text)[0]);
    t.equal(res.outcome, 'good', `CONNECT ${i}: the request in the tunnel reached ${GOOD} (${res.detail})`);
    const inner = lookupsSince(innerMark);
    t.ok(inner.a <= 1 && inner.aaaa <= 1, `CONNECT ${i}: at most one lookup for the inner request's decision (A ${inner.a}, AAAA ${inner.aaaa})`);
  }
  t.equal(goodHttps.accepts - httpsBefore, ROUNDS, `each tunnelled request was a fresh TLS connection to ${GOOD}:${Q}`);
  assertOrigins(t, 'rebound after each check');
});
