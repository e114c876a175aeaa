// Security case 1.13 (../shared/security-cases.md): protocol upgrades. A WebSocket upgrade works
// end to end on the plain path and inside an intercepted tunnel (101 with the right accept key, a
// frame echoed); `Upgrade: h2c` never yields a 101; an upgrade to a denied host is refused with
// nothing forwarded; bytes after a refused upgrade never reach the origin.
import type net from 'node:net';
import t, { type Test } from 'tap';
import { collect, hasResponses, parseResponses } from '../../helpers/raw-client.ts';
import { API, ECHO, EVIL, headerPairs, settle, startSecurityFixture } from '../../helpers/security-fixture.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { clientFrame, parseFrame, startWebSocketUpstream, websocketAccept } from '../../helpers/websocket-upstream.ts';

const WS = 'ws.allowed.test';
const WSS = 'wss.allowed.test';
const pki = await makeTestCa();
const ws = await startWebSocketUpstream();
const wss = await startWebSocketUpstream({ tls: await pki.issue([WSS]) });
const fx = await startSecurityFixture({
  pki,
  upstreams: { [WS]: ws.port, [WSS]: wss.port },
  gateway: { alphaRules: [ECHO, API, WS, WSS].map((h) => `  - { host: ${h}, action: allow }`).join('\n') },
});
t.teardown(async () => {
  await fx.close();
  await Promise.all([ws.close(), wss.close()]);
});

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const wsHeaders = `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`;

/** Sends an upgrade head, expects a 101, then echoes one frame through. */
async function upgradeAndEcho(t: Test, sock: net.Socket, head: string, message: string): Promise<void> {
  const r = await collect(sock, head, { waitMs: 3000, until: (x) => x.includes('\r\n\r\n'), destroyOnTimeout: false });
  const status = /^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1];
  t.equal(status, '101', 'Switching Protocols');
  t.match(r.text, new RegExp(`\\r\\nSec-WebSocket-Accept: ${websocketAccept(KEY).replace(/[+/=]/g, (c) => `\\${c}`)}\\r\\n`, 'i'), 'the origin\'s accept key is relayed');
  const leftover = Buffer.from(r.text.slice(r.text.indexOf('\r\n\r\n') + 4), 'latin1');
  const echoed = await new Promise<string | undefined>((resolve) => {
    let buf = leftover;
    const timer = setTimeout(() => { sock.off('data', onData); resolve(undefined); }, 3000);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const f = parseFrame(buf);
      if (f) { clearTimeout(timer); sock.off('data', onData); resolve(f.payload.toString()); }
    };
    sock.on('data', onData);
    sock.write(clientFrame(message));
  });
  t.equal(echoed, message, 'a frame goes through and its echo comes back');
}

t.test('(a) WebSocket upgrade on the plain path works end to end', async (t) => {
  const sock = await fx.plain.open();
  await upgradeAndEcho(t, sock, `GET http://${WS}/ws HTTP/1.1\r\nHost: ${WS}\r\n${fx.authLine}${wsHeaders}\r\n`, 'hello plain');
  sock.destroy();
  const head = ws.heads.at(-1) ?? '';
  t.match(head, /^GET \/ws HTTP\/1\.1\r\n/, 'origin-form upstream');
  t.match(head, new RegExp(`\\r\\nHost: ${WS.replace(/\./g, '\\.')}\\r\\n`, 'i'));
  t.notMatch(head, /proxy-authorization/i, 'no proxy credentials upstream');
  t.same(ws.messages, ['hello plain']);
});

t.test('(a) WebSocket upgrade inside an intercepted tunnel works end to end', async (t) => {
  const sock = await fx.intercepted(WSS);
  await upgradeAndEcho(t, sock, `GET /chat?room=1 HTTP/1.1\r\nHost: ${WSS}\r\n${wsHeaders}\r\n`, 'hello tunnel');
  sock.destroy();
  const head = wss.heads.at(-1) ?? '';
  t.match(head, /^GET \/chat\?room=1 HTTP\/1\.1\r\n/);
  t.notMatch(head, /proxy-authorization/i);
  t.same(wss.messages, ['hello tunnel']);
});

t.test('(a) an upgrade the origin refuses: its answer is relayed and later bytes never reach it', async (t) => {
  const sock = await fx.plain.open();
  const r = await collect(sock, `GET http://${WS}/deny HTTP/1.1\r\nHost: ${WS}\r\n${fx.authLine}${wsHeaders}\r\n`, { waitMs: 3000, until: hasResponses(1), destroyOnTimeout: false });
  t.equal(parseResponses(r.text)[0]?.status, 403);
  sock.write(`GET http://${WS}/smuggled HTTP/1.1\r\nHost: ${WS}\r\n\r\n`);
  await settle(200);
  sock.destroy();
  t.notMatch(ws.received(), /\/smuggled/, 'bytes after a refused upgrade are not piped to the origin');
});

for (const route of fx.routes) {
  t.test(`[${route.name}] (b) Upgrade: h2c never yields a 101`, async (t) => {
    const variants: Array<[string, string]> = [
      ['h2c', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'],
      ['websocket, h2c', `Connection: Upgrade\r\nUpgrade: websocket, h2c\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`],
      ['h2c without Connection: Upgrade', 'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'],
    ];
    for (const [name, headers] of variants) {
      t.test(name, async (t) => {
        const before = route.upstream.seen.length;
        const r = await route.send(`${route.head('GET', '/h2c')}${headers}\r\n`, { waitMs: 3000, until: hasResponses(1) });
        const res = parseResponses(r.text);
        t.notOk(res.some((x) => x.status === 101), 'no 101');
        t.ok(res[0] && (res[0].status === 200 || (res[0].status >= 400 && res[0].status < 500)), `proxied as HTTP/1.1 or refused (${res[0]?.status})`);
        await settle();
        for (const f of route.upstream.seen.slice(before)) {
          const names = headerPairs(f.rawHeaders).map(([n]) => n);
          t.notOk(names.includes('upgrade'), 'Upgrade is not forwarded');
          t.notOk(names.includes('http2-settings'), 'HTTP2-Settings is not forwarded');
        }
      });
    }
  });
}

t.test('(c) a WebSocket upgrade to EVIL is refused and nothing is forwarded', async (t) => {
  const first = await fx.expectRefused(t, fx.plain, `GET http://${EVIL}/ws HTTP/1.1\r\nHost: ${EVIL}\r\n${fx.authLine}${wsHeaders}\r\n`, { statuses: [403] });
  t.equal(first?.headers['x-tollgate-reason'], 'host_not_allowed');
});

t.test('(c) a WebSocket upgrade inside a denied (readable) tunnel to EVIL is refused', async (t) => {
  const sock = await fx.intercepted(EVIL);
  const r = await collect(sock, `GET /ws HTTP/1.1\r\nHost: ${EVIL}\r\n${wsHeaders}\r\n`, { waitMs: 3000, until: hasResponses(1) });
  sock.destroy();
  t.equal(parseResponses(r.text)[0]?.status, 403);
  t.equal(fx.evil.tcpConnections, 0, 'EVIL accepted nothing');
});

t.test('a WebSocket upgrade whose inner Host does not match the tunnel is refused (421)', async (t) => {
  const before = wss.connections;
  const sock = await fx.intercepted(WSS);
  const r = await collect(sock, `GET /ws HTTP/1.1\r\nHost: ${WS}\r\n${wsHeaders}\r\n`, { waitMs: 3000, until: hasResponses(1) });
  sock.destroy();
  t.equal(parseResponses(r.text)[0]?.status, 421);
  await settle();
  t.equal(wss.connections, before, 'the origin was not contacted');
});

t.test('a malformed upgrade request (CL + TE) is refused with 400 and never reaches the origin', async (t) => {
  const before = ws.connections;
  const r = await fx.plain.send(`GET http://${WS}/ws HTTP/1.1\r\nHost: ${WS}\r\n${fx.authLine}${wsHeaders}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, { waitMs: 1500 });
  t.match(r.text, /^HTTP\/1\.1 400 /);
  await settle();
  t.equal(ws.connections, before);
});

t.test('CANARY-CLEAN', async (t) => {
  fx.assertCanaryClean(t);
  for (const head of [...ws.heads, ...wss.heads]) t.notOk(head.includes(fx.token), 'no token in any upgrade head');
});
