// Security cases 9.02–9.05 and 6.14 on the admin API of a running gateway: authorisation on every
// route and verb for every kind of caller, path variants, body limits, prototype pollution, foreign
// Host (DNS rebinding), foreign Origin and cross-site form posts, CORS preflights, and the absence
// of any route that edits audit rows or budgets.
import t from 'tap';
import { adminRequest, startAdminFixture, type ApiAnswer } from './admin-fixture.ts';

const fx = await startAdminFixture();
t.teardown(() => fx.close());
const port = fx.tg.gw.admin.port;
const origin = fx.tg.adminUrl;

const ROUTES: Array<{ method: string; path: string; admin: number; body?: string }> = [
  { method: 'GET', path: '/api/v1/audit', admin: 200 },
  { method: 'GET', path: '/api/v1/audit/summary', admin: 200 },
  { method: 'GET', path: '/api/v1/audit/export?format=csv', admin: 200 },
  { method: 'GET', path: '/api/v1/costs?by=team', admin: 200 },
  { method: 'GET', path: '/api/v1/costs/trend', admin: 200 },
  { method: 'GET', path: '/api/v1/budgets', admin: 200 },
  { method: 'GET', path: '/api/v1/policy', admin: 200 },
  { method: 'GET', path: '/api/v1/agents', admin: 200 },
  { method: 'POST', path: '/api/v1/tokens/revoke', admin: 200, body: '{"id":"tok_0000000000000000"}' },
  // verbs no route answers: no update or delete of audit rows (9.05), no budget edits (6.14)
  { method: 'DELETE', path: '/api/v1/audit', admin: 405 },
  { method: 'PUT', path: '/api/v1/audit', admin: 405, body: '{}' },
  { method: 'PATCH', path: '/api/v1/audit', admin: 405, body: '{}' },
  { method: 'POST', path: '/api/v1/audit', admin: 405, body: '{}' },
  { method: 'DELETE', path: '/api/v1/audit/export', admin: 405 },
  { method: 'PUT', path: '/api/v1/budgets', admin: 405, body: '{"scope":"team:alpha","monthly_usd":1e999}' },
  { method: 'POST', path: '/api/v1/budgets', admin: 405, body: '{"scope":"team:alpha","monthly_usd":1000000}' },
  { method: 'PATCH', path: '/api/v1/budgets', admin: 405, body: '{"scope":"team:alpha","monthly_usd":-1}' },
  { method: 'GET', path: '/api/v1/tokens/revoke', admin: 405 },
  { method: 'PUT', path: '/api/v1/policy', admin: 405, body: '{}' },
  { method: 'POST', path: '/api/v1/agents', admin: 405, body: '{"agent":"alpha-bot","team":"beta"}' },
  { method: 'GET', path: '/api/v1/budgets/import', admin: 404 },
  { method: 'POST', path: '/api/v1/budgets/temporary-increase', admin: 404, body: '{"usd":"100"}' },
  { method: 'DELETE', path: '/api/v1/audit/1', admin: 404 },
  { method: 'GET', path: '/api/v1', admin: 404 },
];

type Caller = { name: string; headers: (unsafe: boolean) => Record<string, string>; expect: (adminStatus: number) => number[] };
const CALLERS: Caller[] = [
  { name: 'nobody', headers: () => ({}), expect: () => [401] },
  { name: 'agent token', headers: () => ({ authorization: `Bearer ${fx.tg.token}` }), expect: () => [401, 403] },
  { name: 'agent token (other team)', headers: () => ({ authorization: `Bearer ${fx.tg.tokenB}` }), expect: () => [401, 403] },
  { name: 'non-admin user token', headers: () => ({ authorization: `Bearer ${fx.userBearer}` }), expect: () => [403] },
  { name: 'non-admin session (Alice)', headers: (u) => ({ cookie: fx.aliceCookie, ...(u ? { 'x-csrf-token': fx.aliceCsrf, origin } : {}) }), expect: () => [403] },
  { name: 'garbage bearer', headers: () => ({ authorization: 'Bearer tg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), expect: () => [401] },
  { name: 'admin token', headers: () => ({ authorization: `Bearer ${fx.adminBearer}` }), expect: (s) => [s] },
  { name: 'admin session', headers: (u) => ({ cookie: fx.adminCookie, ...(u ? { 'x-csrf-token': fx.adminCsrf, origin } : {}) }), expect: (s) => [s] },
];

const send = (method: string, path: string, headers: Record<string, string>, body?: string): Promise<ApiAnswer> =>
  adminRequest(port, method, path, { headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body } : {}) });

t.test('9.02: every route and verb, for every kind of caller', async (t) => {
  for (const c of CALLERS) {
    for (const r of ROUTES) {
      const unsafe = !['GET', 'HEAD', 'OPTIONS'].includes(r.method);
      const res = await send(r.method, r.path, c.headers(unsafe), r.body);
      const want = c.expect(r.admin);
      t.ok(want.includes(res.status), `${c.name}: ${r.method} ${r.path} → ${res.status} (want ${want.join('/')}) ${res.status >= 400 ? res.json?.error?.code : ''}`);
      if (res.status === 401 || res.status === 403) {
        t.notOk('access-control-allow-origin' in res.headers, 'no CORS grant');
        t.match(res.json, { error: { code: /^(auth_required|auth_invalid|admin_required|csrf_failed|origin_refused)$/ } });
      }
    }
  }
});

t.test('9.02: path variants get the same answer as the canonical path', async (t) => {
  const variants = (p: string) => [
    p, p.toUpperCase(), p.replace('/api/v1/', '/API/V1/'), p.replace('/api/v1/', '/api/v1/../v1/'), p.replace('/api/v1/', '/api/v1/../../api/v1/'),
    p.replace('/api/v1/', '//api//v1//'), `${p}/`, `${p};x`, p.replace('/api/', '/api;jsessionid=1/'), p.replace('/v1/', '/%76%31/'), p.replace('/api/v1/', '/api/v1/./'),
    p.replace('/api/v1/', '/api/v1/%2e%2e/v1/'),
  ];
  const checks: Array<[string, Record<string, string>]> = [
    ['nobody', {}], ['agent', { authorization: `Bearer ${fx.tg.token}` }], ['alice', { cookie: fx.aliceCookie }], ['admin', { authorization: `Bearer ${fx.adminBearer}` }],
  ];
  for (const path of ['/api/v1/policy', '/api/v1/budgets', '/api/v1/agents']) {
    for (const [who, headers] of checks) {
      const canonical = await send('GET', path, headers);
      for (const v of variants(path)) {
        const r = await send('GET', v, headers);
        t.equal(r.status, canonical.status, `${who} ${v}`);
        if (path !== '/api/v1/budgets') t.same(r.json, canonical.json, `${who} ${v}: same body`);
      }
    }
  }
  for (const bad of ['/api/v1%2fpolicy', '/api/v1/%5cpolicy', '/api\\v1\\policy', '/api/v1/%zz']) {
    const r = await send('GET', bad, { authorization: `Bearer ${fx.adminBearer}` });
    t.equal(r.status, 400, `${bad}: an encoded separator is refused, never routed`);
  }
  const revoke = await send('POST', '/API/V1/TOKENS/REVOKE/', { authorization: `Bearer ${fx.userBearer}` }, '{"user":"ada@acme.example"}');
  t.equal(revoke.status, 403, 'a state-changing route under a variant still checks the caller');
});

t.test('9.03: foreign Host (DNS rebinding) → 403 before any route', async (t) => {
  for (const host of ['evil.example', `evil.example:${port}`, 'attacker.127.0.0.1.nip.io', '127.0.0.1.evil.example']) {
    const r = await adminRequest(port, 'GET', '/api/v1/policy', { headers: { host, authorization: `Bearer ${fx.adminBearer}` } });
    t.equal(r.status, 403, host);
    t.equal(r.json?.error?.code, 'host_not_allowed');
  }
  const dash = await adminRequest(port, 'GET', '/', { headers: { host: 'evil.example', cookie: fx.adminCookie } });
  t.equal(dash.status, 403, 'the dashboard too');
});

t.test('9.03: foreign Origin, cross-site form posts and missing CSRF tokens are refused', async (t) => {
  const body = '{"id":"tok_0000000000000000"}';
  const cases: Array<[string, Record<string, string>, string, string]> = [
    ['admin session, foreign Origin', { cookie: fx.adminCookie, 'x-csrf-token': fx.adminCsrf, origin: 'https://evil.example' }, 'application/json', 'origin_refused'],
    ['admin session, Origin null', { cookie: fx.adminCookie, 'x-csrf-token': fx.adminCsrf, origin: 'null' }, 'application/json', 'origin_refused'],
    ['admin bearer, foreign Origin', { authorization: `Bearer ${fx.adminBearer}`, origin: 'http://localhost.evil.example' }, 'application/json', 'origin_refused'],
    ['admin session, Sec-Fetch-Site cross-site', { cookie: fx.adminCookie, 'x-csrf-token': fx.adminCsrf, 'sec-fetch-site': 'cross-site' }, 'application/json', 'origin_refused'],
    ['admin session, no CSRF token', { cookie: fx.adminCookie, origin }, 'application/json', 'csrf_failed'],
    ['admin session, wrong CSRF token', { cookie: fx.adminCookie, origin, 'x-csrf-token': fx.aliceCsrf }, 'application/json', 'csrf_failed'],
    ['simple cross-site form post', { cookie: fx.adminCookie }, 'application/x-www-form-urlencoded', 'csrf_failed'],
    ['text/plain "simple request"', { cookie: fx.adminCookie }, 'text/plain', 'csrf_failed'],
  ];
  for (const [name, headers, type, code] of cases) {
    const r = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...headers, 'content-type': type }, body: type === 'application/json' ? body : 'id=tok_nothing' });
    t.equal(r.status, 403, name);
    t.equal(r.json?.error?.code, code, name);
  }
  const ok = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { cookie: fx.adminCookie, 'x-csrf-token': fx.adminCsrf, origin, 'content-type': 'application/json' }, body });
  t.equal(ok.status, 200, 'same origin with the CSRF token works');
  t.same(ok.json, { revoked: [] });
});

t.test('9.03: CORS preflight from another origin gets no grant', async (t) => {
  const r = await adminRequest(port, 'OPTIONS', '/api/v1/tokens/revoke', {
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-csrf-token' },
  });
  t.ok(r.status === 401 || r.status === 403, `preflight → ${r.status}`);
  for (const h of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-allow-methods']) t.notOk(h in r.headers, h);
  const get = await adminRequest(port, 'GET', '/api/v1/policy', { headers: { origin: 'https://evil.example', cookie: fx.adminCookie } });
  t.notOk('access-control-allow-origin' in get.headers, 'a cross-origin read never gets an ACAO header');
});

t.test('9.04: body limits, media type, prototype pollution, non-finite numbers', async (t) => {
  const admin = { authorization: `Bearer ${fx.adminBearer}` };
  const big = JSON.stringify({ id: 'x'.repeat(1024 * 1024 + 10) });
  const r1 = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...admin, 'content-type': 'application/json' }, body: big });
  t.ok(r1.status === 413 || r1.status === -1, `declared > 1 MB → ${r1.status}`);
  if (r1.status === 413) t.equal(r1.json?.error?.code, 'body_too_large');
  const r2 = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...admin, 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: big });
  t.ok(r2.status === 413 || r2.status === -1, `chunked > 1 MB → ${r2.status}`);
  const justUnder = JSON.stringify({ id: 'y'.repeat(1024 * 1024 - 20) });
  const r3 = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...admin, 'content-type': 'application/json' }, body: justUnder });
  t.equal(r3.status, 400, 'just under 1 MB is read (and refused for what it says)');
  const unauth = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { 'content-type': 'application/json' }, body: big });
  t.ok(unauth.status === 401 || unauth.status === -1, 'no credentials: refused before the body is read');
  const r4 = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...admin, 'content-type': 'text/plain' }, body: '{"id":"x"}' });
  t.equal(r4.status, 415);

  const pollution = [
    '{"__proto__":{"polluted":"yes","admin":true}}',
    '{"id":"x","constructor":{"prototype":{"polluted":"yes"}}}',
    '{"user":"a@b","nested":{"__proto__":{"polluted":"yes"}}}',
  ];
  for (const body of pollution) {
    const r = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...admin, 'content-type': 'application/json' }, body });
    t.equal(r.status, 400, body);
    t.equal(r.json?.error?.code, 'json_forbidden_key');
  }
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched in the gateway process');
  const after = await adminRequest(port, 'GET', '/api/v1/policy', { headers: { authorization: `Bearer ${fx.userBearer}` } });
  t.equal(after.status, 403, 'a later non-admin request is still refused (no `admin` leaked onto prototypes)');

  for (const [body, code] of [['{"id":1e999}', 'json_number_invalid'], ['{"id":-1e999}', 'json_number_invalid'], ['{"id":NaN}', 'json_invalid'], ['{"id":-1}', 'bad_request'], ['{"id":"100"}', 'bad_request'], ['{"agent":"Bad Name"}', 'bad_request'], ['{"user":"not-an-email"}', 'bad_request']] as const) {
    const r = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...admin, 'content-type': 'application/json' }, body });
    t.equal(r.status, 400, body);
    if (code !== 'bad_request') t.equal(r.json?.error?.code, code, body);
  }
});

t.test('9.04 / 6.14: query numbers that are not plain whole numbers → 400', async (t) => {
  const admin = { authorization: `Bearer ${fx.adminBearer}` };
  for (const q of ['limit=1e999', 'limit=-1', 'limit=-0', 'limit=NaN', 'limit=Infinity', 'limit=1.5', 'limit=%221%22', 'limit=1e308', 'since=-1h', 'since=1e999h', 'status=5x5', 'decision=maybe', 'cursor=1.2.3', 'bogus=1', 'limit=1&limit=2']) {
    const r = await adminRequest(port, 'GET', `/api/v1/audit?${q}`, { headers: admin });
    t.equal(r.status, 400, q);
    t.equal(r.json?.error?.code, 'bad_request', q);
  }
  for (const q of ['days=1e999', 'days=-1', 'days=0', 'days=NaN', 'by=day']) t.equal((await adminRequest(port, 'GET', `/api/v1/costs/trend?${q}`, { headers: admin })).status, 400, `trend ${q}`);
  for (const q of ['', 'by=team&since=Infinity', 'by=team&until=-5']) t.equal((await adminRequest(port, 'GET', `/api/v1/costs?${q}`, { headers: admin })).status, 400, `costs ${q}`);
  t.equal((await adminRequest(port, 'GET', '/api/v1/audit/summary?window=-24h', { headers: admin })).status, 400);
  t.equal((await adminRequest(port, 'GET', '/api/v1/budgets?monthly_usd=1e999', { headers: admin })).status, 400, 'budgets takes no parameters at all');
});

t.test('6.14: no caller can change a budget through the API', async (t) => {
  const before = (await adminRequest(port, 'GET', '/api/v1/budgets', { headers: { authorization: `Bearer ${fx.adminBearer}` } })).json;
  for (const v of ['1e999', '-1', '-0', '"100"', '"NaN"', '1e308', '100']) {
    for (const m of ['POST', 'PUT', 'PATCH']) {
      for (const [who, h, want] of [['agent', { authorization: `Bearer ${fx.tg.token}` }, 403], ['alice', { authorization: `Bearer ${fx.userBearer}` }, 403], ['admin', { authorization: `Bearer ${fx.adminBearer}` }, 405]] as const) {
        const r = await send(m, '/api/v1/budgets', h, `{"scope":"team:alpha","monthly_usd":${v}}`);
        t.equal(r.status, want, `${who} ${m} ${v}`);
      }
    }
  }
  const after = (await adminRequest(port, 'GET', '/api/v1/budgets', { headers: { authorization: `Bearer ${fx.adminBearer}` } })).json;
  t.same(after.budgets.map((b: { scope: string; limit_micros: number }) => [b.scope, b.limit_micros]), before.budgets.map((b: { scope: string; limit_micros: number }) => [b.scope, b.limit_micros]), 'limits unchanged');
});
