// Test-only: a running gateway for the admin API and dashboard tests — the dev OIDC issuer (an
// admin, Ada, and a non-admin, Alice), a fake Anthropic upstream over TLS, a plain echo upstream,
// budgets in org.yaml, two weeks of seeded metered history (written through the audit writer, so
// the chain stays intact), and live traffic: LLM calls with cost, allowed, denied and failed
// requests. Exposes the credentials each test needs: admin and non-admin sessions (signed in
// through SSO for real), admin and non-admin bearer tokens, agent tokens.
import http from 'node:http';
import path from 'node:path';
import { request as undiciRequest, ProxyAgent } from 'undici';
import type { AuditRequestRow } from '../../../src/audit/audit-record.ts';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { startDevIssuer, type DevIssuer } from '../../../src/identity/dev-issuer.ts';
import { createTokenService } from '../../../src/identity/token-service.ts';
import { createAuditWriter } from '../../../src/store/audit-writer.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { createSqliteTokenStore } from '../../../src/store/sqlite-token-store.ts';
import { fakeAnthropic, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway-harness.ts';
import { ScriptedBrowser } from '../../helpers/oidc-browser.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream-server.ts';
import { row } from '../../unit/audit/fixtures.ts';

export const DAY = 86_400_000;
export const USD = 1_000_000;

export interface AdminFixture {
  tg: TestGateway;
  dev: DevIssuer;
  db: Database;
  dbFile: string;
  dataDir: string;
  /** Cookie header value of Ada's (admin) and Alice's (not admin) SSO sessions. */
  adminCookie: string;
  aliceCookie: string;
  adminCsrf: string;
  aliceCsrf: string;
  adminBearer: string;
  userBearer: string;
  /** A user token for Alice (team alpha), usable through the proxy; the revoke test revokes it. */
  aliceProxyToken: string;
  /** Request ids of the live traffic. */
  live: { llm: number; allowed: number; denied: number; failed: number };
  close(): Promise<void>;
}

export interface ApiAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** An exact request to the admin listener: the path goes on the wire as written (no URL normalisation). */
export function adminRequest(port: number, method: string, rawPath: string, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: rawPath, headers: { host: `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // the server may answer 413 and close before the whole body was sent
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') resolve({ status: -1, headers: {}, text: String(err.code), json: undefined });
      else reject(err);
    });
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

const ORG = `organization: Test Org
admins: { idp_groups: [admins] }
budget: { monthly_usd: 1000 }
teams:
  alpha: { name: Alpha, idp_groups: [alpha-people], policy: policies/alpha.yaml, budget: { monthly_usd: 500 } }
  beta: { name: Beta, idp_groups: [beta-people], policy: policies/beta.yaml, budget: { daily_usd: 50 } }
agents:
  alpha-bot: { name: Alpha Bot, team: alpha, budget: { daily_usd: 20 } }
  beta-bot: { name: Beta Bot, team: beta }
`;

/** Two weeks of metered history: alpha $10/day then $100 today (spiking); beta $1/day then $5/day (growing). */
export function seededRows(now: number): AuditRequestRow[] {
  const today = Math.floor(now / DAY) * DAY;
  const rows: AuditRequestRow[] = [];
  const metered = (id: string, time: number, team: string, agent: string | null, user: string | null, provider: string, model: string, cost: number): AuditRequestRow => row({
    request_id: id, time, ended_at: time + 900, principal_kind: agent ? 'agent' : 'user', subject: agent ?? user, agent, team,
    method: 'POST', host: provider === 'openai' ? 'api.openai.com' : 'api.anthropic.com', path: provider === 'openai' ? '/v1/chat/completions' : '/v1/messages',
    rule: `policies/${team}.yaml:3`, status: 200, duration_ms: 900, provider, model, input_tokens: 1000, output_tokens: 100,
    cache_read_tokens: 0, cache_write_tokens: 0, cost_micros: cost, estimated: 0,
  });
  for (let d = 14; d >= 1; d--) {
    const t = today - d * DAY + 10 * 3_600_000;
    rows.push(metered(`seed-a-${d}`, t, 'alpha', 'alpha-bot', null, 'anthropic', 'claude-haiku-4-5-20251001', 10 * USD));
    rows.push(metered(`seed-b-${d}`, t + 1000, 'beta', null, 'bob@acme.example', 'openai', 'gpt-4o-mini-2024-07-18', (d >= 8 ? 1 : 5) * USD));
  }
  rows.push(metered('seed-a-today', Math.max(today, now - 5000), 'alpha', null, 'alice@acme.example', 'anthropic', 'claude-sonnet-4-5-20250929', 100 * USD));
  return rows;
}

async function signIn(tg: TestGateway, email: string): Promise<{ cookie: string; csrf: string }> {
  const browser = new ScriptedBrowser();
  await browser.signIn(`${tg.adminUrl}/auth/login?return_to=/`, email, (url) => new URL(url).pathname === '/' && url.startsWith(tg.adminUrl));
  const jar = browser.cookies(new URL(tg.adminUrl).origin);
  const id = jar.get('tollgate_session');
  if (!id) throw new Error(`no session cookie for ${email}: ${browser.hops.map((h) => `${h.status} ${h.url}`).join(' → ')}`);
  const cookie = `tollgate_session=${id}`;
  const s = await fetch(`${tg.adminUrl}/auth/session`, { headers: { cookie } });
  const body = (await s.json()) as { csrf_token: string };
  return { cookie, csrf: body.csrf_token };
}

export async function startAdminFixture(): Promise<AdminFixture> {
  const dev = await startDevIssuer({
    users: [
      { email: 'ada@acme.example', name: 'Ada', groups: ['admins', 'alpha-people'] },
      { email: 'alice@acme.example', name: 'Alice', groups: ['alpha-people'] },
    ],
  });
  const pki = await makeTestCa();
  const pair = await pki.issue(['api.anthropic.com']);
  const ctl: FakeLlmControl = { mode: 'normal', sent: 0, finished: 0 };
  const ant: TestUpstream = await startUpstream({ tls: pair, handler: fakeAnthropic(ctl) });
  const echo: TestUpstream = await startUpstream();
  const tg = await startTestGateway({
    upstreams: { 'api.anthropic.com': ant.port, 'echo.alpha.test': echo.port, 'dead.alpha.test': 1 },
    upstreamCaPem: pki.caPem,
    alphaRules: `
  - { host: api.anthropic.com, action: allow }
  - { host: echo.alpha.test, action: allow }
  - { host: dead.alpha.test, action: allow, ports: [1] }`,
    files: { 'org.yaml': ORG },
    sso: { issuers: [{ name: 'test', issuer: dev.issuer, client_id: 'tollgate-dev', scopes: ['openid', 'email', 'profile', 'groups'] }] },
  });
  const dataDir = path.join(tg.dir, 'data');
  const dbFile = databasePath({ dataDir });
  const db = openDatabase(dbFile);
  const tokens = createTokenService(createSqliteTokenStore(db));
  const now = Date.now();
  const issue = async (subject: string, roles: Array<'admin'>) =>
    (await tokens.issueToken({ kind: 'user', subject, teams: ['alpha'], roles, ttlMs: 3_600_000, issuedBy: 'test', now })).token;
  const adminBearer = await issue('ada@acme.example', ['admin']);
  const userBearer = await issue('alice@acme.example', []);
  const aliceProxyToken = await issue('alice@acme.example', []);

  createAuditWriter(db).applyBatch(seededRows(now).map((r, i) => ({ op: 'complete' as const, id: i, row: r })));

  // Live traffic through the proxy.
  const agent = new ProxyAgent({ uri: `http://alpha:${tg.token}@127.0.0.1:${tg.proxyPort}`, requestTls: { ca: tg.caPem } });
  const live = { llm: 0, allowed: 0, denied: 0, failed: 0 };
  for (let i = 0; i < 3; i++) {
    const r = await undiciRequest('https://api.anthropic.com/v1/messages', {
      dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await r.body.text();
    if (r.statusCode === 200) live.llm++;
  }
  const auth = `Basic ${Buffer.from(`alpha:${tg.token}`).toString('base64')}`;
  for (const [authority, key] of [['echo.alpha.test', 'allowed'], ['denied.example', 'denied'], ['dead.alpha.test:1', 'failed']] as const) {
    await rawExchange(tg.proxyPort, `GET http://${authority}/x HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${auth}\r\nConnection: close\r\n\r\n`, { waitMs: 4000 });
    live[key]++;
  }
  await agent.close();

  const admin = await signIn(tg, 'ada@acme.example');
  const alice = await signIn(tg, 'alice@acme.example');

  // Wait until every live exchange has its completed row.
  const until = Date.now() + 10_000;
  const want = live.llm + live.allowed + live.denied + live.failed;
  for (;;) {
    const n = (db.prepare("SELECT count(*) AS n FROM audit_requests WHERE request_id NOT LIKE 'seed-%' AND state = 'complete'").get() as { n: number }).n;
    if (n >= want || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 25));
  }

  return {
    tg, dev, db, dbFile, dataDir, adminCookie: admin.cookie, adminCsrf: admin.csrf, aliceCookie: alice.cookie, aliceCsrf: alice.csrf,
    adminBearer, userBearer, aliceProxyToken, live,
    async close() {
      db.close();
      await tg.stop();
      await dev.close();
      await ant.close();
      await echo.close();
    },
  };
}
