// GET /metrics through a running gateway: mixed traffic (allowed, denied, unauthenticated, an
// upstream failure, a metered LLM call, a second team), then a scrape. Counters moved, live
// gauges are there, a policy reload rejection shows, nothing identifying (host, path, query,
// token, request id, secret, client port) appears anywhere in the text, and the bearer token
// protects the route.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { fakeAnthropic, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { rawExchange } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { unusedPort } from '../../helpers/unused-port.ts';

const rnd = () => Math.random().toString(36).slice(2);
const ANT_KEY = `CANARY_ANTKEY_${rnd()}`;
const METRICS_TOKEN = `CANARY_METRICS_${rnd()}`;
const PATH_CANARY = `canarypath${rnd()}`;
const QUERY_CANARY = `canaryquery${rnd()}`;

const ctl: FakeLlmControl = { mode: 'normal', sent: 0, finished: 0 };
const pki = await makeTestCa();
const pair = await pki.issue(['api.anthropic.com']);
const ant = await startUpstream({ tls: pair, handler: fakeAnthropic(ctl) });
const echo = await startUpstream();
const evil = await startUpstream();
const downPort = await unusedPort();

const ORG = `organization: Test Org
budget: { monthly_usd: 1000 }
teams:
  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml, budget: { monthly_usd: 100 } }
  beta: { name: Beta, idp_groups: [beta], policy: policies/beta.yaml }
agents:
  alpha-bot: { name: Alpha Bot, team: alpha, budget: { monthly_usd: 50, daily_usd: 10 } }
  beta-bot: { name: Beta Bot, team: beta }
`;
const ALPHA_RULES = `
  - { host: api.anthropic.com, action: allow }
  - { host: echo.allowed.test, action: allow }
  - { host: down.metrics.test, action: allow }`;

const tg = await startTestGateway({
  upstreams: { 'api.anthropic.com': ant.port, 'echo.allowed.test': echo.port, 'evil.metrics.test': evil.port, 'down.metrics.test': downPort },
  upstreamCaPem: pki.caPem,
  alphaRules: ALPHA_RULES,
  alphaCredentials: '  - { host: api.anthropic.com, header: { name: x-api-key, secret: anthropic-key } }',
  files: { 'org.yaml': ORG, 'secrets/anthropic-key': ANT_KEY, 'secrets/metrics-token': `${METRICS_TOKEN}\n` },
  extraYaml: 'metrics: { bearer_token_secret: metrics-token }',
});
t.teardown(async () => {
  await tg.stop();
  await Promise.all([ant.close(), echo.close(), evil.close()]);
});

async function scrape(base = tg.adminUrl, token: string | null = METRICS_TOKEN): Promise<{ status: number; type: string; text: string; headers: Record<string, unknown> }> {
  const res = await request(`${base}/metrics`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text(), headers: res.headers };
}

/** The value of one sample (labels in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length !== Object.keys(labels).length) continue;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('traffic moves the counters; the scrape carries only bounded labels', async (t) => {
  const alpha = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: tg.caPem } });
  let alphaOpen = true;
  t.teardown(async () => { if (alphaOpen) await alpha.close(); });

  // Plain absolute-form requests (undici's ProxyAgent would CONNECT even for http://).
  const get = (host: string, auth: string | undefined, target = `/${PATH_CANARY}?q=${QUERY_CANARY}`) =>
    rawExchange(tg.proxyPort, `GET http://${host}${target} HTTP/1.1\r\nHost: ${host}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}Connection: close\r\n\r\n`);
  const authB = `Basic ${Buffer.from(`beta:${tg.tokenB}`).toString('base64')}`;
  t.match((await get('echo.allowed.test', tg.proxyAuth)).text, /^HTTP\/1\.1 200/);
  t.match((await get('echo.allowed.test', authB)).text, /^HTTP\/1\.1 200/);
  t.match((await get('evil.metrics.test', tg.proxyAuth)).text, /^HTTP\/1\.1 403/);
  t.match((await get('echo.allowed.test', undefined)).text, /^HTTP\/1\.1 407/);
  t.match((await get('down.metrics.test', tg.proxyAuth)).text, /^HTTP\/1\.1 502/);
  const llm = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher: alpha,
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-dummy' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await llm.body.text();
  t.equal(llm.statusCode, 200);

  // The exchange end (and so the recording) follows metering's settlement: poll.
  const { text, status, type } = await until(() => scrape(), (s) => (sample(s.text, 'tollgate_llm_requests_total', { provider: 'anthropic', model: 'claude-haiku-4-5' }) ?? 0) >= 1);
  t.equal(status, 200);
  t.match(type, /^text\/plain; version=0\.0\.4/);

  t.ok((sample(text, 'tollgate_requests_total', { kind: 'request', decision: 'allow', team: 'alpha' }) ?? 0) >= 3, 'allowed requests of team alpha');
  t.ok((sample(text, 'tollgate_requests_total', { kind: 'request', decision: 'allow', team: 'beta' }) ?? 0) >= 1, 'team beta');
  t.ok((sample(text, 'tollgate_requests_total', { kind: 'request', decision: 'deny', team: 'alpha' }) ?? 0) >= 1, 'the denial');
  t.ok((sample(text, 'tollgate_requests_total', { kind: 'request', decision: 'none', team: 'none' }) ?? 0) >= 1, 'the unauthenticated request');
  t.ok((sample(text, 'tollgate_request_refusals_total', { reason: 'host_not_allowed' }) ?? 0) >= 1);
  t.ok((sample(text, 'tollgate_request_refusals_total', { reason: 'auth_required' }) ?? 0) >= 1);
  t.ok((sample(text, 'tollgate_upstream_errors_total', { reason: 'upstream_unavailable' }) ?? 0) >= 1, 'the dead upstream');
  t.ok((sample(text, 'tollgate_request_duration_seconds_count', { kind: 'request', decision: 'allow' }) ?? 0) >= 3);
  t.ok((sample(text, 'tollgate_bytes_out_total', { kind: 'request' }) ?? 0) > 0);
  t.ok((sample(text, 'tollgate_bytes_in_total', { kind: 'request' }) ?? 0) > 0, 'the LLM request body');
  t.equal(sample(text, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-haiku-4-5', kind: 'output' }), 15, 'dated snapshot folded into the price-table id');
  t.equal(sample(text, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-haiku-4-5', kind: 'input' }), 100);
  t.equal(sample(text, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-haiku-4-5', kind: 'cache_read' }), 1000);
  const spend = sample(text, 'tollgate_llm_spend_usd_total', { provider: 'anthropic', model: 'claude-haiku-4-5' }) ?? 0;
  t.ok(Math.abs(spend - (100 * 1 + 1000 * 0.1 + 200 * 1.25 + 15 * 5) / 1e6) < 1e-9, `spend in dollars (${spend})`);
  const agentUse = sample(text, 'tollgate_budget_utilisation_ratio', { scope: 'agent', name: 'alpha-bot', window: 'month' }) ?? 0;
  t.ok(agentUse > 0 && agentUse < 0.01, `agent budget utilisation (${agentUse})`);
  t.ok((sample(text, 'tollgate_budget_utilisation_ratio', { scope: 'team', name: 'alpha', window: 'month' }) ?? 0) > 0);
  t.ok((sample(text, 'tollgate_budget_utilisation_ratio', { scope: 'org', name: 'org', window: 'month' }) ?? 0) > 0);
  t.equal(sample(text, 'tollgate_audit_store_up'), 1);
  t.not(sample(text, 'tollgate_audit_queue_depth'), undefined);
  t.equal(sample(text, 'tollgate_audit_dropped_rows_total'), 0);
  t.ok((sample(text, 'tollgate_audit_committed_rows_total') ?? 0) > 0);
  t.equal(sample(text, 'tollgate_policy_reload_ok'), 1);
  t.equal(sample(text, 'tollgate_policy_generation'), 1);
  t.ok((sample(text, 'tollgate_tls_leaves_minted_total') ?? 0) >= 1, 'the leaf minted for api.anthropic.com');
  t.ok((sample(text, 'tollgate_tls_leaf_cache_entries') ?? 0) >= 1);
  t.ok((sample(text, 'tollgate_proxy_open_connections') ?? 0) >= 1, 'the agent keeps its connection open');
  t.ok((sample(text, 'tollgate_proxy_open_tunnels') ?? 0) >= 1, 'the intercepted tunnel to the LLM is still open');
  t.ok((sample(text, 'tollgate_process_cpu_seconds_total') ?? 0) > 0, 'default process metrics, prefixed');

  await alpha.close();
  alphaOpen = false;
  const closed = await until(() => scrape(), (s) => (sample(s.text, 'tollgate_requests_total', { kind: 'tunnel', decision: 'allow', team: 'alpha' }) ?? 0) >= 1);
  t.ok((sample(closed.text, 'tollgate_requests_total', { kind: 'tunnel', decision: 'allow', team: 'alpha' }) ?? 0) >= 1, 'the tunnel is counted when it ends');
  t.equal(sample(closed.text, 'tollgate_proxy_open_tunnels'), 0);

  // Canary scan: nothing that identifies a request, a person's secret or a destination.
  const requestIds = tg.exchanges().map((e) => String(e['request_id'])).filter((id) => id.length >= 6);
  t.ok(requestIds.length >= 6);
  const forbidden = [
    'echo.allowed.test', 'evil.metrics.test', 'down.metrics.test', 'api.anthropic.com', 'anthropic.com', '127.0.0.1',
    PATH_CANARY, QUERY_CANARY, '/v1/messages', ANT_KEY, METRICS_TOKEN, tg.token, tg.tokenB, 'sk-ant-dummy',
    'claude-haiku-4-5-20251001', String(tg.proxyPort), ...requestIds,
  ];
  for (const f of forbidden) t.notOk(closed.text.includes(f), `the scrape does not contain ${f.slice(0, 24)}`);
  for (const line of closed.text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    t.notMatch(line, /\b(host|path|request_id|token|user|subject|client)="/, `no identifying label: ${line.slice(0, 60)}`);
  }
});

t.test('a rejected policy reload shows as reload_ok 0 and a rejected count; a good one restores it', async (t) => {
  const alphaFile = path.join(tg.dir, 'policies', 'alpha.yaml');
  writeFileSync(alphaFile, 'team: alpha\nrules:\n  - { host: "*", action: maybe }\n');
  const bad = await until(() => scrape(), (s) => sample(s.text, 'tollgate_policy_reloads_total', { result: 'rejected' }) === 1);
  t.equal(sample(bad.text, 'tollgate_policy_reloads_total', { result: 'rejected' }), 1);
  t.equal(sample(bad.text, 'tollgate_policy_reload_ok'), 0);
  t.equal(sample(bad.text, 'tollgate_policy_generation'), 1, 'the last good policy stays in force');
  writeFileSync(alphaFile, `team: alpha\nrules:\n${ALPHA_RULES.replace(/^\n/, '')}\n  - { host: "*", action: deny }\n`);
  const good = await until(() => scrape(), (s) => sample(s.text, 'tollgate_policy_reload_ok') === 1);
  t.equal(sample(good.text, 'tollgate_policy_reload_ok'), 1);
  t.ok((sample(good.text, 'tollgate_policy_reloads_total', { result: 'applied' }) ?? 0) >= 1);
  t.equal(sample(good.text, 'tollgate_policy_generation'), 2);
});

t.test('the bearer token protects /metrics', async (t) => {
  const none = await scrape(tg.adminUrl, null);
  t.equal(none.status, 401);
  t.equal(none.headers['www-authenticate'], 'Bearer realm="tollgate-metrics"');
  t.notMatch(none.text, /tollgate_/);
  const wrong = await scrape(tg.adminUrl, `${METRICS_TOKEN}x`);
  t.equal(wrong.status, 401);
  const basic = await request(`${tg.adminUrl}/metrics`, { headers: { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` } });
  await basic.body.text();
  t.equal(basic.statusCode, 401, 'only a bearer token is accepted');
  t.equal((await scrape()).status, 200);
  t.notOk(tg.logText().includes(METRICS_TOKEN), 'the token is never logged');
});

t.test('without metrics config the route is open on the admin listener; a secret with no value fails closed', async (t) => {
  const open = await startTestGateway();
  t.teardown(() => open.stop());
  const o = await scrape(open.adminUrl, null);
  t.equal(o.status, 200);
  t.match(o.text, /# TYPE tollgate_requests_total counter/);

  const missing = await startTestGateway({ extraYaml: 'metrics: { bearer_token_secret: not-set-anywhere }' });
  t.teardown(() => missing.stop());
  const m = await scrape(missing.adminUrl, 'anything');
  t.equal(m.status, 503);
  t.match(m.text, /metrics_token_unavailable/);
  t.ok(missing.logs.some((l) => l['msg'] === 'metrics.bearer_token_secret has no value; GET /metrics answers 503 until it is set'));
});
