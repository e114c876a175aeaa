// Security cases 2.15, 8.05 and 8.06 (../shared/security-cases.md): edges of tunnels and bodies.
// 2.15 — a pass-through (`direct`) tunnel dials its upstream only after a ClientHello whose SNI is
// the CONNECT host: no SNI, non-TLS bytes or another (allowed) host's SNI close the tunnel and the
// upstream accepts no TCP connection (a correct SNI is the positive control).
// 8.05 — the intercepting endpoint offers only http/1.1: `h2` is never negotiated, and the HTTP/2
// connection preface is refused as a malformed HTTP/1.1 request, never forwarded.
// 8.06 — a metered request body larger than `metering.max_request_bytes` (chunked or with a
// Content-Length) is refused 413 `payload_too_large` in the provider's error shape, nothing reaches
// the provider, and the gateway's memory does not grow with the body.
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import t from 'tap';
import { peekClientHello } from '../../../src/classify/tls-client-hello.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, hasResponses, openTunnel, parseResponses, rawSend, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream-server.ts';

const PASS = 'pass.example.test'; // direct (pass-through)
const OTHER = 'other.example.test'; // direct too: an allowed host for a fronting SNI
const API = 'api.allowed.test'; // intercepted
const ANT = 'api.anthropic.com'; // intercepted and metered
const LIMIT = 4 * 1024 * 1024; // metering.max_request_bytes for this gateway
const BODY = 3 * LIMIT;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const pki = await makeTestCa();
const pair = await pki.issue([PASS, OTHER, API, ANT]);
const pass = await startUpstream({ tls: pair });
const other = await startUpstream({ tls: pair });
const api = await startUpstream({ tls: pair });
const ant = await startUpstream({ tls: pair });
const tg = await startTestGateway({
  upstreams: { [PASS]: pass.port, [OTHER]: other.port, [API]: api.port, [ANT]: ant.port },
  upstreamCaPem: pki.caPem,
  alphaRules: [
    `  - { host: ${PASS}, action: direct }`,
    `  - { host: ${OTHER}, action: direct }`,
    `  - { host: ${API}, action: allow }`,
    `  - { host: ${ANT}, action: allow }`,
  ].join('\n'),
  extraYaml: `metering: { max_request_bytes: ${LIMIT} }`,
});
const auth = { 'Proxy-Authorization': tg.proxyAuth };
const open = new Set<net.Socket>();
t.teardown(async () => {
  for (const s of open) s.destroy();
  await tg.stop();
  await Promise.all([pass.close(), other.close(), api.close(), ant.close()]);
});

const settle = (ms = 100) => new Promise((r) => setTimeout(r, ms));
const tunnel = async (authority: string) => {
  const s = await openTunnel(tg.proxyPort, authority, auth);
  open.add(s);
  s.on('error', () => undefined);
  return s;
};
const counts = (up: TestUpstream) => ({ tcp: up.tcpConnections, tls: up.connections, seen: up.seen.length, clientErrors: up.clientErrors });
const exchangeFor = (host: string, n: number) => tg.exchanges().filter((e) => e['host'] === host).slice(n);

/** The first flight of a real Node TLS client (its ClientHello), captured without any network. */
function clientHello(servername: string, alpn = ['http/1.1']): Promise<Buffer> {
  return new Promise((resolve) => {
    const d = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        resolve(Buffer.from(chunk));
        cb();
        setImmediate(() => c.destroy());
      },
    });
    const c = tls.connect({ socket: d as unknown as net.Socket, servername, ALPNProtocols: alpn });
    c.on('error', () => undefined);
  });
}

t.test('2.15 pass-through tunnels: only a ClientHello naming the CONNECT host is dialled', async (t) => {
  const withSni = await clientHello(PASS);
  const noSni = await clientHello('');
  const fronted = await clientHello(OTHER);
  // the fixtures are what they claim to be
  t.same(peekClientHello(withSni), { kind: 'client_hello', serverName: PASS }, 'control hello carries SNI = CONNECT host');
  t.same(peekClientHello(noSni), { kind: 'client_hello', serverName: undefined }, 'hello without a server_name extension');
  t.same(peekClientHello(fronted), { kind: 'client_hello', serverName: OTHER }, 'hello naming another allowed host');

  t.test('positive control: a matching SNI reaches the upstream (raw hello and a full TLS exchange)', async (t) => {
    const before = counts(pass);
    const raw = await tunnel(`${PASS}:443`);
    const r = await collect(raw, withSni, { waitMs: 2000, until: (x) => x.length > 0 });
    raw.destroy();
    t.equal(r.text.charCodeAt(0), 0x16, 'the upstream answered the raw ClientHello with a TLS handshake record');
    await settle();
    t.equal(pass.tcpConnections, before.tcp + 1, 'the upstream accepted one TCP connection for it');
    const s = await tlsOverTunnel(await tunnel(`${PASS}:443`), pki.caPem, PASS);
    t.equal((s.getPeerCertificate().issuer as { CN?: string }).CN, 'Tollgate Test Upstream CA', 'the upstream certificate, not a minted leaf');
    const res = await collect(s, `GET /through HTTP/1.1\r\nHost: ${PASS}\r\nConnection: close\r\n\r\n`, { waitMs: 2000 });
    t.equal(parseResponses(res.text)[0]?.status, 200);
    t.equal(pass.tcpConnections, before.tcp + 2, 'a second TCP connection');
    t.equal(pass.connections, before.tls + 1, 'whose TLS handshake completed (the raw hello\'s never did)');
    t.equal(pass.seen.at(-1)?.url, '/through');
    s.destroy();
    await settle(150); // these tunnels' exchange lines are written once they close
  });

  const refused: Array<[string, Buffer, string]> = [
    ['(a) a ClientHello without SNI', noSni, 'sni_mismatch'],
    ['(b) plain HTTP bytes instead of TLS', Buffer.from(`GET / HTTP/1.1\r\nHost: ${PASS}\r\n\r\n`, 'latin1'), 'malformed_request'],
    [`(c) a ClientHello naming another allowed direct host (${OTHER})`, fronted, 'sni_mismatch'],
    ['(c\') a ClientHello naming an allowed intercepted host', await clientHello(API), 'sni_mismatch'],
  ];
  for (const [name, bytes, reason] of refused) {
    t.test(`${name}: the tunnel is closed and no upstream is dialled`, async (t) => {
      const before = { pass: counts(pass), other: counts(other), api: counts(api) };
      const n = exchangeFor(PASS, 0).length;
      const sock = await tunnel(`${PASS}:443`); // the 200 comes first: the SNI is read after it
      const r = await collect(sock, bytes, { waitMs: 2000 });
      t.ok(r.closed, 'the gateway closed the tunnel');
      t.equal(r.text, '', 'not a byte came back (no upstream ServerHello, no HTTP answer)');
      await settle();
      t.same(counts(pass), before.pass, `NOFWD: ${PASS} accepted no TCP connection`);
      t.same(counts(other), before.other, `NOFWD: ${OTHER} accepted no TCP connection`);
      t.same(counts(api), before.api, `NOFWD: ${API} accepted no TCP connection`);
      const ex = exchangeFor(PASS, n);
      t.equal(ex.length, 1, 'one exchange was logged for the tunnel');
      t.equal(ex[0]?.['reason'], reason, `logged as ${reason}`);
    });
  }

  t.test('a real TLS client with a fronting SNI fails its handshake', async (t) => {
    const before = counts(other);
    const beforePass = counts(pass);
    await t.rejects(tlsOverTunnel(await tunnel(`${PASS}:443`), pki.caPem, OTHER));
    await t.rejects(tlsOverTunnel(await tunnel(`${PASS}:443`), pki.caPem, ''), 'no SNI either');
    await settle();
    t.same(counts(other), before);
    t.same(counts(pass), beforePass);
  });
});

t.test('8.05 the intercepted leg never speaks HTTP/2', async (t) => {
  const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  // a SETTINGS frame and a HEADERS frame (GET / on stream 1, HPACK static indices) after the preface
  const FRAMES = Buffer.concat([
    Buffer.from(PREFACE, 'latin1'),
    Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]),
    Buffer.from([0, 0, 4, 0x01, 0x05, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41]),
  ]);

  t.test('offered h2 and http/1.1: http/1.1 is chosen; the preface is refused 400 and not forwarded', async (t) => {
    const before = counts(api);
    const s = await tlsOverTunnel(await tunnel(`${API}:443`), tg.caPem, API, ['h2', 'http/1.1']);
    t.equal(s.alpnProtocol, 'http/1.1', 'ALPN: http/1.1, never h2');
    const r = await collect(s, FRAMES, { waitMs: 2000, until: hasResponses(1) });
    const res = parseResponses(r.text);
    t.equal(res[0]?.status, 400, 'the preface is a malformed HTTP/1.1 request');
    t.equal(res[0]?.headers['x-tollgate-reason'], 'malformed_request');
    t.equal(res.length, 1, 'one answer, nothing for the frames that followed');
    const closed = r.closed || (await collect(s, undefined, { waitMs: 1500 })).closed;
    t.ok(closed, 'the connection is closed after the 400');
    await settle();
    t.same(counts(api), before, 'NOFWD: the upstream saw no connection and no request');
  });

  t.test('offered h2 only: the handshake fails or negotiates nothing; h2 frames are still refused', async (t) => {
    const before = counts(api);
    let s: tls.TLSSocket | undefined;
    try {
      s = await tlsOverTunnel(await tunnel(`${API}:443`), tg.caPem, API, ['h2']);
    } catch (err) {
      t.pass(`the handshake failed (${(err as Error).message})`);
    }
    if (s) {
      t.notOk(s.alpnProtocol, `no protocol negotiated (${String(s.alpnProtocol)})`);
      const r = await collect(s, FRAMES, { waitMs: 2000, until: hasResponses(1) });
      t.equal(parseResponses(r.text)[0]?.status, 400, 'the preface gets a 400');
      t.notOk(r.text.includes('\x00\x00'), 'no HTTP/2 frame came back');
      s.destroy();
    }
    await settle();
    t.same(counts(api), before, 'NOFWD: the upstream saw nothing');
  });

  t.test('the preface on the plain proxy listener is refused too', async (t) => {
    const r = await rawSend(tg.proxyPort, FRAMES, { waitMs: 2000 });
    t.equal(parseResponses(r.text)[0]?.status, 400);
    t.ok(r.closed, 'closed');
  });
});

/**
 * Sends a metered request with a `size`-byte JSON body on `sock`, respecting backpressure, and
 * stops once the gateway answers, closes, or stops reading (no drain for 500 ms). The client never
 * holds the body: one 64 KiB chunk is written again and again.
 */
async function sendBig(sock: net.Socket, head: string, size: number, chunked: boolean): Promise<{ text: string; closed: boolean; sent: number; stalled: boolean }> {
  const prefix = Buffer.from('{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"', 'latin1');
  const suffix = Buffer.from('"}]}', 'latin1');
  const filler = Buffer.alloc(64 * 1024, 0x61);
  const chunks: Buffer[] = [];
  let closed = sock.destroyed;
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.on('error', () => undefined);
  sock.once('close', () => { closed = true; });
  const text = () => Buffer.concat(chunks).toString('latin1');
  const answered = () => hasResponses(1)(text());
  let sent = 0;
  let stalled = false;
  const write = (b: Buffer): boolean => {
    sent += b.length;
    if (!chunked) return sock.write(b);
    sock.write(`${b.length.toString(16)}\r\n`);
    sock.write(b);
    return sock.write('\r\n');
  };
  const drained = () => new Promise<boolean>((resolve) => {
    const done = (v: boolean) => { clearTimeout(timer); sock.off('drain', onDrain); sock.off('close', onClose); resolve(v); };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), 500);
    sock.once('drain', onDrain);
    sock.once('close', onClose);
  });
  sock.write(head);
  let left = size - prefix.length - suffix.length;
  let ok = write(prefix);
  while (left > 0 && !closed && !answered()) {
    if (!ok && !(await drained())) {
      stalled = !closed && !answered();
      break;
    }
    const n = Math.min(left, filler.length);
    ok = write(n === filler.length ? filler : filler.subarray(0, n));
    left -= n;
  }
  if (left <= 0 && !closed) {
    write(suffix);
    if (chunked) sock.write('0\r\n\r\n');
  }
  // the answer and the close that follows it (bounded)
  const until = Date.now() + (stalled ? 200 : 1500);
  while (!closed && Date.now() < until) await settle(20);
  return { text: text(), closed, sent, stalled };
}

// An oversized metered body once crashed the gateway: onRequest's catch called markClosing(req.socket)
// after Node had set req.socket to null (the body read was abandoned), and the TypeError escaped the
// un-awaited handler as an unhandled rejection — the process exited, everyone's traffic with it.

t.test('8.06 a metered body over metering.max_request_bytes is refused 413, unforwarded, with bounded memory', async (t) => {
  // The gateway runs in this process: a rejection it leaves unhandled would end the whole run.
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => { rejections.push(err); };
  process.on('unhandledRejection', onRejection);
  t.teardown(() => { process.off('unhandledRejection', onRejection); });
  const head = (framing: string) => `POST /v1/messages HTTP/1.1\r\nHost: ${ANT}\r\nContent-Type: application/json\r\nanthropic-version: 2023-06-01\r\n${framing}\r\n`;
  const variants: Array<[string, string, boolean]> = [
    ['chunked (no Content-Length)', 'Transfer-Encoding: chunked\r\n', true],
    ['with a Content-Length', `Content-Length: ${BODY}\r\n`, false],
  ];
  for (const [name, framing, chunked] of variants) {
    t.test(name, async (t) => {
      const before = counts(ant);
      const nRejections = rejections.length;
      const s = await tlsOverTunnel(await tunnel(`${ANT}:443`), tg.caPem, ANT);
      gc();
      const rss0 = process.memoryUsage().rss;
      const r = await sendBig(s, head(framing), BODY, chunked);
      const rss1 = process.memoryUsage().rss;
      s.destroy();
      const res = parseResponses(r.text)[0];
      t.same(rejections.slice(nRejections).map(String), [], 'the gateway left no rejection unhandled (it would exit the process)');
      t.equal(res?.status, 413, `413 (got ${res?.status ?? JSON.stringify(r.text.slice(0, 120))})`);
      t.equal(res?.headers['x-tollgate-reason'], 'payload_too_large', 'X-Tollgate-Reason');
      t.equal(res?.headers['x-tollgate-decision'], 'error', 'X-Tollgate-Decision');
      let body: { type?: string; error?: { type?: string; message?: string }; tollgate?: { reason?: string } } = {};
      try { body = JSON.parse(res?.body ?? '{}') as typeof body; } catch { /* asserted below */ }
      t.equal(body.type, 'error', 'the Anthropic error shape');
      t.equal(body.error?.type, 'request_too_large', 'error.type request_too_large');
      t.equal(body.tollgate?.reason, 'payload_too_large', 'tollgate.reason');
      t.match(body.error?.message ?? '', String(LIMIT), 'the message names the limit');
      t.ok(r.closed, 'the gateway closed the connection after the refusal');
      t.ok(r.sent < BODY, `the gateway stopped reading early (${(r.sent / 1048576).toFixed(1)} of ${BODY / 1048576} MiB written${r.stalled ? ', then no drain' : ''})`);
      await settle();
      t.same(counts(ant), before, 'NOFWD: the provider saw no connection and no request');
      const growth = rss1 - rss0;
      t.ok(growth < BODY / 2, `RSS grew ${(growth / 1048576).toFixed(1)} MiB for a ${BODY / 1048576} MiB body (limit ${LIMIT / 1048576} MiB)`);
    });
  }

  t.test('a declared Content-Length over the limit with Expect: 100-continue', async (t) => {
    const before = counts(ant);
    const s = await tlsOverTunnel(await tunnel(`${ANT}:443`), tg.caPem, ANT);
    const r = await collect(s, head(`Content-Length: ${BODY}\r\nExpect: 100-continue\r\n`), { waitMs: 600, until: hasResponses(1) });
    s.destroy();
    const statuses = parseResponses(r.text).map((x) => x.status);
    t.notOk(statuses.includes(100), `no 100 Continue for a body the gateway will refuse (got ${statuses.join(', ') || 'nothing'})`);
    t.equal(statuses.find((x) => x >= 200), 413, 'the refusal comes without the body being sent');
    await settle();
    t.same(counts(ant), before, 'NOFWD');
  });
});
