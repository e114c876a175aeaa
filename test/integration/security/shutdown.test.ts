// Security case 7.08 (../shared/security-cases.md), in part: graceful shutdown. Requests in flight
// when stop() is called complete (plain and inside an intercepted tunnel); new connections are
// refused at once; idle connections are closed at once; open tunnels get the drain deadline.
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import t from 'tap';
import { collect, hasResponses, parseResponses } from '../../helpers/raw-client.ts';
import { API, ECHO, startSecurityFixture } from '../../helpers/security-fixture.ts';

const DELAY_MS = 600;
const delayed = (req: IncomingMessage, res: ServerResponse) => {
  const wait = req.url?.includes('in-flight') ? DELAY_MS : 0;
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`done ${req.url}`);
  }, wait);
};

function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

function closedWithin(sock: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (sock.destroyed) { resolve(true); return; }
    const timer = setTimeout(() => resolve(false), ms);
    sock.once('close', () => { clearTimeout(timer); resolve(true); });
  });
}

t.test('plain path: the in-flight request completes, idle and new connections do not wait', async (t) => {
  const fx = await startSecurityFixture({ echoHandler: delayed });
  t.teardown(() => fx.close());
  const port = fx.tg.proxyPort;
  // An idle keep-alive connection (one request served, then nothing).
  const idle = await fx.plain.open();
  const warm = await collect(idle, `GET http://${ECHO}/warm HTTP/1.1\r\nHost: ${ECHO}\r\n${fx.authLine}\r\n`, { waitMs: 3000, until: hasResponses(1), destroyOnTimeout: false });
  t.equal(parseResponses(warm.text)[0]?.status, 200);
  const busy = await fx.plain.open();
  const done = collect(busy, `GET http://${ECHO}/in-flight HTTP/1.1\r\nHost: ${ECHO}\r\n${fx.authLine}\r\n`, { waitMs: 4000, until: hasResponses(1), destroyOnTimeout: false });
  for (let i = 0; i < 50 && !fx.echo.seen.some((r) => r.url === '/in-flight'); i++) await new Promise((r) => setTimeout(r, 10));
  const started = Date.now();
  const stopped = fx.tg.stop(4000).then(() => Date.now() - started);
  t.ok(await closedWithin(idle, 500), 'the idle keep-alive connection is closed at once');
  t.not(await connectResult(port), 'connected', 'a new connection is refused while draining');
  const res = parseResponses((await done).text)[0];
  t.equal(res?.status, 200, 'the in-flight request completed');
  t.equal(res?.body, 'done /in-flight');
  t.equal(res?.headers['connection'], 'close', 'the drained response tells the client to reconnect');
  const took = await stopped;
  t.ok(took < 3500, `stop() returned ${took} ms after it was called: when the in-flight request ended, not at the 4 s deadline`);
  busy.destroy();
  t.equal(await connectResult(port), 'ECONNREFUSED', 'the listener is gone');
});

t.test('intercepted tunnel: the in-flight request completes; the tunnel is closed at the deadline', async (t) => {
  const fx = await startSecurityFixture({ apiHandler: delayed });
  t.teardown(() => fx.close());
  const DEADLINE = 1500;
  const tunnel = await fx.intercepted(API);
  const done = collect(tunnel, `GET /in-flight-tunnel HTTP/1.1\r\nHost: ${API}\r\n\r\n`, { waitMs: 4000, until: hasResponses(1), destroyOnTimeout: false });
  for (let i = 0; i < 50 && fx.api.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const started = Date.now();
  const stopped = fx.tg.stop(DEADLINE).then(() => Date.now() - started);
  t.not(await connectResult(fx.tg.proxyPort), 'connected', 'a new connection is refused while draining');
  const res = parseResponses((await done).text)[0];
  t.equal(res?.status, 200, 'the in-flight request inside the tunnel completed');
  t.equal(res?.body, 'done /in-flight-tunnel');
  t.ok(await closedWithin(tunnel, DEADLINE + 1000), 'the tunnel is closed by the deadline');
  const took = await stopped;
  t.ok(took < DEADLINE + 1000, `stop() returned in ${took} ms (deadline ${DEADLINE} ms)`);
});
