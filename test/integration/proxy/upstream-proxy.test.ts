// `upstream_proxy`: a corporate proxy between Tollgate and the internet. Proxied traffic (plain and
// intercepted) and the gateway's own calls out (the identity provider's discovery, keys and token
// exchange) reach their hosts only through CONNECT tunnels it was asked for, with its credentials;
// a proxy that refuses, is down, or is not trusted gives a clear 502 and nothing reaches the host;
// the proxy's password never reaches the logs or an answer.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { startDevIssuer } from '../../../src/identity/dev-issuer.ts';
import { startCorporateProxy } from '../../helpers/corporate-proxy.ts';
import { SSO_TEST_ORG_YAML, startTestGateway } from '../../helpers/gateway-harness.ts';
import { ScriptedBrowser } from '../../helpers/oidc-browser.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const run = promisify(execFile);

const USER = 'svc-tollgate';
const PASSWORD = 's3cret p@ss:w0rd';
const CREDENTIALS = `${USER}:${encodeURIComponent(PASSWORD)}`;
const EXPECTED_AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

const pki = await makeTestCa();
const upstreamTls = await pki.issue(['api.example.test']);
const proxyTls = await pki.issue(['127.0.0.1']);
const plain = await startUpstream();
const secure = await startUpstream({ tls: upstreamTls });
const corp = await startCorporateProxy({ requireAuthorization: EXPECTED_AUTH });
const corpTls = await startCorporateProxy({ tls: proxyTls });
const strict = await startCorporateProxy({ requireAuthorization: 'Basic c29tZW9uZS1lbHNl' });
const refusing = await startCorporateProxy({ refuseWith: 403 });
const untrusted = await startCorporateProxy({ tls: await (await makeTestCa('Someone Else CA')).issue(['127.0.0.1']) });
const down = await startCorporateProxy();
await down.close();
const hangsUp = await startCorporateProxy({ misbehave: 'close' });
const silent = await startCorporateProxy({ misbehave: 'silent' });
const userOnly = await startCorporateProxy({ requireAuthorization: `Basic ${Buffer.from('tokenonly:').toString('base64')}` });
const dev = await startDevIssuer({ users: [{ email: 'ada@acme.example', name: 'Ada', groups: ['admins'] }] });

const upstreams = { 'plain.example.test': plain.port, 'api.example.test': secure.port };
const gateway = (proxyUrl: string, extra: Parameters<typeof startTestGateway>[0] = {}) =>
  startTestGateway({ upstreams, upstreamCaPem: pki.caPem, extraYaml: `upstream_proxy: "${proxyUrl}"`, timeouts: { connect_ms: 1500 }, ...extra });

const tg = await gateway(corp.url(CREDENTIALS));
t.teardown(async () => {
  await tg.stop();
  await Promise.all([plain.close(), secure.close(), corp.close(), corpTls.close(), strict.close(), refusing.close(), untrusted.close(), hangsUp.close(), silent.close(), userOnly.close(), dev.close()]);
});

function viaGateway(g: { proxyUrl: string; caPem: string }) {
  return new ProxyAgent({ uri: g.proxyUrl, requestTls: { ca: g.caPem } });
}

t.test('intercepted HTTPS goes through the corporate proxy, to the vetted address, with its credentials', async (t) => {
  const before = corp.asks.length;
  const seen = secure.seen.length;
  const r = await request('https://api.example.test/v1/things?x=1', { dispatcher: viaGateway(tg) });
  t.equal(r.statusCode, 200);
  const echoed = (await r.body.json()) as { url: string };
  t.equal(echoed.url, '/v1/things?x=1', 'the upstream answered');
  t.equal(secure.seen.length, seen + 1);
  const asked = corp.asks.slice(before);
  t.same(asked.map((a) => [a.authority, a.status]), [[`127.0.0.1:${secure.port}`, 200]], 'one tunnel, to the address Tollgate resolved (not the name)');
  t.equal(asked[0]?.proxyAuthorization, EXPECTED_AUTH, 'the URL credentials, decoded, as Basic');
});

t.test('plain-HTTP forwarding tunnels through the proxy too (curl)', async (t) => {
  const before = corp.asks.length;
  const { stdout } = await run('curl', ['-sS', '-x', tg.proxyUrl, 'http://plain.example.test/hello']);
  t.equal((JSON.parse(stdout) as { url: string }).url, '/hello');
  t.same(corp.asks.slice(before).map((a) => a.authority), [`127.0.0.1:${plain.port}`]);
});

t.test('an https:// proxy is reached over TLS and verified against tls.upstream_ca', async (t) => {
  const g = await gateway(corpTls.url());
  t.teardown(() => g.stop());
  const r = await request('https://api.example.test/over-tls', { dispatcher: viaGateway(g) });
  t.equal(r.statusCode, 200);
  await r.body.dump();
  t.same(corpTls.asks.map((a) => a.authority), [`127.0.0.1:${secure.port}`]);
});

t.test('a proxy that cannot be used gives 502 naming the proxy, and nothing reaches the host', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['wrong credentials (407)', strict.url(CREDENTIALS), /upstream proxy answered 407/],
    ['CONNECT refused (403)', refusing.url(CREDENTIALS), /upstream proxy answered 403/],
    ['proxy down', down.url(CREDENTIALS), /upstream proxy 127\.0\.0\.1:\d+ failed: ECONNREFUSED/],
    ['proxy certificate not trusted', untrusted.url(CREDENTIALS), /upstream proxy 127\.0\.0\.1:\d+ failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
    ['proxy hangs up without answering', hangsUp.url(CREDENTIALS), /upstream proxy 127\.0\.0\.1:\d+ closed the connection without answering CONNECT/],
  ];
  for (const [name, url, cause] of cases) {
    const g = await gateway(url);
    try {
      const seen = secure.seen.length + plain.seen.length;
      const r = await request('https://api.example.test/never', { dispatcher: viaGateway(g) });
      const text = await r.body.text();
      t.equal(r.statusCode, 502, `${name}: 502`);
      t.match(text, cause, `${name}: the answer says what failed`);
      const c = await request('http://plain.example.test/never', { dispatcher: new ProxyAgent({ uri: g.proxyUrl, proxyTunnel: false }) });
      t.equal(c.statusCode, 502, `${name}: plain HTTP too`);
      await c.body.dump();
      t.equal(secure.seen.length + plain.seen.length, seen, `${name}: nothing reached an upstream`);
      t.notMatch(g.logText() + text, PASSWORD, `${name}: the proxy password is not logged or answered`);
      t.notMatch(g.logText() + text, encodeURIComponent(PASSWORD), `${name}: not even URL-encoded`);
      t.notMatch(g.logText() + text, EXPECTED_AUTH.slice('Basic '.length), `${name}: nor as the Basic credentials`);
    } finally {
      await g.stop();
    }
  }
  t.equal(strict.asks[0]?.proxyAuthorization, EXPECTED_AUTH, 'the refused credentials were the configured ones');
});

t.test('sign-in: discovery, token exchange and signing keys go through the proxy', async (t) => {
  const before = corp.asks.length;
  const g = await gateway(corp.url(CREDENTIALS), {
    files: { 'org.yaml': SSO_TEST_ORG_YAML },
    sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'groups'] }] },
  });
  t.teardown(() => g.stop());
  const browser = new ScriptedBrowser();
  const last = await browser.signIn(`${g.adminUrl}/auth/login?return_to=/dashboard`, 'ada@acme.example', (u) => u.startsWith(`${g.adminUrl}/dashboard`));
  t.equal(last.stoppedAt, `${g.adminUrl}/dashboard`, 'signed in');
  const idp = `127.0.0.1:${new URL(dev.issuer).port}`;
  const asked = corp.asks.slice(before).filter((a) => a.authority === idp);
  t.ok(asked.length >= 1, 'the gateway reached the IdP through the proxy');
  const paths = asked.flatMap((a) => a.requests ?? []).map((l) => new URL(l.split(' ')[1] as string, dev.issuer).pathname);
  const meta = (await (await fetch(`${dev.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string; token_endpoint: string };
  for (const want of ['/.well-known/openid-configuration', new URL(meta.jwks_uri).pathname, new URL(meta.token_endpoint).pathname]) {
    t.ok(paths.includes(want), `${want} went through the proxy (${paths.join(', ')})`);
  }
  t.ok(asked.every((a) => a.status === 200 && a.proxyAuthorization === EXPECTED_AUTH), 'with the proxy credentials');
  const session = await fetch(`${g.adminUrl}/auth/session`, { headers: { cookie: `tollgate_session=${browser.cookies(g.adminUrl).get('tollgate_session') ?? ''}` } });
  t.match(await session.json(), { email: 'ada@acme.example', admin: true }, 'the ID token verified with keys fetched through the proxy');
});

t.test('sign-in through a proxy that refuses: the IdP is reported unavailable and is never reached directly', async (t) => {
  const before = refusing.asks.length;
  const g = await gateway(refusing.url(), {
    files: { 'org.yaml': SSO_TEST_ORG_YAML },
    sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'groups'] }] },
  });
  t.teardown(() => g.stop());
  const r = await fetch(`${g.adminUrl}/auth/login`, { redirect: 'manual' });
  t.equal(r.status, 503);
  t.match(await r.text(), /Sign-in is unavailable/);
  t.ok(refusing.asks.length > before, 'discovery was tried through the proxy (and refused), not directly');
});

t.test('a proxy that never answers CONNECT: 504 naming it within connect_ms, nothing reaches the host', async (t) => {
  const g = await gateway(silent.url(), { timeouts: { connect_ms: 600 } });
  t.teardown(() => g.stop());
  const seen = secure.seen.length;
  const started = Date.now();
  const r = await request('https://api.example.test/never', { dispatcher: viaGateway(g) });
  const text = await r.body.text();
  t.equal(r.statusCode, 504);
  t.match(text, /upstream proxy 127\.0\.0\.1:\d+ did not set up the tunnel within 600 ms/);
  t.ok(Date.now() - started < 5000, 'bounded by connect_ms, not left hanging');
  t.equal(secure.seen.length, seen);
});

t.test('a user name alone (a token) is sent as credentials, for proxied traffic and for sign-in alike', async (t) => {
  const g = await gateway(userOnly.url('tokenonly'), {
    files: { 'org.yaml': SSO_TEST_ORG_YAML },
    sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'groups'] }] },
  });
  t.teardown(() => g.stop());
  const r = await request('https://api.example.test/token-only', { dispatcher: viaGateway(g) });
  t.equal(r.statusCode, 200);
  await r.body.dump();
  const login = await fetch(`${g.adminUrl}/auth/login`, { redirect: 'manual' });
  t.equal(login.status, 303, 'redirected to the IdP: discovery went through the proxy with the same credentials');
  t.ok(userOnly.asks.length >= 2 && userOnly.asks.every((a) => a.status === 200), 'every tunnel accepted');
});

t.test('shutdown does not wait on a proxy that never answers the IdP tunnel', async (t) => {
  const g = await gateway(silent.url(), {
    files: { 'org.yaml': SSO_TEST_ORG_YAML },
    sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'groups'] }] },
  });
  const r = await fetch(`${g.adminUrl}/auth/login`, { redirect: 'manual' });
  t.not(r.status, 303, 'discovery could not complete');
  await r.text();
  const started = Date.now();
  await g.stop();
  t.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`);
});
