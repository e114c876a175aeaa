// Admin sign-in through the same SSO: /auth/login → IdP (code + PKCE) → /auth/callback → session
// cookie (attributes pinned), /auth/session, /auth/logout (a store locked by another connection:
// 503 and the session lives on; without a live session: nothing written); and authenticateAdmin on a real
// server: session cookie or an admin's bearer token, 401/403 decisions, CSRF and Origin refusals.
// Sign-ins, refusals after the IdP round trip, and sign-outs are audit events.
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
import { until } from '../../helpers/cli-process.ts';
import { ScriptedBrowser } from '../../helpers/oidc-browser.ts';

const dev = await startDevIssuer({
  users: [
    { email: 'ada@acme.example', name: 'Ada', groups: ['admins'] },
    { email: 'alice@acme.example', name: 'Alice', groups: ['alpha-people'] },
    { email: 'nobody@acme.example', name: 'Nobody', groups: ['contractors'] },
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

/** Holds the write lock of tollgate.db from another connection (as a CLI verb would) while `fn` runs. */
async function withStoreLocked<T>(fn: (other: BetterSqlite3.Database) => Promise<T>): Promise<T> {
  const other = new BetterSqlite3(path.join(gw.dir, 'data/tollgate.db'));
  try {
    other.exec('BEGIN IMMEDIATE');
    try {
      return await fn(other);
    } finally {
      other.exec('ROLLBACK');
    }
  } finally {
    other.close();
  }
}

const busyWarnings = () => gw.logs.filter((l) => l['msg'] === 'admin sign-out: the session store could not be written').length;
const sessionRows = (db: BetterSqlite3.Database) => (db.prepare('SELECT id_hash FROM admin_sessions ORDER BY id_hash').all() as Array<{ id_hash: string }>).map((r) => r.id_hash);

t.test('sign-out while the session store is busy: 503 store_unavailable, and the session lives on', async (t) => {
  const { browser } = await signIn('ada@acme.example');
  const sessionId = browser.cookies(gw.adminUrl).get('tollgate_session') ?? '';
  const jar = `tollgate_session=${sessionId}`;
  const { csrf_token: csrf } = (await (await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).json()) as { csrf_token: string };
  const logout = () => fetch(`${gw.adminUrl}/auth/logout`, { method: 'POST', headers: { cookie: jar, 'x-csrf-token': csrf } });

  const warnedBefore = busyWarnings();
  const busy = await withStoreLocked(async (other) => {
    t.ok(sessionRows(other).includes(sessionIdHash(sessionId)), 'the session is stored');
    return logout();
  });
  t.equal(busy.status, 503, 'refused while another connection holds the write lock');
  t.match(await busy.json(), { error: { code: 'store_unavailable', message: /sign out again/ } });
  t.same(busy.headers.getSetCookie(), [], 'the cookie is not cleared: the browser is not told it signed out');
  t.equal(busyWarnings(), warnedBefore + 1, 'logged once');

  t.equal((await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).status, 200, 'the lock released: still signed in (the session was not ended)');
  const retry = await logout();
  t.equal(retry.status, 200, 'signing out again works');
  t.match(retry.headers.getSetCookie()[0], /^tollgate_session=; Path=\/; Max-Age=0;/);
  t.equal((await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).status, 401, 'now it is ended');
});

t.test('an anonymous sign-out writes nothing: it answers 200 even while the store is locked', async (t) => {
  const { browser } = await signIn('alice@acme.example'); // a live session of someone else, to see that it is untouched
  const live = sessionIdHash(browser.cookies(gw.adminUrl).get('tollgate_session') ?? '');
  const unknown = 'A'.repeat(43); // well formed (43 characters, like a real id), but names no session
  // A sign-out that tried to write (even a DELETE that matches no row) would wait for the lock
  // and answer 503, as in the test above.
  const warnedBefore = busyWarnings();
  const { answers, before, after } = await withStoreLocked(async (other) => {
    const before = sessionRows(other);
    const answers = [];
    const requests: Array<Record<string, string>> = [{}, { cookie: `tollgate_session=${unknown}` }, { cookie: `tollgate_session=${unknown}`, origin: 'https://evil.test' }];
    for (const headers of requests) {
      const res = await fetch(`${gw.adminUrl}/auth/logout`, { method: 'POST', headers });
      answers.push({ status: res.status, body: await res.json(), cookie: res.headers.getSetCookie()[0] });
    }
    return { answers, before, after: sessionRows(other) };
  });
  for (const a of answers) {
    t.match(a, { status: 200, body: { signed_out: true }, cookie: /^tollgate_session=; Path=\/; Max-Age=0;/ }, 'signed out (the cookie cleared), no CSRF token needed');
  }
  t.ok(before.includes(live), 'a live session is stored');
  t.same(after, before, 'admin_sessions unchanged');
  t.equal(busyWarnings(), warnedBefore, 'and no busy store was met');
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

/** The gateway's audit events of `type`, in chain order. */
function auditEvents(type: string): Array<{ actor: string; detail: Record<string, unknown> }> {
  const db = new BetterSqlite3(path.join(gw.dir, 'data/tollgate.db'), { readonly: true });
  try {
    return (db.prepare('SELECT actor, detail FROM audit_events WHERE type = ? ORDER BY seq').all(type) as Array<{ actor: string; detail: string }>)
      .map((r) => ({ actor: r.actor, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

t.test('dashboard sign-ins, refusals after the IdP and sign-outs are audit events', async (t) => {
  const refusedBefore = auditEvents('admin_sign_in_refused').length;
  const inBefore = auditEvents('admin_signed_in').length;
  const outBefore = auditEvents('admin_signed_out').length;
  // a state this gateway never issued: refused and logged, not an event (anyone can call the URL)
  t.equal((await fetch(`${gw.adminUrl}/auth/callback?state=nope&code=abc`, { headers: { cookie: 'tollgate_login=nope' } })).status, 400);
  // the IdP signs in a user of no team and no admin group: refused after the round trip
  const nobody = await signIn('nobody@acme.example');
  t.equal(nobody.callback?.status, 403, 'refused');
  t.equal(nobody.browser.cookies(gw.adminUrl).get('tollgate_session'), undefined, 'no session');
  await until('the refusal event', () => auditEvents('admin_sign_in_refused').length > refusedBefore, 5000);
  const refused = auditEvents('admin_sign_in_refused').slice(refusedBefore);
  t.same(refused, [{ actor: 'anonymous', detail: { issuer: dev.issuer, code: 'no_team', source: '127.0.0.1' } }], 'one event, for the refusal after the IdP only');

  const { browser } = await signIn('ada@acme.example');
  const jar = `tollgate_session=${browser.cookies(gw.adminUrl).get('tollgate_session') ?? ''}`;
  await until('the sign-in event', () => auditEvents('admin_signed_in').length > inBefore, 5000);
  const [signedIn] = auditEvents('admin_signed_in').slice(inBefore);
  t.match(signedIn, { actor: 'user:ada@acme.example', detail: { issuer: dev.issuer, admin: true, source: '127.0.0.1', expires_at: /^\d{4}-\d\d-\d\dT/ } });
  const { csrf_token: csrf } = (await (await fetch(`${gw.adminUrl}/auth/session`, { headers: { cookie: jar } })).json()) as { csrf_token: string };
  t.equal((await fetch(`${gw.adminUrl}/auth/logout`, { method: 'POST', headers: { cookie: jar, 'x-csrf-token': csrf } })).status, 200);
  await until('the sign-out event', () => auditEvents('admin_signed_out').length > outBefore, 5000);
  t.same(auditEvents('admin_signed_out').slice(outBefore), [{ actor: 'user:ada@acme.example', detail: { issuer: dev.issuer, source: '127.0.0.1' } }]);
  t.notOk(JSON.stringify([...refused, signedIn]).includes(jar.split('=')[1] as string), 'no session id in any event');
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

// Last in this file: it leaves 127.0.0.1 blocked for a minute.
t.test('callback refusals count against the address: past the limit, 429 and nothing logged or audited', async (t) => {
  const refusals = () => gw.logs.filter((l) => l['msg'] === 'admin sign-in refused').length;
  const eventsBefore = auditEvents('admin_sign_in_refused').length;
  let first429 = -1;
  for (let i = 0; i < 40 && first429 < 0; i++) {
    const r = await fetch(`${gw.adminUrl}/auth/callback?state=s${i}&code=x`, { headers: { cookie: `tollgate_login=other${i}` } });
    if (r.status === 429) first429 = i;
    else t.equal(r.status, 400);
    await r.body?.cancel();
  }
  t.ok(first429 > 0 && first429 <= 30, `limited after ${first429} refusals`);
  const logged = refusals();
  const again = await fetch(`${gw.adminUrl}/auth/callback?state=z&code=x&error=${'x'.repeat(5000)}`, { headers: { cookie: 'tollgate_login=z' } });
  t.equal(again.status, 429);
  t.ok(Number(again.headers.get('retry-after')) > 0, 'Retry-After');
  t.equal(refusals(), logged, 'no log line past the limit');
  t.equal(auditEvents('admin_sign_in_refused').length, eventsBefore, 'and no audit row: none of these reached the IdP');
});
