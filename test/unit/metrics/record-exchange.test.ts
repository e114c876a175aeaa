// The exchange recorder on a fresh Registry: counter values after synthetic exchanges, label
// folding into closed sets (`other`, `none`), and the live sources read at scrape time.
import t from 'tap';
import { Counter, Registry } from 'prom-client';
import { parsePriceTable } from '../../../src/config/price-config.ts';
import { createLabelSets } from '../../../src/metrics/label-sets.ts';
import { createMetricCatalogue } from '../../../src/metrics/metric-catalogue.ts';
import { exchangeRecorder } from '../../../src/metrics/record-exchange.ts';
import { bearerMatches } from '../../../src/metrics/metrics-route.ts';
import { newOutcome, NO_BODY, type Exchange } from '../../../src/proxy/exchange.ts';
import type { ReasonCode } from '../../../src/errors.ts';

const PRICES = `as_of: "2026-01-01"
sources: [test]
providers:
  anthropic:
    models:
      claude-sonnet-4-5: { input: 3, output: 15, aliases: [claude-sonnet-latest] }
  openai:
    models:
      gpt-4o: { input: 2.5, output: 10 }
`;
const parsed = parsePriceTable('prices.yaml', PRICES);
if (!parsed.ok) throw new Error('bad test price table');

const NOW = 1_800_000_000_000;

function exchange(over: Partial<Exchange> & { team?: string; effect?: 'allow' | 'deny' | 'direct'; reason?: ReasonCode } = {}): Exchange {
  const { team, effect, reason, ...rest } = over;
  const ex: Exchange = {
    id: 'req-SECRET-ID', startedAt: NOW - 250, kind: 'request', via: 'plain', tunnel: undefined, clientAddress: '127.0.0.1',
    method: 'GET', scheme: 'https', host: 'api.secret-host.test', hostKind: 'dns', port: 443, path: '/secret/path', query: '',
    proxyAuthorization: [], headers: [],
    principal: team === undefined ? undefined : { kind: 'agent', id: 'tok1', subject: 'agent:bot', team },
    decision: effect === undefined ? undefined : { effect, reason: 'allowed', rule: 'p.yaml:1', explanation: '', intercept: false },
    target: undefined, outcome: { ...newOutcome(), status: 200, reason }, body: NO_BODY, usage: undefined, drainOnClientAbort: undefined,
    settlements: [], admissionChecks: [], onClientEnd: [], responseObservers: [], notes: {},
    ...rest,
  };
  return ex;
}

function setup() {
  const registry = new Registry();
  const m = createMetricCatalogue({ registry, defaultMetrics: false });
  const teams = new Map([['alpha', {}], ['beta', {}]]);
  const labels = createLabelSets({ teams: () => teams, prices: parsed.ok ? parsed.table : (undefined as never), providers: [{ name: 'anthropic', priceTable: 'anthropic' }, { name: 'openai', priceTable: 'openai' }] });
  return { registry, m, teams, labels, record: exchangeRecorder(m, labels) };
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const want = Object.entries(labels);
  const sample = (await metric.get()).values.find((v) => {
    const got = v.labels as Record<string, unknown>;
    return Object.keys(got).length === want.length && want.every(([k, x]) => got[k] === x);
  });
  return sample?.value;
}

t.test('counts requests by kind, decision and team; folds unknown teams into other', async (t) => {
  const { registry, record } = setup();
  record(exchange({ team: 'alpha', effect: 'allow', outcome: { ...newOutcome(), status: 200, bytesIn: 10, bytesOut: 1000 } }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow' }), NOW);
  record(exchange({ team: 'beta', effect: 'deny', reason: 'host_not_allowed' }), NOW);
  record(exchange({ team: 'gamma-not-in-org', effect: 'allow' }), NOW);
  record(exchange({ reason: 'auth_required' }), NOW); // no principal, no decision
  record(exchange({ kind: 'tunnel', via: 'connect', team: 'alpha', effect: 'direct', outcome: { ...newOutcome(), bytesIn: 5, bytesOut: 7 } }), NOW);

  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'request', decision: 'allow', team: 'alpha' }), 2);
  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'request', decision: 'deny', team: 'beta' }), 1);
  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'request', decision: 'allow', team: 'other' }), 1, 'a team outside org.yaml is other');
  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'request', decision: 'none', team: 'none' }), 1, 'refused before authentication');
  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'tunnel', decision: 'direct', team: 'alpha' }), 1);
  t.equal(await value(registry, 'tollgate_request_refusals_total', { reason: 'host_not_allowed' }), 1);
  t.equal(await value(registry, 'tollgate_request_refusals_total', { reason: 'auth_required' }), 1);
  t.equal(await value(registry, 'tollgate_request_refusals_total', { reason: 'dns_error' }), 0, 'known reasons start at 0');
  t.equal(await value(registry, 'tollgate_bytes_in_total', { kind: 'request' }), 10);
  t.equal(await value(registry, 'tollgate_bytes_out_total', { kind: 'request' }), 1000);
  t.equal(await value(registry, 'tollgate_bytes_out_total', { kind: 'tunnel' }), 7);

  const text = await registry.metrics();
  t.match(text, /tollgate_request_duration_seconds_bucket\{le="0\.25",kind="request",decision="allow"\} 3/);
  t.match(text, /tollgate_request_duration_seconds_count\{kind="request",decision="allow"\} 3/);
  t.match(text, /tollgate_request_duration_seconds_sum\{kind="request",decision="allow"\} 0\.75/);
  t.notMatch(text, /gamma-not-in-org|secret-host|secret\/path|SECRET-ID|tok1|agent:bot/, 'no free-form value reaches a label');
});

t.test('a team added by a reload becomes its own label; one removed folds into other', async (t) => {
  const { registry, teams, record } = setup();
  record(exchange({ team: 'gamma', effect: 'allow' }), NOW);
  teams.set('gamma', {});
  teams.delete('beta');
  record(exchange({ team: 'gamma', effect: 'allow' }), NOW);
  record(exchange({ team: 'beta', effect: 'allow' }), NOW);
  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'request', decision: 'allow', team: 'gamma' }), 1);
  t.equal(await value(registry, 'tollgate_requests_total', { kind: 'request', decision: 'allow', team: 'other' }), 2);
});

t.test('upstream errors by reason code', async (t) => {
  const { registry, record } = setup();
  record(exchange({ team: 'alpha', effect: 'allow', reason: 'upstream_timeout' }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow', reason: 'upstream_timeout' }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow', reason: 'dns_error' }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow', reason: 'budget_exceeded' }), NOW);
  t.equal(await value(registry, 'tollgate_upstream_errors_total', { reason: 'upstream_timeout' }), 2);
  t.equal(await value(registry, 'tollgate_upstream_errors_total', { reason: 'dns_error' }), 1);
  t.equal(await value(registry, 'tollgate_upstream_errors_total', { reason: 'upstream_tls_error' }), 0);
  t.equal(await value(registry, 'tollgate_upstream_errors_total', { reason: 'budget_exceeded' }), undefined, 'a budget refusal is no upstream error');
  t.equal(await value(registry, 'tollgate_request_refusals_total', { reason: 'budget_exceeded' }), 1);
});

t.test('LLM tokens and spend by provider and model; models outside the price table fold into other', async (t) => {
  const { registry, record } = setup();
  const usage = (provider: string, model: string | undefined, costMicros: number, estimated = false) => ({
    provider, model, inputTokens: 100, outputTokens: 15, cacheReadTokens: 1000, cacheWriteTokens: 0, costMicros, estimated,
  });
  record(exchange({ team: 'alpha', effect: 'allow', usage: usage('anthropic', 'claude-sonnet-4-5-20251001', 1_500_000) }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow', usage: usage('anthropic', 'claude-sonnet-latest', 500_000) }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow', usage: usage('openai', 'my-finetune-ft:acme:SECRET', 250_000, true) }), NOW);
  record(exchange({ team: 'alpha', effect: 'allow', usage: usage('rogue-provider', 'gpt-4o', 1) }), NOW);

  t.equal(await value(registry, 'tollgate_llm_spend_usd_total', { provider: 'anthropic', model: 'claude-sonnet-4-5' }), 2, 'snapshot and alias fold into the canonical id; micro-dollars → dollars');
  t.equal(await value(registry, 'tollgate_llm_spend_usd_total', { provider: 'openai', model: 'other' }), 0.25);
  t.equal(await value(registry, 'tollgate_llm_spend_usd_total', { provider: 'other', model: 'other' }), 0.000001);
  t.equal(await value(registry, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-sonnet-4-5', kind: 'input' }), 200);
  t.equal(await value(registry, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-sonnet-4-5', kind: 'output' }), 30);
  t.equal(await value(registry, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-sonnet-4-5', kind: 'cache_read' }), 2000);
  t.equal(await value(registry, 'tollgate_llm_tokens_total', { provider: 'anthropic', model: 'claude-sonnet-4-5', kind: 'cache_write' }), undefined, 'zero counts create no series');
  t.equal(await value(registry, 'tollgate_llm_requests_total', { provider: 'anthropic', model: 'claude-sonnet-4-5' }), 2);
  t.equal(await value(registry, 'tollgate_llm_estimated_charges_total', { provider: 'openai' }), 1);
  t.notMatch(await registry.metrics(), /finetune|SECRET|rogue/);
});

t.test('the model memo is bounded but labels stay correct past it', async (t) => {
  const labels = createLabelSets({ teams: () => new Map(), prices: parsed.ok ? parsed.table : (undefined as never), providers: [{ name: 'openai', priceTable: 'openai' }], memoSize: 2 });
  for (let i = 0; i < 10; i++) t.equal(labels.model('openai', `junk-${i}`), 'other');
  t.equal(labels.model('openai', 'GPT-4o-2024-08-06'), 'gpt-4o');
  t.equal(labels.model('openai', undefined), 'other');
  t.equal(labels.model('nobody', 'gpt-4o'), 'other');
});

t.test('live sources are read at scrape time', async (t) => {
  const { registry, m } = setup();
  const audit = { ok: true, queued: 3, dropped: 0, failedDecisions: 0, failOpen: 0, committed: 10 };
  const leaf = { minted: 2, cached: 2, hits: 5, misses: 2 };
  const policy = { ok: true, generation: 1 };
  m.observe({
    proxy: () => ({ connections: 4, tunnels: 2, activeExchanges: 1 }),
    upstreamPools: () => 3,
    leafCerts: () => leaf,
    audit: () => audit,
    policy: () => policy,
    budgets: () => [
      { scope: 'org', window: 'month', limitMicros: 1_000_000, spentMicros: 850_000, reservedMicros: 0 },
      { scope: 'team:alpha', window: 'day', limitMicros: 200, spentMicros: 50, reservedMicros: 50 },
      { scope: 'user:ana@acme.example', window: 'day', limitMicros: 100, spentMicros: 100, reservedMicros: 0 },
    ],
  });
  t.equal(await value(registry, 'tollgate_proxy_open_connections'), 4);
  t.equal(await value(registry, 'tollgate_proxy_open_tunnels'), 2);
  t.equal(await value(registry, 'tollgate_upstream_pools'), 3);
  t.equal(await value(registry, 'tollgate_audit_queue_depth'), 3);
  t.equal(await value(registry, 'tollgate_audit_committed_rows_total'), 10);
  t.equal(await value(registry, 'tollgate_tls_leaf_cache_entries'), 2);
  t.equal(await value(registry, 'tollgate_tls_leaves_minted_total'), 2);
  t.equal(await value(registry, 'tollgate_budget_utilisation_ratio', { scope: 'org', name: 'org', window: 'month' }), 0.85);
  t.equal(await value(registry, 'tollgate_budget_utilisation_ratio', { scope: 'team', name: 'alpha', window: 'day' }), 0.5);
  t.notMatch(await registry.metrics(), /ana@acme/, 'user budget lines are not exported (e-mail addresses)');

  // Mirrored counters follow their source; reloads count by result.
  audit.dropped = 4;
  audit.committed = 15;
  leaf.minted = 5;
  leaf.hits = 9;
  policy.ok = false;
  m.notePolicyReload(true);
  m.notePolicyReload(false);
  t.equal(await value(registry, 'tollgate_audit_dropped_rows_total'), 4);
  t.equal(await value(registry, 'tollgate_audit_committed_rows_total'), 15);
  t.equal(await value(registry, 'tollgate_tls_leaves_minted_total'), 5);
  t.equal(await value(registry, 'tollgate_tls_leaf_cache_lookups_total', { result: 'hit' }), 9);
  t.equal(await value(registry, 'tollgate_policy_reload_ok'), 0);
  t.equal(await value(registry, 'tollgate_policy_reloads_total', { result: 'rejected' }), 1);
  t.equal(await value(registry, 'tollgate_policy_reloads_total', { result: 'applied' }), 1);
});

t.test('a failing budget source does not fail the scrape', async (t) => {
  const { registry, m } = setup();
  m.observe({ budgets: () => Promise.reject(new Error('SQLITE_BUSY')) });
  const text = await registry.metrics();
  t.match(text, /tollgate_metrics_source_errors_total\{source="budgets"\} 1/);
  t.notMatch(text, /tollgate_budget_utilisation_ratio\{/);
});

t.test('default process metrics carry the tollgate_ prefix, on this registry only', async (t) => {
  const registry = new Registry();
  createMetricCatalogue({ registry });
  const text = await registry.metrics();
  t.match(text, /^tollgate_process_cpu_seconds_total /m);
  const names = registry.getMetricsAsArray().map((x) => x.name);
  t.same(names.filter((n) => !n.startsWith('tollgate_')), [], 'every metric carries the prefix');
  t.ok(names.filter((n) => /_total$/.test(n)).length > 0);
});

t.test('counter names end in _total and every label set is bounded', async (t) => {
  const registry = new Registry();
  createMetricCatalogue({ registry, defaultMetrics: false });
  let counters = 0;
  for (const metric of registry.getMetricsAsArray()) {
    if (metric instanceof Counter) {
      counters++;
      t.match(metric.name, /_total$/, metric.name);
    }
    const labelNames = (metric as unknown as { labelNames: string[] }).labelNames;
    for (const k of labelNames) t.notOk(['host', 'path', 'request_id', 'user', 'subject', 'token', 'client'].includes(k), `${metric.name} has no ${k} label`);
  }
  t.ok(counters >= 10);
});

t.test('bearer comparison', async (t) => {
  t.ok(bearerMatches('Bearer s3cret', 's3cret'));
  t.ok(bearerMatches('bearer s3cret', 's3cret'));
  t.notOk(bearerMatches('Bearer s3cre', 's3cret'));
  t.notOk(bearerMatches('Basic s3cret', 's3cret'));
  t.notOk(bearerMatches(undefined, 's3cret'));
  t.notOk(bearerMatches('Bearer ', ''));
});
