// The admin API through a running gateway: what each route answers over real traffic and seeded
// history (costs, trend, summary, search with cursors, exports, budgets, policy, agents), token
// revocation with its audit event, and the dashboard's entry points.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { writeStatusFile, statusFilePath } from '../../../src/agents/agent-status.ts';
import { readCostReport } from '../../../src/cli/costs-command.ts';
import { main } from '../../../src/cli/main.ts';
import { createAuditWriter } from '../../../src/store/audit-writer.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { until } from '../../helpers/cli-process.ts';
import { row } from '../../unit/audit/fixtures.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { adminRequest, DAY, startAdminFixture, USD } from './admin-fixture.ts';

const fx = await startAdminFixture();
t.teardown(() => fx.close());
const port = fx.tg.gw.admin.port;
const asAdmin = { authorization: `Bearer ${fx.adminBearer}` };
const get = (p: string, headers: Record<string, string> = asAdmin) => adminRequest(port, 'GET', p, { headers });

t.test('GET /api/v1/costs groups the audit rows\' cost by each dimension, matching SQL and the CLI', async (t) => {
  const sql = (col: string) => Object.fromEntries((fx.db.prepare(`SELECT ${col} AS k, sum(cost_micros) AS c FROM audit_requests WHERE cost_micros IS NOT NULL GROUP BY 1`).all() as Array<{ k: string | null; c: number }>).map((r) => [String(r.k), r.c]));
  const dims: Array<[string, string]> = [['team', 'team'], ['agent', 'agent'], ['model', 'model'], ['provider', 'provider'], ['user', "CASE WHEN principal_kind = 'user' THEN subject END"], ['day', "strftime('%Y-%m-%d', time / 1000, 'unixepoch')"]];
  for (const [by, col] of dims) {
    const r = await get(`/api/v1/costs?by=${by}`);
    t.equal(r.status, 200, by);
    t.equal(r.headers['cache-control'], 'no-store');
    const got = Object.fromEntries((r.json.groups as Array<{ key: string | null; cost_micros: number }>).map((g) => [String(g.key), g.cost_micros]));
    t.same(got, sql(col), `by=${by} equals the SQL sums`);
    const cli = readCostReport(fx.dbFile, { by, since: Date.parse(r.json.since), until: Date.parse(r.json.until) });
    t.same(cli.groups.map((g) => [g.key, g.costMicros]), (r.json.groups as Array<{ key: string | null; cost_micros: number }>).map((g) => [g.key, g.cost_micros]), `tollgate costs --by ${by} agrees`);
  }
  const team = await get('/api/v1/costs?by=team');
  t.match(team.json, { by: 'team', currency: 'USD', groups: [{ key: 'alpha' }, { key: 'beta' }] });
  t.equal(team.json.groups[1].cost_micros, 7 * USD + 35 * USD, 'beta: seven $1 days and seven $5 days');
  t.ok(team.json.groups[0].cost_micros > 240 * USD, 'alpha: 14 × $10 + $100 today + the live calls');
  t.equal(team.json.total.cost_micros, team.json.groups.reduce((a: number, g: { cost_micros: number }) => a + g.cost_micros, 0));
  const live = await get('/api/v1/costs?by=model&since=1h');
  t.match(live.json.groups.find((g: { key: string }) => g.key === 'claude-haiku-4-5-20251001'), { requests: fx.live.llm, input_tokens: 100 * fx.live.llm, output_tokens: 15 * fx.live.llm });
  const window = await get(`/api/v1/costs?by=day&since=${new Date(Date.now() - 3 * DAY).toISOString().slice(0, 10)}`);
  t.equal(window.json.groups.length, 4, 'since bounds the window: three past days and today');
});

t.test('tollgate costs: table, --json, --csv, usage errors', async (t) => {
  const config = `${fx.tg.dir}/tollgate.yaml`;
  // One real process proves the executable (tap's hook re-adds its loader to NODE_OPTIONS; `env -u` drops it) …
  const table = await promisify(execFile)('env', ['-u', 'NODE_OPTIONS', process.execPath, 'bin/tollgate', 'costs', '--by', 'team', '--config', config], { encoding: 'utf8' });
  t.match(table.stdout, /^TEAM\s+SPEND\s+REQUESTS/);
  t.match(table.stdout, /\nbeta\s+\$42\.00\s+14\s/);
  t.match(table.stdout, /total \$282\.00 over 32 metered request/);
  // … the rest run main() here with stdout captured (starting tsx per call is slow).
  const cli = async (...args: string[]) => {
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string) => { out += c; return true; }) as typeof process.stdout.write;
    process.stderr.write = ((c: string) => { out += c; return true; }) as typeof process.stderr.write;
    try {
      process.exitCode = undefined;
      const code = await main(['node', 'tollgate', 'costs', ...args, '--config', config]);
      return { code, out };
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
      process.exitCode = undefined;
    }
  };
  const json = JSON.parse((await cli('--by', 'provider', '--json')).out) as { by: string; groups: Array<{ key: string; cost_micros: number }> };
  t.equal(json.by, 'provider');
  t.equal(json.groups.find((g) => g.key === 'openai')?.cost_micros, 42 * USD);
  // From midnight three days ago (a relative `3d` would drop that day's seeded 10:00 row after 10:00 UTC).
  const csv = (await cli('--by', 'day', '--csv', '--since', new Date(Date.now() - 3 * DAY).toISOString().slice(0, 10))).out.trim().split('\n');
  t.equal(csv[0], 'day,cost_micros,cost_usd,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated_requests');
  t.equal(csv.length, 5, 'header, three past days and today');
  t.match(await cli('--by', 'host'), { code: 2, out: /--by must be one of team, agent, user, model, provider, day/ });
  t.match(await cli('--by', 'team', '--since', 'yesterday'), { code: 2, out: /--since "yesterday" is not a time/ });
  t.match(await cli('--by', 'team', '--json', '--csv'), { code: 2 });
});

t.test('GET /api/v1/costs/trend labels each team', async (t) => {
  const r = await get('/api/v1/costs/trend?by=team&days=14');
  t.equal(r.status, 200);
  t.equal(r.json.days.length, 14);
  t.equal(r.json.days.at(-1), new Date().toISOString().slice(0, 10), 'the last day is today (UTC)');
  const by = Object.fromEntries(r.json.series.map((s: { key: string }) => [s.key, s]));
  t.match(by['alpha'].trend, { label: 'spiking', spike_on: 'today', last7_micros: 70 * USD, prev7_micros: 70 * USD, median7_micros: 10 * USD });
  t.match(by['beta'].trend, { label: 'growing', last7_micros: 35 * USD, prev7_micros: 7 * USD, change_ratio: 5 });
  t.equal(by['beta'].daily_micros.length, 14);
  t.same(by['beta'].daily_micros.slice(-8), [...Array(7).fill(5 * USD), 0]);
  const models = await get('/api/v1/costs/trend?by=model&days=30');
  t.ok(models.json.series.length >= 3, 'by model: haiku, sonnet, gpt-4o-mini');
});

t.test('GET /api/v1/audit: filters and keyset pagination', async (t) => {
  const all = await get('/api/v1/audit?since=1h&limit=1000');
  t.equal(all.status, 200);
  t.match(all.json.rows[0], { time: /^\d{4}-\d\d-\d\dT/, request_id: String });
  const denied = await get('/api/v1/audit?since=1h&decision=deny');
  t.ok(denied.json.rows.length >= fx.live.denied);
  t.ok(denied.json.rows.every((r: { decision: string }) => r.decision === 'deny'));
  const agent = await get('/api/v1/audit?agent=alpha-bot&host=api.anthropic.com&since=1h');
  t.equal(agent.json.rows.filter((r: { method: string }) => r.method === 'POST').length, fx.live.llm, 'agent + host: the LLM calls (and their CONNECT tunnels)');
  t.ok(agent.json.rows.every((r: { agent: string; host: string }) => r.agent === 'alpha-bot' && r.host === 'api.anthropic.com'));
  const user = await get('/api/v1/audit?user=alice@acme.example');
  t.same(user.json.rows.map((r: { request_id: string }) => r.request_id), ['seed-a-today']);
  const s5xx = await get('/api/v1/audit?status=5xx&since=1h');
  t.ok(s5xx.json.rows.length >= 1 && s5xx.json.rows.every((r: { status: number }) => r.status >= 500), 'status class');
  const team = await get('/api/v1/audit?team=beta&limit=1000');
  t.equal(team.json.rows.length, 14);

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await get(`/api/v1/audit?team=beta&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
    t.equal(page.status, 200);
    seen.push(...page.json.rows.map((r: { request_id: string }) => r.request_id));
    cursor = page.json.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 4, '14 rows in pages of 4');
  t.equal(new Set(seen).size, 14, 'no row twice, none missing');
  t.same(seen, team.json.rows.map((r: { request_id: string }) => r.request_id), 'newest first, same order as one page');
  t.match((await get('/api/v1/audit?cursor=garbage')).json, { error: { code: 'bad_request' } });
});

t.test('GET /api/v1/audit/summary', async (t) => {
  const r = await get('/api/v1/audit/summary?window=1h');
  t.equal(r.status, 200);
  t.ok(r.json.active_agents.some((a: { agent: string }) => a.agent === 'alpha-bot'));
  t.ok(r.json.actions.some((a: { method: string; host: string }) => a.method === 'POST' && a.host === 'api.anthropic.com'));
  t.match(r.json.denials.find((d: { host: string }) => d.host === 'denied.example'), { reason: String, rule: /alpha\.yaml:\d+/ });
  t.ok(r.json.errors.errors >= 1 && r.json.errors.rate > 0, 'the failed upstream counts as an error');
  t.ok(r.json.errors.by_host.some((h: { host: string }) => h.host === 'dead.alpha.test'));
  const wide = await get('/api/v1/audit/summary?window=30d');
  t.ok(wide.json.active_users.some((u: { user: string }) => u.user === 'bob@acme.example'), 'a wider window sees the seeded users');
});

t.test('GET /api/v1/audit/export streams JSONL and CSV, and is itself audited', async (t) => {
  // enough rows for many chunks (backpressure between the reporting thread and the socket)
  const base = Date.now() - 2 * DAY;
  createAuditWriter(fx.db).applyBatch(Array.from({ length: 6000 }, (_, i) => ({ op: 'complete' as const, id: i, row: row({ request_id: `bulk-${i}`, time: base + i, ended_at: base + i + 5, team: 'gamma' }) })));
  const total = (fx.db.prepare('SELECT count(*) AS n FROM audit_requests').get() as { n: number }).n;
  const jsonl = await get('/api/v1/audit/export?format=jsonl');
  t.equal(jsonl.status, 200);
  t.match(jsonl.headers['content-type'], /application\/x-ndjson/);
  t.match(jsonl.headers['content-disposition'], /attachment; filename="tollgate-audit-requests-\d+T\d+\.jsonl"/);
  t.equal(jsonl.headers['transfer-encoding'], 'chunked', 'streamed, not buffered');
  const lines = jsonl.text.trim().split('\n').map((l) => JSON.parse(l) as { record: string; time: string });
  t.equal(lines.length, total, 'every row, once');
  t.ok(lines.every((l) => l.record === 'request'));
  t.ok(lines.every((l, i) => i === 0 || (lines[i - 1]?.time ?? '') <= l.time), 'oldest first');
  const csv = await get('/api/v1/audit/export?format=csv&since=1h');
  t.match(csv.text.split('\r\n')[0] ?? csv.text.split('\n')[0], /^request_id,time,/);
  t.notOk(jsonl.text.includes(fx.tg.token) || jsonl.text.includes(fx.adminBearer), 'no tokens in the export');

  // a client that leaves mid-export: the export stops, the gateway keeps answering
  await new Promise<void>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/api/v1/audit/export?format=csv', headers: { ...asAdmin, host: `127.0.0.1:${port}` } }, (res) => {
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', () => resolve());
  });
  t.equal((await get('/api/v1/policy')).status, 200, 'still answering after an abandoned export');
  for (let i = 0; i < 40 && !fx.tg.logs.some((l) => l['msg'] === 'audit export stopped'); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(fx.tg.logs.find((l) => l['msg'] === 'audit export stopped'), { actor: 'ada@acme.example' }, 'the export was stopped, not completed');

  await new Promise((r) => setTimeout(r, 300));
  const events = await get('/api/v1/audit/export?format=jsonl&records=events');
  const exported = events.text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; actor: string; detail: Record<string, unknown> }).filter((e) => e.type === 'audit_exported');
  t.ok(exported.length >= 2);
  t.match(exported[0], { actor: 'user:ada@acme.example', detail: { format: 'jsonl', records: 'requests', via: 'token' } });
});

t.test('GET /api/v1/budgets, /policy, /agents', async (t) => {
  const b = await get('/api/v1/budgets');
  t.equal(b.status, 200);
  const scopes = b.json.budgets.map((x: { scope: string; window: string }) => `${x.scope}/${x.window}`);
  t.same(scopes.sort(), ['agent:alpha-bot/day', 'org/month', 'team:alpha/month', 'team:beta/day']);
  const bot = b.json.budgets.find((x: { scope: string }) => x.scope === 'agent:alpha-bot');
  t.match(bot, { limit_micros: 20 * USD, exhausted: false, resets_at: /T00:00:00\.000Z$/ });
  t.ok(bot.spent_micros > 0, 'the live LLM calls were charged');
  t.equal(bot.used_ratio, (bot.spent_micros + bot.reserved_micros) / bot.limit_micros);

  const p = await get('/api/v1/policy');
  t.match(p.json, { ok: true, generation: Number, loaded_at: String, last_rejected: null });
  writeFileSync(`${fx.tg.dir}/policies/beta.yaml`, 'team: beta\nrules:\n  - { host: "**", action: allow }\n');
  let rejected = p.json;
  for (let i = 0; i < 60 && rejected.last_rejected === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    rejected = (await get('/api/v1/policy')).json;
  }
  t.match(rejected, { ok: false, generation: p.json.generation, last_rejected: { at: String, error: String } }, 'a rejected reload is reported; the old generation stays');

  const none = await get('/api/v1/agents');
  t.same(none.json, { supervisor: 'absent', updated_at: null, supervisor_running: false, agents: [] }, 'no supervisor: an empty, well-formed answer');
  writeStatusFile(statusFilePath(fx.dataDir), {
    updatedAt: new Date().toISOString(), supervisorPid: 4242, supervisorRunning: true,
    agents: [{ key: 'alpha-bot', name: 'Alpha Bot', team: 'alpha', project: null, state: 'running', pid: 4343, schedule: 'continuous', lastStartAt: null,
      lastHeartbeatAt: null, lastExit: null, restarts: 2, consecutiveFailures: 0, nextRunAt: null, stopped: null, logFile: '/x.log' }],
  });
  const some = await get('/api/v1/agents');
  t.match(some.json, { supervisor: 'running', supervisor_running: true, agents: [{ key: 'alpha-bot', state: 'running', restarts: 2, team: 'alpha' }] });
  writeFileSync(statusFilePath(fx.dataDir), '{not json');
  t.match((await get('/api/v1/agents')).json, { supervisor: 'absent' }, 'a torn file reads as absent, not 500');
});

t.test('POST /api/v1/tokens/revoke: an admin revokes a user\'s tokens; the event names the actor', async (t) => {
  const proxyAuth = `Basic ${Buffer.from(`alpha:${fx.aliceProxyToken}`).toString('base64')}`;
  const via = () => rawExchange(fx.tg.proxyPort, `GET http://echo.alpha.test/x HTTP/1.1\r\nHost: echo.alpha.test\r\nProxy-Authorization: ${proxyAuth}\r\nConnection: close\r\n\r\n`);
  t.match((await via()).text, /^HTTP\/1\.1 200/);
  const r = await adminRequest(port, 'POST', '/api/v1/tokens/revoke', {
    headers: { cookie: fx.adminCookie, 'x-csrf-token': fx.adminCsrf, 'content-type': 'application/json', origin: fx.tg.adminUrl },
    body: JSON.stringify({ user: 'alice@acme.example' }),
  });
  t.equal(r.status, 200);
  t.ok(r.json.revoked.length >= 2, 'both of Alice\'s tokens');
  await new Promise((r) => setTimeout(r, 1100));
  t.match((await via()).text, /^HTTP\/1\.1 407/, 'the revoked token no longer passes the proxy');
  let ev: { actor: string; detail: string } | undefined;
  for (let i = 0; i < 50 && !ev; i++) {
    ev = fx.db.prepare("SELECT actor, detail FROM audit_events WHERE type = 'token_revoked' ORDER BY id DESC").get() as typeof ev;
    if (!ev) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(ev?.actor, 'user:ada@acme.example');
  t.match(JSON.parse(ev?.detail ?? '{}'), { by: 'admin_api', via: 'session', target: { user: 'alice@acme.example' }, subjects: ['alice@acme.example'] });
  const bad = async (body: string) => (await adminRequest(port, 'POST', '/api/v1/tokens/revoke', { headers: { ...asAdmin, 'content-type': 'application/json' }, body })).json?.error?.code;
  t.equal(await bad('{}'), 'bad_request');
  t.equal(await bad('{"id":"a","user":"b"}'), 'bad_request', 'exactly one target');
  t.equal(await bad('{"id":42}'), 'bad_request');
  t.equal(await bad('{"id":1e999}'), 'json_number_invalid');
  t.equal(await bad('{"group":"x"}'), 'bad_request');
  t.equal(await bad('[]'), 'bad_request');
});

t.test('the audit chain still verifies after everything above (nothing rewrote a row)', async (t) => {
  await new Promise((r) => setTimeout(r, 200));
  const v = verifyAuditStore(fx.db);
  t.equal(v.ok, true, JSON.stringify(v.chains.map((c) => [c.chain, c.ok, c.firstBroken?.message])));
});

t.test('9.01: the admin API is not reachable through the proxy', async (t) => {
  const auth = `Basic ${Buffer.from(`alpha:${fx.tg.token}`).toString('base64')}`;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
    const r = await rawExchange(fx.tg.proxyPort, `GET http://${host}/api/v1/policy HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${auth}\r\nAuthorization: Bearer ${fx.adminBearer}\r\nConnection: close\r\n\r\n`);
    t.match(r.text, /^HTTP\/1\.1 403/, host);
  }
});

t.test('the dashboard: sign-in redirect, admins only, strict CSP, static assets', async (t) => {
  const anon = await get('/', {});
  t.equal(anon.status, 303);
  t.equal(anon.headers.location, '/auth/login?return_to=%2F');
  const alice = await get('/', { cookie: fx.aliceCookie });
  t.equal(alice.status, 403, 'a signed-in non-admin');
  t.match(alice.text, /admin group/);
  const ok = await get('/', { cookie: fx.adminCookie });
  t.equal(ok.status, 200);
  t.match(ok.headers['content-security-policy'], /default-src 'self'; script-src 'self'; style-src 'self'/);
  t.notMatch(ok.headers['content-security-policy'], /unsafe-inline|unsafe-eval/);
  t.equal(ok.headers['x-frame-options'], 'DENY');
  t.notMatch(ok.text, /<script>|<script [^>]*>[^<]+<\/script>|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler');
  t.notMatch(ok.text, /https?:\/\//, 'no external URL (no CDN)');
  const js = await get('/dashboard/app.js', {});
  t.equal(js.status, 200);
  t.match(js.headers['content-type'], /^text\/javascript/);
  for (const p of ['/dashboard/nope.js', '/dashboard/index.html', '/dashboard/../../etc/passwd', '/dashboard/%2e%2e/admin-api.ts']) {
    t.equal((await get(p, {})).status, 404, p);
  }
});

t.test('9.01 / 2.05: even a policy that allows loopback, or the host\'s own other addresses, on the gateway\'s own ports cannot reach its listeners (self_connection)', async (t) => {
  // The ports are known only once it runs, so the policy arrives by reload — one that widens into
  // loopback, which a hot reload applies only with policy_reload.allow_non_public (7.05).
  const tg = await startTestGateway({ extraYaml: 'policy_reload: { allow_non_public: true }' });
  t.teardown(() => tg.stop());
  const adminPort = Number(new URL(tg.adminUrl).port);
  const ports = `[${adminPort}, ${tg.proxyPort}]`;
  // 2.05: also the host's own other addresses (a LAN or ULA address), named by a rule on those ports.
  const own = Object.values(networkInterfaces()).flat()
    .filter((a): a is NetworkInterfaceInfo => a !== undefined && !a.internal && !a.address.startsWith('fe80') && !a.address.includes('%'))
    .map((a) => a.address);
  if (own.length === 0) t.comment('this machine has no non-loopback address: only loopback is tried');
  writeFileSync(path.join(tg.dir, 'policies', 'alpha.yaml'), `team: alpha
rules:
  - { host: "127.0.0.1", action: allow, ports: ${ports} }
  - { host: "localhost", action: allow, ports: ${ports} }
  - { host: "::1", action: allow, ports: ${ports} }
${own.map((a) => `  - { host: "${a}", action: allow, ports: ${ports} }\n`).join('')}  - { host: "*", action: deny }
`);
  await until('the policy naming the ports to be in force', () => tg.logs.some((l) => l['msg'] === 'policy reloaded'), 10_000);
  for (const p of [adminPort, tg.proxyPort]) {
    for (const host of [`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`, ...own.map((a) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`))]) {
      const r = await rawExchange(tg.proxyPort, `GET http://${host}/api/v1/policy HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${tg.proxyAuth}\r\nConnection: close\r\n\r\n`);
      t.match(r.text, /^HTTP\/1\.1 403/, `${host}: refused`);
      t.match(r.text, /X-Tollgate-Reason: self_connection/i, `${host}: as a connection to itself, though the policy allows it`);
    }
    const c = await rawExchange(tg.proxyPort, `CONNECT 127.0.0.1:${p} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nProxy-Authorization: ${tg.proxyAuth}\r\n\r\n`);
    t.notMatch(c.text, /^HTTP\/1\.1 200/, `CONNECT to its own port ${p} is not established`);
  }
});
