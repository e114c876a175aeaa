// `tollgate login` against a running gateway and a real OpenID provider (oidc-provider, the dev
// issuer started here on loopback): authorization code + PKCE driven over HTTP, the device flow,
// the token exchange's refusals (replay, foreign nonce, wrong nonce, no team), group changes at
// the next login, and the issued token used through the proxy.
import { mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startDevIssuer } from '../../../src/identity/dev-issuer.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { loginToGateway } from '../../../src/identity/gateway-login.ts';
import { readLogin } from '../../../src/identity/login-store.ts';
import { fetchDiscovery } from '../../../src/identity/oidc/discovery.ts';
import { runDeviceFlow } from '../../../src/identity/oidc/public-client.ts';
import { SSO_TEST_ORG_YAML, startTestGateway } from '../../helpers/gateway-harness.ts';
import { idTokenFrom, ScriptedBrowser } from '../../helpers/oidc-browser.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const dev = await startDevIssuer({
  users: [
    { email: 'alice@acme.example', name: 'Alice', groups: ['alpha-people'] },
    { email: 'bob@acme.example', name: 'Bob', groups: ['alpha-people', 'beta-people'] },
    { email: 'ada@acme.example', name: 'Ada', groups: ['admins', 'alpha-people'] },
    { email: 'eve@acme.example', name: 'Eve', groups: ['contractors'] },
  ],
});
const echo = await startUpstream();
const gw = await startTestGateway({
  upstreams: { 'echo.alpha.test': echo.port },
  files: {
    'org.yaml': SSO_TEST_ORG_YAML,
  },
  sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'profile', 'groups'] }] },
});
t.teardown(async () => {
  await gw.stop();
  await dev.close();
  await echo.close();
});

const home = () => ({ ...process.env, XDG_CONFIG_HOME: mkdtempSync(path.join(os.tmpdir(), 'tollgate-login-')) });

/** Records what the CLI sends to the gateway's token endpoint. */
function recordingFetch(sent: Array<Record<string, unknown>>): typeof fetch {
  return async (input, init) => {
    if (String(input).endsWith('/api/v1/auth/token') && typeof init?.body === 'string') sent.push(JSON.parse(init.body) as Record<string, unknown>);
    return fetch(input, init);
  };
}

async function login(email: string, env: NodeJS.ProcessEnv, sent: Array<Record<string, unknown>> = []) {
  const browser = new ScriptedBrowser();
  let signedIn: Promise<unknown> = Promise.resolve();
  const out = await loginToGateway({
    gatewayUrl: gw.adminUrl, print: () => undefined, env, fetch: recordingFetch(sent),
    openUrl: async (url) => {
      signedIn = browser.signIn(url, email);
      return true;
    },
  });
  await signedIn;
  return { ...out, browser };
}

/** An ID token from the issuer for `email`, with any nonce (the gateway did not mint it). */
const idTokenFor = (email: string, nonce: string) => idTokenFrom(dev.issuer, email, nonce);

async function exchange(body: Record<string, unknown>) {
  const res = await fetch(`${gw.adminUrl}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string }; token?: string; teams?: string[] } };
}

async function mintNonce(): Promise<string> {
  const cfg = (await (await fetch(`${gw.adminUrl}/api/v1/auth/config`)).json()) as { nonce: string };
  return cfg.nonce;
}

function viaProxy(token: string | undefined, scope = 'alpha') {
  const auth = token === undefined ? '' : `Proxy-Authorization: Basic ${Buffer.from(`${scope}:${token}`).toString('base64')}\r\n`;
  return rawExchange(gw.proxyPort, `GET http://echo.alpha.test/hello HTTP/1.1\r\nHost: echo.alpha.test\r\n${auth}Connection: close\r\n\r\n`);
}

t.test('GET /api/v1/auth/config names the issuer and a nonce, unauthenticated', async (t) => {
  const res = await fetch(`${gw.adminUrl}/api/v1/auth/config`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('cache-control'), 'no-store');
  const body = (await res.json()) as { issuers: Array<{ name: string; issuer: string; client_id: string; scopes: string[] }>; nonce: string };
  t.match(body.issuers, [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'profile', 'groups'] }]);
  t.match(body.nonce, /^[0-9a-z]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
});

t.test('code + PKCE login end to end: stored 0600, attributed and scoped through the proxy', async (t) => {
  const env = home();
  const sent: Array<Record<string, unknown>> = [];
  const { login: rec, file, browser } = await login('alice@acme.example', env, sent);
  t.same(rec.teams, ['alpha']);
  t.equal(rec.user, 'alice@acme.example');
  t.match(rec.token, /^tg_[A-Za-z0-9_-]{43}$/);
  t.equal(rec.proxy, `http://127.0.0.1:${gw.proxyPort}`);
  t.ok(Date.parse(rec.expiresAt) - Date.now() > 11.9 * 3_600_000, 'a 12 h token by default');
  t.equal(statSync(file).mode & 0o777, 0o600, 'credentials.json is 0600');
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700, 'its folder is 0700');
  t.equal(statSync(path.join(path.dirname(file), 'ca.pem')).isFile(), true, 'the gateway CA is stored for env/run/setup');
  t.same(readLogin(env), rec, 'readLogin returns what login stored');
  t.equal(readLogin({ ...env, TOLLGATE_TOKEN: 'tg_override' })?.token, 'tg_override', 'TOLLGATE_TOKEN overrides');

  const authz = browser.hops.find((h) => h.url.includes('/auth?'));
  const q = new URL(authz?.url ?? 'http://x/').searchParams;
  t.equal(q.get('code_challenge_method'), 'S256');
  t.match(q.get('redirect_uri'), /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
  t.equal(q.get('nonce'), sent[0]?.['nonce'], 'the gateway nonce went to the IdP');
  t.ok(q.get('state'));

  const ok = await viaProxy(rec.token);
  t.match(ok.text, /^HTTP\/1\.1 200/, 'the token works as the proxy password');
  const ex = gw.exchanges().at(-1);
  t.match(ex, { principal: 'user:alice@acme.example', team: 'alpha' });
  t.match((await viaProxy(rec.token, 'beta')).text, /^HTTP\/1\.1 407/, 'not valid for a team the user is not in');
  t.match((await viaProxy(undefined)).text, /^HTTP\/1\.1 407/, 'no token → 407');
  const logged = gw.logs.find((l) => l['msg'] === 'sso_login' && l['event'] === 'token_issued');
  t.match(logged, { email: 'alice@acme.example', teams: ['alpha'], flow: 'code', issuer: 'test', admin: false });
  t.notOk(gw.logText().includes(rec.token), 'the token never reaches the log');

  t.test('the same ID token cannot be exchanged twice', async (t) => {
    const again = await exchange(sent[0] ?? {});
    t.equal(again.status, 401);
    t.equal(again.body.error?.code, 'id_token_replayed');
  });
});

t.test('nonce checks at the exchange', async (t) => {
  const foreign = await idTokenFor('alice@acme.example', 'not-a-gateway-nonce');
  const r1 = await exchange({ issuer: 'test', id_token: foreign, nonce: 'not-a-gateway-nonce', flow: 'code' });
  t.equal(r1.status, 400, 'a nonce the gateway did not mint');
  t.match(r1.body.error?.message, /did not start at this gateway/);

  const n1 = await mintNonce();
  const n2 = await mintNonce();
  const tok = await idTokenFor('alice@acme.example', n1);
  const r2 = await exchange({ issuer: 'test', id_token: tok, nonce: n2, flow: 'code' });
  t.equal(r2.status, 401, 'the ID token carries another nonce');
  t.equal(r2.body.error?.code, 'id_token_invalid');
  const r3 = await exchange({ issuer: 'test', id_token: tok, flow: 'code' });
  t.equal(r3.status, 400, 'the code flow requires a nonce');
  const r4 = await exchange({ issuer: 'test', id_token: tok, flow: 'device' });
  t.equal(r4.status, 401, 'a token with a nonce presented as nonce-less');
  const r5 = await exchange({ issuer: 'test', id_token: tok, nonce: n1, flow: 'code' });
  t.equal(r5.status, 200, 'the matching nonce works');
  const r6 = await exchange({ issuer: 'nope', id_token: tok, nonce: n1, flow: 'code' });
  t.equal(r6.status, 400);
  t.match(r6.body.error?.message, /Unknown issuer/);
});

t.test('a user whose groups map to no team is refused with a clear message', async (t) => {
  const nonce = await mintNonce();
  const tok = await idTokenFor('eve@acme.example', nonce);
  const r = await exchange({ issuer: 'test', id_token: tok, nonce, flow: 'code' });
  t.equal(r.status, 403);
  t.equal(r.body.error?.code, 'no_team');
  t.match(r.body.error?.message, /eve@acme\.example.*contractors.*idp_groups/);
  await t.rejects(login('eve@acme.example', home()), { code: 'TOLLGATE_ERR_REQUEST', message: /none of your groups/ });
});

t.test('group changes take effect at the next login', async (t) => {
  const env = home();
  const first = await login('bob@acme.example', env);
  t.same(first.login.teams, ['alpha', 'beta']);
  dev.setGroups('bob@acme.example', ['beta-people']);
  t.teardown(() => dev.setGroups('bob@acme.example', ['alpha-people', 'beta-people']));
  const second = await login('bob@acme.example', env);
  t.same(second.login.teams, ['beta'], 'the new token has only the new team');
  t.match((await viaProxy(second.login.token, 'alpha')).text, /^HTTP\/1\.1 407/);
  t.match((await viaProxy(first.login.token, 'alpha')).text, /^HTTP\/1\.1 200/, 'the old token keeps its teams until it expires or is revoked');
});

t.test('admins get the admin role on their token', async (t) => {
  const out = await login('ada@acme.example', home());
  t.equal(out.admin, true);
  const admin = await fetch(`${gw.adminUrl}/api/v1/auth/revoke`, { method: 'POST', headers: { authorization: `Bearer ${out.login.token}` } });
  t.equal(admin.status, 200, 'a token can revoke itself (logout)');
  t.match((await viaProxy(out.login.token)).text, /^HTTP\/1\.1 407/, 'revoked at once');
  // ... and the sign-out is in the audit trail (written by the gateway's audit thread: poll briefly).
  const db = openDatabase(path.join(gw.dir, 'data', 'tollgate.db'));
  t.teardown(() => db.close());
  let ev: { actor: string; detail: string } | undefined;
  for (let i = 0; i < 100 && !ev; i++) {
    ev = db.prepare("SELECT actor, detail FROM audit_events WHERE type = 'token_revoked' AND json_extract(detail, '$.by') = 'logout'").get() as typeof ev;
    if (!ev) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(ev?.actor, 'user:ada@acme.example');
  t.match(JSON.parse(ev?.detail ?? '{}'), { by: 'logout', token_ids: [/^tok_/], subjects: ['ada@acme.example'] });
  t.notMatch(ev?.detail ?? '', out.login.token, 'never the token');
});

t.test('an ID token is not a gateway token, and a gateway token is not an ID token (5.04)', async (t) => {
  const out = await login('ada@acme.example', home());
  t.equal(out.admin, true);
  const gatewayToken = out.login.token;
  // Ada's ID token: validly signed by the trusted issuer, for our client, carrying the admin group.
  const idToken = await idTokenFor('ada@acme.example', 'any-nonce');
  t.match(idToken, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const policy = (bearer: string) => fetch(`${gw.adminUrl}/api/v1/policy`, { headers: { authorization: `Bearer ${bearer}` } });

  const ctl = await policy(gatewayToken);
  t.equal(ctl.status, 200, 'control: her gateway token is an admin bearer');
  await ctl.body?.cancel();
  const asAdmin = await policy(idToken);
  t.equal(asAdmin.status, 401, 'the ID token as an admin bearer');
  t.match(await asAdmin.json(), { error: { code: 'auth_invalid' } });
  const asLogout = await fetch(`${gw.adminUrl}/api/v1/auth/revoke`, { method: 'POST', headers: { authorization: `Bearer ${idToken}` } });
  t.equal(asLogout.status, 401, 'the ID token cannot log out (revoke) a gateway token either');
  await asLogout.body?.cancel();

  const basic = `Basic ${Buffer.from(`alpha:${idToken}`).toString('base64')}`;
  t.ok(basic.length < 4096, 'the header is within the size limit: refused for what it is, not for its length');
  const seen = echo.seen.length;
  t.match((await viaProxy(gatewayToken)).text, /^HTTP\/1\.1 200/, 'control: her gateway token as the proxy password');
  t.equal(echo.seen.length, seen + 1);
  for (const auth of [basic, `Bearer ${idToken}`]) {
    const r = await rawExchange(gw.proxyPort, `GET http://echo.alpha.test/id-token HTTP/1.1\r\nHost: echo.alpha.test\r\nProxy-Authorization: ${auth}\r\nConnection: close\r\n\r\n`);
    t.match(r.text, /^HTTP\/1\.1 407/, `${auth.split(' ')[0] ?? ''}: the ID token as the proxy credential`);
    t.match(r.text, /X-Tollgate-Reason: auth_invalid/);
  }
  t.equal(echo.seen.length, seen + 1, 'nothing reached the upstream with the ID token');

  for (const flow of ['code', 'device'] as const) {
    const r = await exchange({ issuer: 'test', id_token: gatewayToken, nonce: await mintNonce(), flow });
    t.equal(r.status, 401, `${flow}: a gateway token sent as id_token`);
    t.equal(r.body.error?.code, 'id_token_invalid');
    t.notOk(r.body.token, 'no token issued');
  }
});

t.test('device flow (RFC 8628) end to end: authorization_pending until the person confirms', async (t) => {
  const env = home();
  const browser = new ScriptedBrowser();
  const lines: string[] = [];
  let complete: string | undefined;
  let signedIn: Promise<unknown> | undefined;
  const waits: number[] = [];
  const out = await loginToGateway({
    gatewayUrl: gw.adminUrl, device: true, env, openUrl: async () => false,
    print: (line) => {
      lines.push(line);
      complete ??= /\(or open (\S+)\)/.exec(line)?.[1];
    },
    sleep: async (ms) => {
      waits.push(ms);
      // the person confirms only after the CLI has polled twice (authorization_pending)
      if (waits.length === 3 && complete) signedIn = browser.signIn(complete, 'alice@acme.example');
      await signedIn;
      await new Promise((r) => setTimeout(r, 100));
    },
  });
  t.same(out.login.teams, ['alpha']);
  t.match(lines.join('\n'), /visit http:\/\/127\.0\.0\.1:\d+\/device and enter the code [A-Z-]+/);
  t.ok(waits.length >= 3, 'it polled until the user confirmed');
  t.match(gw.logs.filter((l) => l['msg'] === 'sso_login').at(-1), { event: 'token_issued', flow: 'device' });
  t.match((await viaProxy(out.login.token)).text, /^HTTP\/1\.1 200/);
});

t.test('device flow: the login ends when the device code expires', async (t) => {
  const metadata = await fetchDiscovery(dev.issuer);
  let clock = Date.now();
  let polls = 0;
  await t.rejects(runDeviceFlow({
    metadata, clientId: 'tollgate-dev', scopes: ['openid'], nonce: 'n', print: () => undefined,
    now: () => clock,
    sleep: async () => {
      polls++;
      clock += 200_000;
      await new Promise((r) => setTimeout(r, 50));
    },
  }), { code: 'bad_request', message: /device code expired/ });
  t.ok(polls >= 3 && polls <= 4, `stopped at expires_in (600 s) after ${polls} waits`);
});
