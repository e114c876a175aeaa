// Security cases 4.06 and 4.07 (../shared/security-cases.md), through the real gateway on the plain
// path and inside an intercepted tunnel:
// - 4.06: an upstream that answers with the gateway's own headers (X-Tollgate-Decision, -Reason,
//   -Rule, -Budget-Remaining) and hop-by-hop proxy headers cannot make the agent read them: none
//   reaches the client.
// - 4.07: a client that sends forwarding claims and URL rewrites (X-Forwarded-For, Forwarded,
//   X-Real-IP, X-Forwarded-Host, X-Original-URL, X-Rewrite-URL) or the gateway's namespace
//   (X-Tollgate-Team: beta) steers nothing: the upstream never sees them, the decision and the
//   audit row name the token's team and the request line's path, and a path the policy denies
//   stays denied whatever X-Original-URL says.
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { waitFor } from '../../helpers/cli-process.ts';
import { collect, parseResponses } from '../../helpers/raw-client.ts';
import { API, ECHO, headerPairs, startSecurityFixture } from '../../helpers/security-fixture.ts';
import type { UpstreamHandler } from '../../helpers/upstream-server.ts';

const SPOOFED: Record<string, string> = {
  'X-Tollgate-Decision': 'allow',
  'X-Tollgate-Reason': 'none',
  'X-Tollgate-Rule': 'policies/beta.yaml:1',
  'X-Tollgate-Budget-Remaining': '999',
  'Proxy-Authenticate': 'Basic realm="steal"',
  'Proxy-Connection': 'keep-alive',
};
const spoofing: UpstreamHandler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream-own': 'kept', ...SPOOFED });
  res.end(`answer to ${req.url}\n`);
};

const rulesFor = (host: string) => [
  `  - host: ${host}`,
  '    action: allow',
  '    http:',
  '      - { method: GET, path: "/public/**", action: allow }',
].join('\n');

// An origin that answers upgrade requests with raw heads the gateway relays as bytes: a 101 and a
// refusal with a body, both carrying the gateway's headers and a folded one.
const WS = 'ws.allowed.test';
const wsAnswers: Record<string, string> = {
  '/ws-101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Tollgate-Decision: allow\r\nProxy-Authenticate: Basic realm="steal"\r\nX-Own: kept\r\n\r\n',
  '/ws-bare-lf': 'HTTP/1.1 101 Switching Protocols\nX-Tollgate-Decision: allow\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  '/ws-403': 'HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nX-Tollgate-Reason: none\r\nX-TOLLGATE-RULE: policies/beta.yaml:1\r\n  folded continuation\r\nX-Own: kept\r\nConnection: close\r\n\r\nnope!',
};
const wsOrigin = net.createServer((sock) => {
  let head = '';
  sock.on('error', () => undefined);
  sock.on('data', (c: Buffer) => {
    head += c.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    const answer = wsAnswers[/^GET (\S+)/.exec(head)?.[1] ?? ''] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';
    if (answer.startsWith('HTTP/1.1 101')) sock.write(answer);
    else sock.end(answer);
  });
});
await new Promise<void>((r) => wsOrigin.listen(0, '127.0.0.1', () => r()));

const fx = await startSecurityFixture({
  echoHandler: spoofing, apiHandler: spoofing,
  upstreams: { [WS]: (wsOrigin.address() as net.AddressInfo).port },
  gateway: { alphaRules: [rulesFor(ECHO), rulesFor(API), `  - { host: ${WS}, action: allow }`].join('\n') },
});
const db = openDatabase(databasePath({ dataDir: path.join(fx.tg.dir, 'data') }));
t.teardown(async () => {
  db.close();
  await fx.close();
  await new Promise<void>((r) => { wsOrigin.close(() => r()); });
});

const STEERING = [
  'X-Forwarded-For: 10.0.0.1',
  'Forwarded: for=1.2.3.4;host=api.github.com',
  'X-Real-IP: 10.0.0.2',
  'X-Forwarded-Host: evil.test',
  'X-Forwarded-Proto: http',
  'X-Original-URL: /admin',
  'X-Rewrite-URL: /admin',
  'X-Tollgate-Team: beta',
  'X-Tollgate-Agent: admin',
  'X-TOLLGATE-DECISION: allow',
].map((h) => `${h}\r\n`).join('');
const STRIPPED = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-host', 'x-forwarded-proto', 'x-original-url', 'x-rewrite-url', 'x-tollgate-team', 'x-tollgate-agent', 'x-tollgate-decision'];

interface Row { team: string; path: string; decision: string; state: string }
async function auditRow(p: string): Promise<Row | undefined> {
  const read = () => db.prepare<[string], Row>('SELECT team, path, decision, state FROM audit_requests WHERE path = ? ORDER BY id DESC LIMIT 1').get(p);
  await waitFor(() => read()?.state === 'complete', 3000);
  return read();
}

for (const route of fx.routes) {
  t.test(`${route.name}: the upstream cannot speak for the gateway; the client's steering headers never leave`, async (t) => {
    const p = `/public/${route.name}`;
    const before = route.upstream.seen.length;
    const r = await route.send(`${route.head('GET', p)}${STEERING}Connection: close\r\n\r\n`, { waitMs: 3000 });
    const res = parseResponses(r.text)[0];
    t.equal(res?.status, 200, 'allowed and answered');
    t.equal(res?.body, `answer to ${p}\n`);
    t.equal(res?.headers['x-upstream-own'], 'kept', 'the upstream\'s own headers pass');
    for (const name of Object.keys(SPOOFED)) t.notOk(name.toLowerCase() in (res?.headers ?? {}), `${name} from the upstream is not relayed`);
    const seen = route.upstream.seen.slice(before);
    t.equal(seen.length, 1, 'forwarded once');
    const names = headerPairs(seen[0]?.rawHeaders ?? []).map(([n]) => n);
    for (const h of STRIPPED) t.notOk(names.includes(h), `${h} never reached the upstream`);
    t.equal(seen[0]?.url, p, 'the request line\'s path, unchanged');
    t.match(await auditRow(p), { team: 'alpha', path: p, decision: 'allow' }, 'audited under the token\'s team (alpha), not X-Tollgate-Team');
  });

  t.test(`${route.name}: X-Original-URL cannot turn a denied path into an allowed one`, async (t) => {
    await fx.expectRefused(t, route, `${route.head('GET', '/admin')}X-Original-URL: /public/ok\r\nX-Rewrite-URL: /public/ok\r\nX-Tollgate-Decision: allow\r\n\r\n`, { statuses: [403], close: false });
  });
}

t.test('an upgrade\'s answer, relayed as bytes, loses the upstream\'s X-Tollgate-* and Proxy-* lines too (101 and a refusal)', async (t) => {
  for (const p of ['/ws-101', '/ws-403']) {
    const sock = await fx.plain.open();
    const r = await collect(sock, `GET http://${WS}${p} HTTP/1.1\r\nHost: ${WS}\r\n${fx.authLine}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, { waitMs: 3000, until: (x) => x.includes('\r\n\r\n') && (p === '/ws-101' || x.endsWith('nope!')) });
    sock.destroy();
    const head = r.text.slice(0, r.text.indexOf('\r\n\r\n') + 2);
    t.match(head, p === '/ws-101' ? /^HTTP\/1\.1 101 / : /^HTTP\/1\.1 403 /, `${p}: the status line`);
    t.notMatch(head, /x-tollgate-|proxy-authenticate|folded continuation/i, `${p}: no X-Tollgate-* or Proxy-* line (nor a folded continuation of one)`);
    t.match(head, /\r\nX-Own: kept\r\n/, `${p}: the origin's own header stays`);
    if (p === '/ws-101') t.match(head, /\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: /, 'the upgrade headers stay');
    else t.equal(r.text.slice(r.text.indexOf('\r\n\r\n') + 4), 'nope!', 'the refusal\'s body follows intact');
  }
});

t.test('an upgrade answer with a bare LF line end is refused (502), not relayed', async (t) => {
  const sock = await fx.plain.open();
  const r = await collect(sock, `GET http://${WS}/ws-bare-lf HTTP/1.1\r\nHost: ${WS}\r\n${fx.authLine}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, { waitMs: 3000 });
  sock.destroy();
  const res = parseResponses(r.text)[0];
  t.equal(res?.status, 502);
  t.equal(res?.headers['x-tollgate-reason'], 'upstream_protocol_error');
  t.notMatch(r.text, /X-Tollgate-Decision: allow|101 Switching/, 'nothing of the upstream\'s head reaches the client');
});
