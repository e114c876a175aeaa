// Admin sign-in through the same SSO: /auth/login → IdP (code + PKCE) → /auth/callback → session
// cookie (attributes pinned), /auth/session, /auth/logout; and authenticateAdmin on a real
// server: session cookie or an admin's bearer token, 401/403 decisions, CSRF and Origin refusals.
import http from 'node:http';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type net from 'node:net';
import t from 'tap';
import { createAdminAuthenticator, sendAdminAuthFailure } from '../../../src/admin/admin-auth.ts';
import { createAdminSessions, sessionIdHash } from '../../../src/admin/admin-sessions.ts';
import { startDevIssuer } from '../../../src/identity/dev-issuer.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import type { OrgConfig } from '../../../src/policy/types.ts';
import { createMemoryTokenStore } from '../../../src/store/memory-token-store.ts';
import { SSO_TEST_ORG_YAML, startTestGateway } from '../../helpers/gateway-harness.ts';
import { ScriptedBrowser } from '../../helpers/oidc-browser.ts';

const dev = await startDevIssuer({
  users: [
    { email: 'ada@acme.example', name: 'Ada', groups: ['admins'] },
    { email: 'alice@acme.example', name: 'Alice', groups: ['alpha-people'] },
  ],
});
const gw = await startTestGateway({
  files: {
    'org.yaml': SSO_TEST_ORG_YAML,
  },
  sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'groups'] }], session_ttl: '2h' },
});
t.teardown(async () => {
  await gw.stop();
  await dev.close();
});

async function signIn(email: string) {
  const browser = new ScriptedBrowser();
  const isDashboard = (u: string) => u.startsWith(`${gw.adminUrl}/dashboard`);
  const last = await browser.signIn(`${gw.adminUrl}/auth/login?return_to=/dashboard/costs`, email, isDashboard);
  return { browser, last, callback: browser.hops.find((h) => h.url.startsWith(`${gw.adminUrl}/auth/callback`)) };
}

t.test('browser sign-in sets a session cookie with safe attributes', async (t) => {
  const { browser, last, callback } = await signIn('ada@acme.example');
  t.equal(last.stoppedAt, `${gw.adminUrl}/dashboard/costs`, 'back to return_to');
  const login = browser.hops.find((h) => h.url.startsWith(`${gw.adminUrl}/auth/login`));
  t.match(login?.headers.getSetCookie().join('\n'), /^tollgate_login=[A-Za-z0-9_-]+; Path=\/auth\/callback; Max-Age=600; HttpOnly; SameSite=Lax$/);
  const authorize = new URL(login?.headers.get('location') ?? 'http://x/');
  t.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  t.equal(authorize.searchParams.get('redirect_uri'), `${gw.adminUrl}/auth/callback`);
  const cookies = callback?.headers.getSetCookie() ?? [];
  const session = cookies.find((c) => c.startsWith('tollgate_session='));
  t.match(session, /^tollgate_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=7200; HttpOnly; SameSite=Lax$/, 'HttpOnly, SameSite=Lax, no Secure over plain http, 2 h');
  t.ok(cookies.some((c) => /^tollgate_login=; .*Max-Age=0/.test(c)), 'the login cookie is cleared');

  const jar = `tollgate_session=${browser.cookies(gw.adminUrl).get('tollgate_session') ?? ''}`;
  const info = await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } });
  t.equal(info.status, 200);
  const body = (await info.json()) as { email: string; admin: boolean; csrf_token: string };
  t.match(body, { email: 'ada@acme.example', admin: true });
  t.match(body.csrf_token, /^[A-Za-z0-9_-]{32}$/);
  const sessionId = browser.cookies(gw.adminUrl).get('tollgate_session') ?? '';
  const storedSessions = () => {
    const db = new BetterSqlite3(path.join(gw.dir, 'data/tollgate.db'), { readonly: true });
    try {
      return (db.prepare('SELECT id_hash FROM admin_sessions').all() as Array<{ id_hash: string }>).map((r) => r.id_hash);
    } finally {
      db.close();
    }
  };
  t.ok(storedSessions().includes(sessionIdHash(sessionId)), 'the session is kept in tollgate.db (a restart signs no one out), by its hash');

  t.test('logout needs the CSRF token (or a same-origin Origin)', async (t) => {
    const forged = await fetch(`${gw.adminUrl}/auth/logout`, { method: 'POST', headers: { cookie: jar, origin: 'https://evil.test' } });
    t.equal(forged.status, 403);
    t.equal((await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).status, 200, 'still signed in');
    const ok = await fetch(`${gw.adminUrl}/auth/logout`, { method: 'POST', headers: { cookie: jar, 'x-csrf-token': body.csrf_token } });
    t.equal(ok.status, 200);
    t.match(ok.headers.getSetCookie()[0], /^tollgate_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax$/);
    t.equal((await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).status, 401, 'the server-side session is gone');
    t.notOk(storedSessions().includes(sessionIdHash(sessionId)), 'from tollgate.db too');
  });
});

t.test('the callback refuses a missing or foreign state, and a replayed one', async (t) => {
  const b = new ScriptedBrowser();
  const first = await b.request(`${gw.adminUrl}/auth/login`);
  const state = new URL(first.headers.get('location') ?? 'http://x/').searchParams.get('state') ?? '';
  const noCookie = await fetch(`${gw.adminUrl}/auth/callback?state=${state}&code=abc`);
  t.equal(noCookie.status, 400, 'state not bound to this browser');
  const wrong = await b.request(`${gw.adminUrl}/auth/callback?state=other&code=abc`);
  t.equal(wrong.status, 400);
  const fake = await fetch(`${gw.adminUrl}/auth/callback?state=${state}&code=forged`, { headers: { cookie: `tollgate_login=${state}` } });
  t.equal(fake.status, 400, 'a forged code is refused by the IdP');
  const replay = await fetch(`${gw.adminUrl}/auth/callback?state=${state}&code=forged`, { headers: { cookie: `tollgate_login=${state}` } });
  t.match(await replay.text(), /expired or was already used/, 'a state works once');
  t.notOk(gw.logText().includes('tollgate_session='), 'session ids are not logged');
});

t.test('a signed-in non-admin gets a session, but /auth/session says admin: false', async (t) => {
  const { browser } = await signIn('alice@acme.example');
  const jar = `tollgate_session=${browser.cookies(gw.adminUrl).get('tollgate_session') ?? ''}`;
  t.match(await (await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).json(), { email: 'alice@acme.example', admin: false });
});

t.test('authenticateAdmin: session cookie or admin bearer; CSRF and Origin', async (t) => {
  let adminGroups = ['admins'];
  const org = () => ({ adminGroups } as unknown as OrgConfig);
  const tokens = createTokenService(createMemoryTokenStore());
  const sessions = createAdminSessions({ ttlMs: 60_000 });
  const authenticateAdmin = createAdminAuthenticator({ tokens, sessions, org });
  const server = http.createServer((req, res) => {
    void authenticateAdmin(req).then((d) => {
      if (!d.ok) return sendAdminAuthFailure(res, d);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ email: d.principal.email, via: d.principal.via }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const call = async (method: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/api/v1/anything`, { method, headers });
    const body = (await res.json()) as { email?: string; via?: string; error?: { code: string } };
    return { status: res.status, code: body.error?.code, body, www: res.headers.get('www-authenticate') };
  };
  const now = Date.now();
  const admin = await tokens.issueToken({ kind: 'user', subject: 'ada@acme.example', teams: ['alpha'], roles: ['admin'], issuedBy: 'test', now });
  const plain = await tokens.issueToken({ kind: 'user', subject: 'bob@acme.example', teams: ['alpha'], issuedBy: 'test', now });
  const agent = await tokens.issueToken({ kind: 'agent', subject: 'alpha-bot', teams: ['alpha'], issuedBy: 'test', now });
  const adminSession = sessions.create({ email: 'ada@acme.example', issuer: 'x', subject: 's1', groups: ['admins'] }, now);
  const userSession = sessions.create({ email: 'bob@acme.example', issuer: 'x', subject: 's2', groups: ['alpha-people'] }, now);
  const cookie = (id: string) => ({ cookie: `tollgate_session=${id}` });

  t.match(await call('GET'), { status: 401, code: 'auth_required', www: /^Bearer/ });
  t.match(await call('GET', { authorization: 'Bearer tg_nope' }), { status: 401, code: 'auth_invalid' });
  t.match(await call('GET', { authorization: `Bearer ${plain.token}` }), { status: 403, code: 'admin_required' });
  t.match(await call('GET', { authorization: `Bearer ${agent.token}` }), { status: 403, code: 'admin_required' });
  t.match(await call('GET', { authorization: `Bearer ${admin.token}` }), { status: 200, body: { email: 'ada@acme.example', via: 'token' } });
  t.match(await call('POST', { authorization: `Bearer ${admin.token}` }), { status: 200 }, 'a bearer needs no CSRF token');
  t.match(await call('POST', { authorization: `Bearer ${admin.token}`, origin: 'https://evil.test' }), { status: 403, code: 'origin_refused' });

  t.match(await call('GET', cookie(adminSession.id)), { status: 200, body: { via: 'session' } });
  t.match(await call('GET', cookie(userSession.id)), { status: 403, code: 'admin_required' });
  t.match(await call('POST', cookie(adminSession.id)), { status: 403, code: 'csrf_failed' });
  t.match(await call('DELETE', { ...cookie(adminSession.id), 'x-csrf-token': 'wrong' }), { status: 403, code: 'csrf_failed' });
  t.match(await call('POST', { ...cookie(adminSession.id), 'x-csrf-token': adminSession.session.csrfToken }), { status: 200 });
  t.match(await call('POST', { ...cookie(adminSession.id), 'x-csrf-token': adminSession.session.csrfToken, origin: 'https://evil.test' }), { status: 403, code: 'origin_refused' });
  t.match(await call('POST', { ...cookie(adminSession.id), 'x-csrf-token': adminSession.session.csrfToken, 'sec-fetch-site': 'cross-site' }), { status: 403, code: 'origin_refused' });
  t.match(await call('POST', { ...cookie(adminSession.id), 'x-csrf-token': adminSession.session.csrfToken, origin: base }), { status: 200 }, 'same origin is fine');
  t.match(await call('GET', cookie('x'.repeat(43))), { status: 401 });

  adminGroups = ['someone-else'];
  t.match(await call('GET', cookie(adminSession.id)), { status: 403, code: 'admin_required' }, 'org.yaml admin groups apply to live sessions at once');
  await tokens.revoke({ id: admin.record.id }, Date.now());
  t.match(await call('GET', { authorization: `Bearer ${admin.token}` }), { status: 401 }, 'a revoked admin token is refused');
});
