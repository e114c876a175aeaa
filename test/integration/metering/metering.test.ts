// Metering and budgets through a running gateway: local fake Anthropic and OpenAI upstreams (HTTPS,
// mapped with `upstreams:`), the official SDKs sending through the proxy, a race at a nearly
// exhausted budget, a client that leaves mid-stream, gzip bodies, unknown models, store failure.
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import t from 'tap';
import { fetch as undiciFetch, ProxyAgent, request } from 'undici';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { sleep } from '../../helpers/cli-process.ts';
import { fakeAnthropic, fakeOpenAi, llmGatewayOptions, SEARCHES, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const ANT_KEY = `CANARY_ANT_${Math.random().toString(36).slice(2)}`;
const OAI_KEY = `CANARY_OAI_${Math.random().toString(36).slice(2)}`;
const ctl: FakeLlmControl = { mode: 'normal', sent: 0, finished: 0 };
const pki = await makeTestCa();
const pair = await pki.issue(['api.anthropic.com', 'api.openai.com']);
const ant = await startUpstream({ tls: pair, handler: fakeAnthropic(ctl) });
const oai = await startUpstream({ tls: pair, handler: fakeOpenAi(ctl) });

const ORG = `organization: Test Org
budget: { monthly_usd: 1000 }
teams:
  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml, budget: { monthly_usd: 100 }, user_budget: { daily_usd: 0.0001 } }
  beta: { name: Beta, idp_groups: [beta], policy: policies/beta.yaml }
agents:
  alpha-bot: { name: Alpha Bot, team: alpha }
  beta-bot: { name: Beta Bot, team: beta }
  race-bot: { name: Race Bot, team: alpha, budget: { monthly_usd: 0.018 } }
  broke-bot: { name: Broke Bot, team: alpha, budget: { daily_usd: 0.0001 } }
  abort-bot: { name: Abort Bot, team: alpha }
  early-bot: { name: Early Bot, team: alpha }
  sdk-bot: { name: SDK Bot, team: alpha }
`;

const tg = await startTestGateway(llmGatewayOptions({
  ant: ant.port, oai: oai.port, caPem: pki.caPem, antKey: ANT_KEY, oaiKey: OAI_KEY,
  files: { 'org.yaml': ORG }, extraYaml: 'metering: { drain_ms: 5000 }',
}));
t.teardown(() => { if (process.env["METER_DEBUG"]) for (const l of tg.logs) if (l["level"] !== "debug" && l["msg"] !== "exchange") console.error(JSON.stringify(l)); });
const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));
t.teardown(async () => {
  db.close();
  await tg.stop();
  await Promise.all([ant.close(), oai.close()]);
});

async function tokenFor(agent: string | undefined, user?: string): Promise<string> {
  let out = '';
  await tokenIssue({ dbFile: databasePath({ dataDir: path.join(tg.dir, 'data') }), ...(agent ? { agent } : { user }), team: 'alpha', ttl: '1h', write: (s) => { out += s; } });
  return out.trim();
}
/** SDK options that send through the gateway: undici's fetch (the global one rejects a foreign dispatcher) and a ProxyAgent. */
const viaProxy = (dispatcher: ProxyAgent) => ({ fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher } as never });
const proxyFor = (token: string) => new ProxyAgent({ uri: `http://alpha:${token}@127.0.0.1:${tg.proxyPort}`, requestTls: { ca: tg.caPem } });

interface LedgerRow { id: string; state: string; subject: string; provider: string; model: string; reserved_micros: number; cost_micros: number; estimated: number; input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number }
const rowsOf = (subject: string) => db.prepare<[string], LedgerRow>('SELECT * FROM ledger_requests WHERE subject = ? ORDER BY created_at').all(subject);
async function settledRows(subject: string, n: number, ms = 8000): Promise<LedgerRow[]> {
  const until = Date.now() + ms;
  for (;;) {
    const rows = rowsOf(subject);
    if (rows.length >= n && rows.every((r) => r.state !== 'reserved')) return rows;
    if (Date.now() > until) return rows;
    await new Promise((r) => setTimeout(r, 25));
  }
}
const counter = (scope: string, windowKey: string) =>
  db.prepare<[string, string], { spent_micros: number; reserved_micros: number }>('SELECT spent_micros, reserved_micros FROM budget_counters WHERE scope = ? AND window_key = ?').get(scope, windowKey);
const month = () => `month:${new Date().toISOString().slice(0, 7)}`;
const exchangesOf = (subject: string, p: string) => tg.exchanges().filter((e) => e['principal'] === `agent:${subject}` && e['path'] === p);
const HAIKU_COST = 100 * 1 + 1000 * 0.1 + 200 * 1.25 + 15 * 5; // µ$ at $1 / $0.10 / $1.25 / $5 per MTok
const MINI_COST = Math.ceil(90_000 * 0.15 + 10_000 * 0.075 + 20_000 * 0.6); // µ$ at $0.15 / $0.075 / $0.60 per MTok

t.test('a streaming Anthropic call through the real SDK is charged its usage to agent, team and org', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const client = new Anthropic({ apiKey: 'sk-ant-dummy', ...viaProxy(dispatcher) });
  const stream = client.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'Say hello' }] });
  const final = await stream.finalMessage();
  t.equal(final.usage.output_tokens, 15);
  t.equal(ant.seen.at(-1)?.headers['x-api-key'], ANT_KEY, 'the bound key was injected');
  const [row] = await settledRows('sdk-bot', 1);
  t.match(row, { state: 'settled', provider: 'anthropic', model: 'claude-haiku-4-5-20251001', cost_micros: HAIKU_COST, estimated: 0, input_tokens: 100, output_tokens: 15, cache_read_tokens: 1000, cache_write_tokens: 200 }, '6.09: 15 output tokens, cache reads and writes at their own rates');
  t.ok(row && row.reserved_micros >= row.cost_micros, 'the reservation covered the cost');
  t.same(counter('agent:sdk-bot', month()), { spent_micros: HAIKU_COST, reserved_micros: 0 });
  t.ok((counter('team:alpha', month())?.spent_micros ?? 0) >= HAIKU_COST);
  t.ok((counter('org', month())?.spent_micros ?? 0) >= HAIKU_COST);
  await dispatcher.close();
});

t.test('server-side web searches are charged at $10 per 1,000 and reserved up to the tool\'s max_uses', async (t) => {
  ctl.mode = 'search';
  t.teardown(() => { ctl.mode = 'normal'; });
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  t.teardown(() => dispatcher.close());
  const before = rowsOf('sdk-bot').length;
  const client = new Anthropic({ apiKey: 'sk-ant-dummy', ...viaProxy(dispatcher) });
  const stream = client.messages.stream({
    model: 'claude-haiku-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'What is new?' }],
    tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }],
  });
  const final = await stream.finalMessage();
  t.equal(final.usage.server_tool_use?.web_search_requests, SEARCHES);
  const row = (await settledRows('sdk-bot', before + 1)).at(-1);
  t.match(row, { state: 'settled', cost_micros: HAIKU_COST + SEARCHES * 10_000, estimated: 0, output_tokens: 15 }, 'tokens plus $0.01 a search');
  t.ok(row && row.reserved_micros >= HAIKU_COST + 5 * 10_000, 'the reservation held five searches (max_uses)');
});

t.test('OpenAI priority processing is charged at its own rates; a model without them is refused before forwarding', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  t.teardown(() => dispatcher.close());
  const client = new OpenAI({ apiKey: 'sk-dummy', ...viaProxy(dispatcher) });
  const before = rowsOf('sdk-bot').length;
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50_000, service_tier: 'priority' });
  t.equal(r.service_tier, 'priority');
  const row = (await settledRows('sdk-bot', before + 1)).at(-1);
  // priority gpt-4o-mini: $0.25 input, $0.125 cached, $1.00 output per MTok (standard: MINI_COST)
  t.match(row, { state: 'settled', cost_micros: Math.ceil(90_000 * 0.25 + 10_000 * 0.125 + 20_000 * 1), estimated: 0 });
  t.ok(row && row.reserved_micros >= 50_000 * 1, 'the output cap was reserved at the priority output rate');

  const seen = oai.seen.length;
  const refused = await client.chat.completions.create({ model: 'gpt-5-nano', messages: [{ role: 'user', content: 'hi' }], service_tier: 'priority' }).then(() => undefined, (e: unknown) => e);
  t.ok(refused instanceof OpenAI.PermissionDeniedError, '403 price_unknown, shown once');
  t.match((refused as Error).message, /no priority-processing price for model "gpt-5-nano"/);
  t.equal(oai.seen.length, seen, 'nothing reached OpenAI');
});

t.test('OpenAI SDK: chat (JSON, and streamed with include_usage) and Responses are charged exactly', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const client = new OpenAI({ apiKey: 'sk-dummy', ...viaProxy(dispatcher) });
  const before = rowsOf('sdk-bot').length;
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50_000 });
  t.equal(r.usage?.completion_tokens, 20_000);
  const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
  let chunks = 0;
  for await (const _ of s) chunks++;
  t.ok(chunks >= 5);
  await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', max_output_tokens: 30_000 });
  t.equal(oai.seen.at(-1)?.headers['authorization'], `Bearer ${OAI_KEY}`);
  const rows = (await settledRows('sdk-bot', before + 3)).slice(before);
  t.equal(rows.length, 3);
  for (const row of rows) t.match(row, { state: 'settled', provider: 'openai', model: 'gpt-4o-mini-2024-07-18', cost_micros: MINI_COST, estimated: 0, input_tokens: 90_000, cache_read_tokens: 10_000, output_tokens: 20_000 });
  await dispatcher.close();
});

t.test('6.02: a stream without include_usage is charged an estimate, flagged, never $0', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const before = rowsOf('sdk-bot').length;
  const res = await request('https://api.openai.com/v1/chat/completions', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'count' }] }),
  });
  t.equal(res.statusCode, 200);
  const text = await res.body.text();
  t.notMatch(text, /"usage"/, 'the client sees the stream it asked for');
  const row = (await settledRows('sdk-bot', before + 1)).at(-1);
  t.match(row, { state: 'settled', estimated: 1 });
  t.ok(row && row.cost_micros > 0 && row.output_tokens >= 3, `estimate ${row?.cost_micros} µ$ for ${row?.output_tokens} relayed tokens`);
  await dispatcher.close();
});

t.test('6.01: n choices reserve n times the output worst case', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const before = rowsOf('sdk-bot').length;
  for (const n of [1, 4]) {
    const res = await request('https://api.openai.com/v1/chat/completions', {
      method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', n, max_tokens: 1000, messages: [{ role: 'user', content: 'same prompt' }] }),
    });
    t.equal(res.statusCode, 200);
    await res.body.dump();
  }
  const [one, four] = (await settledRows('sdk-bot', before + 2)).slice(before);
  // gpt-4o-mini output: $0.60 / MTok → 1000 tokens = 600 µ$ per choice; same input estimate both times
  t.equal((four?.reserved_micros ?? 0) - (one?.reserved_micros ?? 0), 3 * 600, 'three more choices: three more output worst cases reserved');
  await dispatcher.close();
});

t.test('6.01: input the provider adds itself (a document by URL) is reserved at metering.provider_side_input_tokens', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const before = rowsOf('sdk-bot').length;
  for (const content of ['plain', [{ type: 'document', source: { type: 'url', url: 'https://docs.example/report.pdf' } }]]) {
    const res = await request('https://api.anthropic.com/v1/messages', {
      method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content }] }),
    });
    t.equal(res.statusCode, 200);
    await res.body.dump();
  }
  const [plain, byUrl] = (await settledRows('sdk-bot', before + 2)).slice(before);
  // claude-haiku-4-5 input: $1 / MTok → 200,000 tokens = 200,000 µ$
  t.ok((plain?.reserved_micros ?? 0) < 10_000, `a plain request reserves from its body (${plain?.reserved_micros} µ$)`);
  t.ok((byUrl?.reserved_micros ?? 0) >= 200_000, `a document by URL reserves at least 200,000 input tokens (${byUrl?.reserved_micros} µ$)`);
  await dispatcher.close();
});

t.test('gzip-encoded JSON is decoded on the side and charged exactly; the client gets the bytes as sent', async (t) => {
  ctl.mode = 'gzip';
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const before = rowsOf('sdk-bot').length;
  const res = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
  });
  t.equal(res.headers['content-encoding'], 'gzip');
  await res.body.arrayBuffer();
  const row = (await settledRows('sdk-bot', before + 1)).at(-1);
  t.match(row, { state: 'settled', cost_micros: HAIKU_COST, estimated: 0 });
  ctl.mode = 'normal';
  await dispatcher.close();
});

t.test('a refused request is attempted exactly once by each SDK, which shows the message (402, provider shape)', async (t) => {
  ctl.mode = 'normal';
  const token = await tokenFor('broke-bot');
  const dispatcher = proxyFor(token);
  const antBefore = ant.seen.length;
  const oaiBefore = oai.seen.length;
  const anthropic = new Anthropic({ apiKey: 'sk-ant-dummy', ...viaProxy(dispatcher), maxRetries: 3 });
  const err = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
  t.ok(err instanceof Anthropic.APIError, 'the SDK raises an API error');
  const e = err as InstanceType<typeof Anthropic.APIError>;
  t.equal(e.status, 402);
  t.match(e.message, /Budget exceeded for agent broke-bot: the daily limit is \$0\.0001, \$0\.00 is spent.*resets at \d{4}-\d{2}-\d{2}T00:00:00\.000Z/);
  t.match(e.error, { type: 'error', error: { type: 'billing_error' } });
  const openai = new OpenAI({ apiKey: 'sk-dummy', ...viaProxy(dispatcher), maxRetries: 3 });
  const err2 = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
  t.ok(err2 instanceof OpenAI.APIError);
  const e2 = err2 as InstanceType<typeof OpenAI.APIError>;
  t.equal(e2.status, 402);
  t.equal(e2.type, 'insufficient_quota');
  t.equal(e2.code, 'budget_exceeded');
  t.match(e2.message, /Budget exceeded for agent broke-bot/);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(exchangesOf('broke-bot', '/v1/messages').length, 1, 'Anthropic SDK: one attempt at the gateway');
  t.equal(exchangesOf('broke-bot', '/v1/chat/completions').length, 1, 'OpenAI SDK: one attempt at the gateway');
  t.equal(ant.seen.length, antBefore, 'nothing reached Anthropic');
  t.equal(oai.seen.length, oaiBefore, 'nothing reached OpenAI');
  t.equal(rowsOf('broke-bot').length, 0, 'nothing held');
  t.ok(tg.logs.some((l) => l['msg'] === 'budget threshold' && l['scope'] === 'agent:broke-bot' && l['percent'] === 100 && l['cause'] === 'refused'), 'a threshold event for the exhausted scope');
  // other paths of the same host pass: Claude Code polls its settings endpoints at start-up
  const settings = await request('https://api.anthropic.com/api/claude_code/settings', { dispatcher });
  t.equal(settings.statusCode, 200);
  await settings.body.dump();
  const count = await request('https://api.anthropic.com/v1/messages/count_tokens', { method: 'POST', dispatcher, body: '{"model":"claude-haiku-4-5","messages":[]}', headers: { 'content-type': 'application/json' } });
  t.equal(count.statusCode, 200, 'count_tokens is not metered');
  await count.body.dump();
  await dispatcher.close();
});

t.test('a user is charged to user scope: the team user_budget binds', async (t) => {
  const token = await tokenFor(undefined, 'ana@acme.example');
  const dispatcher = proxyFor(token);
  const res = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });
  t.equal(res.statusCode, 402);
  t.equal(res.headers['x-should-retry'], 'false');
  t.equal(res.headers['x-tollgate-reason'], 'budget_exceeded');
  const body = await res.body.json() as { error: { type: string; message: string } };
  t.equal(body.error.type, 'billing_error');
  t.match(body.error.message, /^Tollgate: Budget exceeded for user ana@acme\.example: the daily limit is \$0\.0001/);
  t.notMatch(body.error.message, /rule /, 'the message does not point at the policy rule that allowed the host');
  await dispatcher.close();
});

t.test('10 parallel requests against a budget that fits 3 worst cases: no overshoot', async (t) => {
  ctl.mode = 'delay';
  const token = await tokenFor('race-bot');
  const dispatcher = proxyFor(token);
  const upBefore = ant.seen.length;
  // The upstream holds every admitted response until all 10 requests were either admitted (seen
  // upstream) or refused, so no settlement can free budget while the race is on, however slow CI is.
  let release!: () => void;
  ctl.hold = new Promise<void>((r) => { release = r; });
  let refused = 0;
  const watch = setInterval(() => { if (ant.seen.length - upBefore + refused >= 10) release(); }, 5);
  const statuses = await Promise.all(Array.from({ length: 10 }, async () => {
    const res = await request('https://api.anthropic.com/v1/messages', {
      method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 1000, messages: [{ role: 'user', content: 'race' }] }),
    });
    if (res.statusCode !== 200) refused++;
    await res.body.dump();
    return res.statusCode;
  }));
  clearInterval(watch);
  delete ctl.hold;
  const ok = statuses.filter((s) => s === 200).length;
  t.equal(ok, 3, `admitted ${ok}: each worst case is ~$0.005 of the $0.018 budget`);
  t.equal(statuses.filter((s) => s === 402).length, 7);
  t.equal(ant.seen.length - upBefore, ok, 'only admitted requests reached the upstream');
  const rows = await settledRows('race-bot', ok);
  const spent = rows.reduce((a, r) => a + r.cost_micros, 0);
  const worst = Math.max(...rows.map((r) => r.reserved_micros));
  t.ok(spent <= 18_000 + worst, `spent ${spent} µ$ ≤ limit + one worst case`);
  t.same(counter('agent:race-bot', month()), { spent_micros: ok * HAIKU_COST, reserved_micros: 0 }, 'reservations reconcile to the actual cost');
  ctl.mode = 'normal';
  await dispatcher.close();
});

t.test('6.03: a client that leaves mid-stream is still charged — the gateway drains to the final usage', async (t) => {
  ctl.mode = 'slow';
  const token = await tokenFor('abort-bot');
  const dispatcher = proxyFor(token);
  const finishedBefore = ctl.finished;
  const res = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 2000, stream: true, messages: [{ role: 'user', content: 'long story' }] }),
  });
  t.equal(res.statusCode, 200);
  let got = 0;
  for await (const c of res.body) {
    got += (c as Buffer).length;
    if (got > 2000) break; // leaves the loop: undici destroys the body (the client goes away)
  }
  await dispatcher.destroy();
  t.ok(ctl.sent < 200, `the client left after ${ctl.sent} of 200 chunks`);
  const [row] = await settledRows('abort-bot', 1, 10_000);
  t.equal(ctl.finished, finishedBefore + 1, 'the upstream stream was read to its end');
  t.match(row, { state: 'settled', cost_micros: HAIKU_COST, estimated: 0, output_tokens: 15 }, 'charged what the provider bills, not $0');
  ctl.mode = 'normal';
});

t.test('6.03: a client that leaves before the headers of a slow call is still charged what the provider bills', async (t) => {
  let release!: () => void;
  ctl.hold = new Promise<void>((r) => { release = r; });
  ctl.mode = 'delay';
  const token = await tokenFor('early-bot');
  const dispatcher = proxyFor(token);
  const ac = new AbortController();
  const answer = request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 2000, messages: [{ role: 'user', content: 'a long answer, please' }] }),
  }).then(() => 'answered', () => 'aborted');
  await sleep(300); // the request is with the provider, generating
  ac.abort();
  t.equal(await answer, 'aborted', 'the client gave up before the headers');
  await sleep(200);
  release(); // the provider answers after the client left
  const [row] = await settledRows('early-bot', 1, 10_000);
  t.match(row, { state: 'settled', cost_micros: HAIKU_COST, estimated: 0 }, 'charged the usage the provider reported, not released at $0');
  ctl.mode = 'normal';
  delete ctl.hold;
  await dispatcher.destroy();
});

t.test('6.04: the upstream dies mid-stream without final usage → an estimate, flagged', async (t) => {
  ctl.mode = 'cut';
  const token = await tokenFor('abort-bot');
  const dispatcher = proxyFor(token);
  const before = rowsOf('abort-bot').length;
  const res = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 2000, stream: true, messages: [{ role: 'user', content: 'x' }] }),
  });
  await res.body.text().catch(() => '');
  const row = (await settledRows('abort-bot', before + 1)).at(-1);
  t.match(row, { state: 'settled', estimated: 1, input_tokens: 100, cache_read_tokens: 1000 });
  t.ok(row && row.output_tokens >= 50 && row.cost_micros > HAIKU_COST - 75, `relayed output counted (${row?.output_tokens} tokens, ${row?.cost_micros} µ$)`);
  ctl.mode = 'normal';
  await dispatcher.close();
});

t.test('6.05: an unknown model is refused before forwarding (403 price_unknown)', async (t) => {
  const token = await tokenFor('sdk-bot');
  const dispatcher = proxyFor(token);
  const before = oai.seen.length;
  const client = new OpenAI({ apiKey: 'sk-dummy', ...viaProxy(dispatcher) });
  const err = await client.chat.completions.create({ model: 'gpt-9-preview', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
  t.ok(err instanceof OpenAI.APIError);
  t.equal((err as InstanceType<typeof OpenAI.APIError>).status, 403);
  t.equal((err as InstanceType<typeof OpenAI.APIError>).code, 'price_unknown');
  t.match((err as Error).message, /no price for model "gpt-9-preview"/);
  t.equal(oai.seen.length, before, 'nothing reached OpenAI');
  const bad = await request('https://api.anthropic.com/v1/messages', { method: 'POST', dispatcher, body: 'not json', headers: { 'content-type': 'application/json' } });
  t.equal(bad.statusCode, 400, 'a metered request that cannot be read is refused');
  await bad.body.dump();
  await dispatcher.close();
});

t.test('6.11: when the spend store fails, metered requests get 503 budget_unavailable; others pass', async (t) => {
  db.exec('DROP TABLE budget_counters');
  const dispatcher = proxyFor(tg.token);
  const res = await request('https://api.anthropic.com/v1/messages', {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });
  t.equal(res.statusCode, 503);
  t.equal(res.headers['x-tollgate-reason'], 'budget_unavailable');
  t.match(await res.body.json(), { error: { type: 'overloaded_error' } });
  const other = await request('https://api.anthropic.com/v1/models', { dispatcher });
  t.equal(other.statusCode, 200);
  await other.body.dump();
  await dispatcher.close();
});
