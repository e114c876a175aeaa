// Policy, identity and credential injection through a running gateway, driven by real clients
// and raw sockets. Every refusal is also checked at the upstream: nothing may arrive there.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { startTestDns } from '../../helpers/dns-server.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { connectWithEarlyClientHello, exchangeOn, openTunnel, parseResponses, rawExchange, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startCanary, startUpstream } from '../../helpers/upstream-server.ts';
import { tokenRevoke } from '../../../src/identity/token-commands.ts';

const run = promisify(execFile);
const GH_SECRET = `CANARY_GH_${Math.random().toString(36).slice(2)}`;
const ANT_SECRET = `CANARY_ANT_${Math.random().toString(36).slice(2)}`;

const MESSAGES_BODY = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });

const pki = await makeTestCa();
const pair = await pki.issue(['api.github.com', 'api.anthropic.com', 'evil.test', 'echo.allowed.test', 'pass.example.test']);
const gh = await startUpstream({ tls: pair });
const ant = await startUpstream({ tls: pair });
const evil = await startUpstream({ tls: pair });
const echo = await startUpstream();
const pass = await startUpstream({ tls: pair });
const canary = await startCanary();
const dns = await startTestDns();
dns.records.set('svc.internal.test', ['127.0.0.1']);

const alphaRules = `
  - host: api.github.com
    action: allow
    http:
      - { method: [GET, POST, PATCH], path: "/repos/**", action: allow }
      - { method: GET, path: /user, action: allow }
      - { method: DELETE, action: deny }
  - { host: api.anthropic.com, action: allow }
  - { host: echo.allowed.test, action: allow }
  - { host: pass.example.test, action: direct }
  - { host: svc.internal.test, action: allow, ports: [${canary.port}] }
  - { host: "*", action: deny }`;
const alphaCredentials = `
  - { host: api.github.com, bearer: { secret: github-token } }
  - { host: api.anthropic.com, path: "/v1/**", header: { name: x-api-key, secret: anthropic-key }, require_placeholder: tollgate-placeholder }`;

const tg = await startTestGateway({
  upstreams: { 'api.github.com': gh.port, 'api.anthropic.com': ant.port, 'evil.test': evil.port, 'echo.allowed.test': echo.port, 'pass.example.test': pass.port },
  upstreamCaPem: pki.caPem,
  alphaRules,
  alphaCredentials,
  files: { 'secrets/github-token': `${GH_SECRET}\n`, 'secrets/anthropic-key': ANT_SECRET },
  extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: 1000 }`,
});
const caFile = path.join(tg.dir, 'gateway-ca.pem');
writeFileSync(caFile, tg.caPem);
t.teardown(async () => {
  await tg.stop();
  await Promise.all([gh.close(), ant.close(), evil.close(), echo.close(), pass.close(), canary.close(), dns.close()]);
});

const agent = () => new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: tg.caPem } });

t.test('a host no rule allows is denied with the rule, readably, and nothing reaches it', async (t) => {
  const before = evil.connections;
  const plain = await rawExchange(tg.proxyPort, `GET http://evil.test/x HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: ${tg.proxyAuth}\r\nConnection: close\r\n\r\n`);
  t.match(plain.text, /^HTTP\/1\.1 403/);
  t.match(plain.text, /X-Tollgate-Decision: deny/);
  t.match(plain.text, /X-Tollgate-Rule: policies\/alpha\.yaml:\d+/);
  t.match(plain.text, /X-Tollgate-Reason: host_not_allowed/);
  // CONNECT to a denied TLS host: intercepted so the 403 is readable; still nothing upstream.
  const { stdout } = await run('curl', ['-sS', '-i', '-x', tg.proxyUrl, '--cacert', caFile, 'https://evil.test/steal']).catch((e: { stdout: string }) => e);
  t.match(stdout, /HTTP\/1\.1 403/);
  t.match(stdout, /policies\/alpha\.yaml/);
  t.equal(evil.connections, before, 'evil.test never saw a connection');
  t.equal(evil.seen.length, 0);
});

t.test('HTTP rules under a host: first match decides, no match denies, DELETE denied', async (t) => {
  const a = agent();
  const ok = await request('https://api.github.com/repos/o/r', { dispatcher: a });
  t.equal(ok.statusCode, 200);
  await ok.body.dump();
  const del = await request('https://api.github.com/repos/o/r', { method: 'DELETE', dispatcher: a });
  t.equal(del.statusCode, 403);
  t.equal(del.headers['x-tollgate-reason'], 'method_not_allowed');
  await del.body.dump();
  const other = await request('https://api.github.com/admin/users', { dispatcher: a });
  t.equal(other.statusCode, 403);
  t.equal(other.headers['x-tollgate-reason'], 'path_not_allowed');
  await other.body.dump();
  const seenPaths = gh.seen.map((s) => `${s.method} ${s.url}`);
  t.notOk(seenPaths.some((p) => p.startsWith('DELETE') || p.includes('/admin')), 'denied requests never reached api.github.com');
  await a.close();
});

t.test('dot segments are resolved before deciding and the normalised path is what is forwarded', async (t) => {
  const tunnel = await openTunnel(tg.proxyPort, 'api.github.com:443', { 'Proxy-Authorization': tg.proxyAuth });
  const tls = await tlsOverTunnel(tunnel, tg.caPem, 'api.github.com');
  const res = await exchangeOn(tls, 'GET /repos/o/r/../../../admin/x HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n');
  t.match(res, /^HTTP\/1\.1 403/, '/repos/o/r/../../../admin/x is /admin/x: denied');
  const tunnel2 = await openTunnel(tg.proxyPort, 'api.github.com:443', { 'Proxy-Authorization': tg.proxyAuth });
  const tls2 = await tlsOverTunnel(tunnel2, tg.caPem, 'api.github.com');
  const res2 = await exchangeOn(tls2, 'GET /repos/o/r/..%2fadmin HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n');
  t.match(res2, /^HTTP\/1\.1 400/, 'an encoded slash is refused');
  const tunnel3 = await openTunnel(tg.proxyPort, 'api.github.com:443', { 'Proxy-Authorization': tg.proxyAuth });
  const tls3 = await tlsOverTunnel(tunnel3, tg.caPem, 'api.github.com');
  const res3 = await exchangeOn(tls3, 'GET /repos/o/%72/./x HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n');
  t.match(res3, /^HTTP\/1\.1 200/);
  t.equal(gh.seen.at(-1)?.url, '/repos/o/r/x', 'the upstream received exactly the normalised path');
  t.notOk(gh.seen.some((s) => s.url.includes('admin')));
});

t.test('bound credentials replace every client copy and never leak', async (t) => {
  const a = agent();
  const res = await request('https://api.github.com/user', {
    dispatcher: a,
    headers: ['Authorization', 'Bearer agent-fake', 'authorization', 'token x'],
  });
  t.equal(res.statusCode, 200);
  await res.body.dump();
  const seen = gh.seen.at(-1);
  const auth = seen?.rawHeaders.filter((_h, i, all) => i % 2 === 0 && all[i]?.toLowerCase() === 'authorization') ?? [];
  t.equal(auth.length, 1, 'exactly one Authorization header upstream');
  t.equal(seen?.headers['authorization'], `Bearer ${GH_SECRET}`);
  // Anthropic: x-api-key injected only with the placeholder, the client's Authorization removed too.
  const ok = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher: a, body: MESSAGES_BODY,
    headers: { 'x-api-key': 'tollgate-placeholder', authorization: 'Bearer tollgate-placeholder', 'content-type': 'application/json' },
  });
  t.equal(ok.statusCode, 200);
  await ok.body.dump();
  const antSeen = ant.seen.at(-1);
  t.equal(antSeen?.headers['x-api-key'], ANT_SECRET);
  t.notOk(antSeen?.headers['authorization'], 'the client Authorization for Anthropic is removed');
  // A personal key instead of the placeholder: refused, nothing forwarded.
  const n = ant.seen.length;
  const personal = await request('https://api.anthropic.com/v1/messages', { method: 'POST', dispatcher: a, body: MESSAGES_BODY, headers: { 'x-api-key': 'sk-ant-personal', 'content-type': 'application/json' } });
  t.equal(personal.statusCode, 403);
  await personal.body.dump();
  t.equal(ant.seen.length, n);
  // A bound host on a path its binding does not cover (Claude Code's telemetry next to /v1/**):
  // nothing is injected, and neither the placeholder nor a personal key reaches the provider.
  for (const key of ['tollgate-placeholder', 'sk-ant-personal']) {
    const tele = await request('https://api.anthropic.com/api/event_logging/batch', {
      method: 'POST', dispatcher: a, body: '{}',
      headers: { 'x-api-key': key, authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    t.equal(tele.statusCode, 200, `${key}: forwarded`);
    await tele.body.dump();
    const teleSeen = ant.seen.at(-1);
    t.equal(teleSeen?.url, '/api/event_logging/batch');
    t.notOk(teleSeen?.headers['x-api-key'], `${key}: no x-api-key upstream`);
    t.notOk(teleSeen?.headers['authorization'], `${key}: no Authorization upstream`);
  }
  // The placeholder sent to a host with no binding: refused (credential_reflected).
  const m = echo.seen.length;
  const reflected = await request('http://echo.allowed.test/x', { dispatcher: a, headers: { 'x-api-key': 'tollgate-placeholder' } });
  t.equal(reflected.statusCode, 403);
  t.equal(reflected.headers['x-tollgate-reason'], 'credential_reflected');
  await reflected.body.dump();
  t.equal(echo.seen.length, m, 'nothing reached echo');
  t.notOk(echo.seen.some((s) => JSON.stringify(s.headers).includes(GH_SECRET)));
  t.notOk(tg.logText().includes(GH_SECRET) || tg.logText().includes(ANT_SECRET), 'no secret in the logs');
  await a.close();
});

t.test('a redirect is passed back, never followed with the credential', async (t) => {
  const redirecting = await startUpstream({ tls: pair, handler: (_q, res) => { res.writeHead(302, { location: 'https://evil.test/steal' }); res.end(); } });
  // point api.github.com at the redirecting server for this test via a second gateway
  const tg2 = await startTestGateway({ upstreams: { 'api.github.com': redirecting.port, 'evil.test': evil.port }, upstreamCaPem: pki.caPem, alphaRules: '  - { host: api.github.com, action: allow }\n  - { host: evil.test, action: allow }', alphaCredentials: '  - { host: api.github.com, bearer: { secret: github-token } }', files: { 'secrets/github-token': GH_SECRET } });
  const a = new ProxyAgent({ uri: tg2.proxyUrl, requestTls: { ca: tg2.caPem } });
  const before = evil.seen.length;
  const res = await request('https://api.github.com/user', { dispatcher: a });
  t.equal(res.statusCode, 302);
  t.equal(res.headers['location'], 'https://evil.test/steal');
  await res.body.dump();
  t.equal(evil.seen.length, before, 'the gateway did not follow the redirect');
  await a.close();
  await tg2.stop();
  await redirecting.close();
});

t.test('dev mode, a bound secret with no value: 503 credential_unavailable, and nothing reaches the host', async (t) => {
  const tg3 = await startTestGateway({ dev: true, upstreams: { 'api.github.com': gh.port }, upstreamCaPem: pki.caPem, alphaRules: '  - { host: api.github.com, action: allow }', alphaCredentials: '  - { host: api.github.com, bearer: { secret: not-provisioned } }' });
  t.teardown(() => tg3.stop());
  t.match(tg3.logText(), /dev mode: these secrets have no value/, 'the start warns');
  const a = new ProxyAgent({ uri: tg3.proxyUrl, requestTls: { ca: tg3.caPem } });
  const before = gh.seen.length;
  const res = await request('https://api.github.com/user', { dispatcher: a });
  t.equal(res.statusCode, 503);
  t.equal(res.headers['x-tollgate-reason'], 'credential_unavailable');
  t.match(await res.body.text(), /not-provisioned.*not configured on the gateway/);
  t.equal(gh.seen.length, before, 'nothing was forwarded without its credential');
  await a.close();
});

t.test('a name that resolves to a private address is refused unless a rule names the address', async (t) => {
  const res = await rawExchange(tg.proxyPort, `GET http://svc.internal.test:${canary.port}/ HTTP/1.1\r\nHost: svc.internal.test:${canary.port}\r\nProxy-Authorization: ${tg.proxyAuth}\r\nConnection: close\r\n\r\n`);
  t.match(res.text, /^HTTP\/1\.1 403/);
  t.match(res.text, /ip_not_allowed/);
  const tunnel = await rawExchange(tg.proxyPort, `CONNECT svc.internal.test:${canary.port} HTTP/1.1\r\nHost: svc.internal.test:${canary.port}\r\nProxy-Authorization: ${tg.proxyAuth}\r\n\r\n`);
  t.match(tunnel.text, /^HTTP\/1\.1 403/);
  t.equal(canary.accepts(), 0, 'the loopback canary saw no connection');
});

t.test('DNS failure is a 502 dns_error, distinct from a denial', async (t) => {
  const tg3 = await startTestGateway({ alphaRules: '  - { host: "*.nx.test", action: allow }', extraYaml: `dns: { servers: ["127.0.0.1:${dns.port}"], timeout_ms: 1000 }` });
  const res = await rawExchange(tg3.proxyPort, `GET http://nothing.nx.test/ HTTP/1.1\r\nHost: nothing.nx.test\r\nProxy-Authorization: ${tg3.proxyAuth}\r\nConnection: close\r\n\r\n`, { waitMs: 3000 });
  t.match(res.text, /^HTTP\/1\.1 502/);
  t.match(res.text, /dns_error/);
  await tg3.stop();
});

t.test('direct (pass-through) tunnels require a matching SNI and are not intercepted', async (t) => {
  const tunnel = await openTunnel(tg.proxyPort, 'pass.example.test:443', { 'Proxy-Authorization': tg.proxyAuth });
  const tls = await tlsOverTunnel(tunnel, pki.caPem, 'pass.example.test');
  t.equal((tls.getPeerCertificate().issuer as { CN?: string }).CN, 'Tollgate Test Upstream CA', 'the upstream certificate itself, not a minted leaf');
  const res = await exchangeOn(tls, 'GET /through HTTP/1.1\r\nHost: pass.example.test\r\nConnection: close\r\n\r\n');
  t.match(res, /^HTTP\/1\.1 200/);
  const before = pass.connections;
  const bad = await openTunnel(tg.proxyPort, 'pass.example.test:443', { 'Proxy-Authorization': tg.proxyAuth });
  await t.rejects(tlsOverTunnel(bad, pki.caPem, 'evil.test'), 'SNI of another host: the tunnel is closed');
  t.equal(pass.connections, before, 'no upstream connection for the mismatched SNI');
});

t.test('the team of the token decides: beta may not use alpha hosts', async (t) => {
  const res = await rawExchange(tg.proxyPort, `GET http://api.github.com/user HTTP/1.1\r\nHost: api.github.com\r\nProxy-Authorization: Basic ${Buffer.from(`beta:${tg.tokenB}`).toString('base64')}\r\nConnection: close\r\n\r\n`);
  t.match(res.text, /^HTTP\/1\.1 403/);
  t.match(res.text, /policies\/beta\.yaml/);
  const wrongTeam = await rawExchange(tg.proxyPort, `GET http://echo.allowed.test/ HTTP/1.1\r\nHost: echo.allowed.test\r\nProxy-Authorization: Basic ${Buffer.from(`alpha:${tg.tokenB}`).toString('base64')}\r\nConnection: close\r\n\r\n`);
  t.match(wrongTeam.text, /^HTTP\/1\.1 407/, 'a token used with a team it does not have');
});

t.test('no credentials: 407 with Proxy-Authenticate and a login hint; revocation applies inside an open tunnel', async (t) => {
  const none = await rawExchange(tg.proxyPort, 'GET http://echo.allowed.test/ HTTP/1.1\r\nHost: echo.allowed.test\r\nConnection: close\r\n\r\n');
  t.match(none.text, /^HTTP\/1\.1 407/);
  t.match(none.text, /Proxy-Authenticate: Basic/);
  t.match(none.text, /tollgate login/);
  const bad = await rawExchange(tg.proxyPort, 'CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nProxy-Authorization: Bearer tg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n');
  t.match(bad.text, /^HTTP\/1\.1 407/);
  // a fresh agent token, an open tunnel, then revoke
  const tg4 = await startTestGateway({ upstreams: { 'api.github.com': gh.port }, upstreamCaPem: pki.caPem });
  const tunnel = await openTunnel(tg4.proxyPort, 'api.github.com:443', { 'Proxy-Authorization': tg4.proxyAuth });
  const tls = await tlsOverTunnel(tunnel, tg4.caPem, 'api.github.com');
  const first = await new Promise<string>((resolve) => {
    tls.once('data', (c: Buffer) => resolve(c.toString('latin1')));
    tls.write('GET /one HTTP/1.1\r\nHost: api.github.com\r\n\r\n');
  });
  t.match(first, /^HTTP\/1\.1 200/);
  await tokenRevoke({ dbFile: path.join(tg4.dir, 'data', 'tollgate.db'), agent: 'alpha-bot' });
  await new Promise((r) => setTimeout(r, 1100)); // the verified-token cache bound (1 s)
  const n = gh.seen.length;
  const second = await exchangeOn(tls, 'GET /two HTTP/1.1\r\nHost: api.github.com\r\n\r\n', 1500);
  t.match(second, /^HTTP\/1\.1 407/, 'the revoked token stops working in the already open tunnel');
  t.equal(gh.seen.length, n);
  await tg4.stop();
});

t.test('refused proxy authentication forwards nothing: each variant over plain requests and CONNECT (5.01)', async (t) => {
  // Its own gateway: the variants below count against the per-address failure limiter.
  const g = await startTestGateway({ upstreams: { 'api.github.com': gh.port, 'echo.allowed.test': echo.port }, upstreamCaPem: pki.caPem });
  t.teardown(() => g.stop());
  const basic = (user: string, token: string) => Buffer.from(`${user}:${token}`).toString('base64');
  const authLines = (auth: string | string[] | undefined) => [auth ?? []].flat().map((a) => `Proxy-Authorization: ${a}\r\n`).join('');
  const plain = (auth: string | string[] | undefined, path: string) =>
    `GET http://echo.allowed.test${path} HTTP/1.1\r\nHost: echo.allowed.test\r\n${authLines(auth)}Connection: close\r\n\r\n`;
  // The client does not wait for the CONNECT answer: a request follows in the same write.
  const connect = (auth: string | string[] | undefined, path: string) =>
    `CONNECT echo.allowed.test:80 HTTP/1.1\r\nHost: echo.allowed.test:80\r\n${authLines(auth)}\r\nGET ${path} HTTP/1.1\r\nHost: echo.allowed.test\r\nConnection: close\r\n\r\n`;
  const tlsConnect = (auth: string | string[] | undefined) =>
    connectWithEarlyClientHello(g.proxyPort, 'api.github.com:443', auth === undefined ? {} : { 'Proxy-Authorization': [auth].flat().join(', ') }, g.caPem, 'api.github.com');

  // Controls: the same requests with valid credentials (lower-case schemes authenticate, RFC 9110
  // §11.1) do reach the upstreams, so each "nothing arrived" below is the refusal's doing.
  for (const [name, auth] of [['lower-case basic', `basic ${basic('alpha', g.token)}`], ['lower-case bearer', `bearer ${g.token}`]] as const) {
    const ok = await rawExchange(g.proxyPort, plain(auth, `/a501-control-plain-${name.length}`));
    t.match(ok.text, /^HTTP\/1\.1 200/, `${name}: plain request authenticated`);
    t.match(g.exchanges().at(-1), { principal: 'agent:alpha-bot', team: 'alpha' }, `${name}: attributed to the token's agent`);
  }
  const tunnelled = await rawExchange(g.proxyPort, connect(`basic ${basic('alpha', g.token)}`, '/a501-control-connect'), { waitMs: 3000 });
  t.match(tunnelled.text, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200/, 'control: CONNECT + pipelined request is tunnelled and forwarded');
  t.ok(echo.seen.some((s) => s.url === '/a501-control-connect'), 'control: the pipelined request reached echo');
  const tlsOk = await tlsConnect(`Basic ${basic('alpha', g.token)}`);
  t.match(tlsOk.connectStatus, /^HTTP\/1\.1 200/, 'control: CONNECT with a ClientHello in the same write is established');
  tlsOk.tls.destroy();

  const seen = echo.seen.length;
  const echoConns = echo.tcpConnections;
  const ghConns = gh.tcpConnections;
  const unknown = `tg_${'B'.repeat(43)}`;
  const variants: Array<[name: string, auth: string | string[] | undefined, status: 407 | 400, reason: string]> = [
    ['no Proxy-Authorization', undefined, 407, 'auth_required'],
    ['an empty Bearer', 'Bearer', 407, 'auth_invalid'],
    ['Basic with invalid base64', 'Basic !!!not*base64', 407, 'auth_invalid'],
    ['an unknown scheme carrying a valid token', `Token ${g.token}`, 407, 'auth_invalid'],
    ['lower-case bearer, unknown token', `bearer ${unknown}`, 407, 'auth_invalid'],
    ['lower-case basic, unknown token', `basic ${basic('alpha', unknown)}`, 407, 'auth_invalid'],
    ['the token both as a Basic password and on a Bearer line', [`Basic ${basic('alpha', g.token)}`, `Bearer ${g.token}`], 400, 'malformed_request'],
  ];
  for (const [i, [name, auth, status, reason]] of variants.entries()) {
    const p = await rawExchange(g.proxyPort, plain(auth, `/a501-plain-${i}`));
    const pr = parseResponses(p.text);
    t.equal(pr.length, 1, `${name} (plain): one response`);
    t.equal(pr[0]?.status, status, `${name} (plain): ${status}`);
    t.equal(pr[0]?.headers['x-tollgate-reason'], reason, `${name} (plain): ${reason}`);
    if (status === 407) t.match(pr[0]?.headers['proxy-authenticate'], /^Basic realm="tollgate"/, `${name} (plain): Proxy-Authenticate`);

    const c = await rawExchange(g.proxyPort, connect(auth, `/a501-connect-${i}`), { waitMs: 3000 });
    const cr = parseResponses(c.text);
    t.notMatch(c.text, /Connection Established/, `${name} (CONNECT): no tunnel`);
    t.equal(cr.length, 1, `${name} (CONNECT): one response; the pipelined request is never answered`);
    t.equal(cr[0]?.status, status, `${name} (CONNECT): ${status}`);
    t.equal(cr[0]?.headers['x-tollgate-reason'], reason, `${name} (CONNECT): ${reason}`);
    if (status === 407) t.match(cr[0]?.headers['proxy-authenticate'], /^Basic realm="tollgate"/, `${name} (CONNECT): Proxy-Authenticate`);
    t.ok(c.closed, `${name} (CONNECT): the connection is closed`);

    if (status === 407) {
      const err = await tlsConnect(auth).then((ok) => { ok.tls.destroy(); return { connectStatus: ok.connectStatus }; }, (e: { connectStatus?: string }) => e);
      t.match(err.connectStatus, /^HTTP\/1\.1 407/, `${name} (CONNECT + ClientHello): 407, no TLS session`);
    }
    t.equal(echo.seen.length, seen, `${name}: nothing reached echo`);
  }
  t.notOk(echo.seen.some((s) => s.url.startsWith('/a501-plain') || s.url.startsWith('/a501-connect')), 'no refused request was forwarded');
  t.equal(echo.tcpConnections, echoConns, 'echo saw no connection');
  t.equal(gh.tcpConnections, ghConns, 'api.github.com saw no connection');
});

t.test('hot reload: a broken policy is rejected and the last good one stays; a valid change applies', async (t) => {
  const tg5 = await startTestGateway({ upstreams: { 'echo.allowed.test': echo.port } });
  const url = `GET http://echo.allowed.test/r HTTP/1.1\r\nHost: echo.allowed.test\r\nProxy-Authorization: ${tg5.proxyAuth}\r\nConnection: close\r\n\r\n`;
  t.match((await rawExchange(tg5.proxyPort, url)).text, /^HTTP\/1\.1 200/);
  writeFileSync(path.join(tg5.dir, 'policies', 'alpha.yaml'), 'team: alpha\nrules:\n  - { host: "*example.com", action: allow }\n');
  const reloaded = (kind: 'ok' | 'bad') => new Promise<void>((resolve) => {
    const check = () => {
      const hit = tg5.logs.some((l) => (kind === 'bad' ? l['msg'] === 'policy reload rejected; the last good policy stays in force' : l['msg'] === 'policy reloaded'));
      if (hit) resolve(); else setTimeout(check, 50);
    };
    check();
  });
  await reloaded('bad');
  t.match((await rawExchange(tg5.proxyPort, url)).text, /^HTTP\/1\.1 200/, 'the last good policy is still in force');
  const ready = await request(`${tg5.adminUrl}/readyz`);
  t.equal(ready.statusCode, 503, '/readyz reports the rejected reload');
  t.match(await ready.body.text(), /policy/);
  writeFileSync(path.join(tg5.dir, 'policies', 'alpha.yaml'), 'team: alpha\nrules:\n  - { host: "*", action: deny }\n');
  await reloaded('ok');
  t.match((await rawExchange(tg5.proxyPort, url)).text, /^HTTP\/1\.1 403/, 'the new policy applies');
  await tg5.stop();
});
