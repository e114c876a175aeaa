// Security case 6.11 through a running gateway: the spend store (tollgate.db, written by the audit
// writer thread, where a reservation rides in one transaction with its request's decision row)
// cannot write — (a) locked by another connection's BEGIN IMMEDIATE past audit.busy_timeout_ms,
// (b) read-only, (c) full — one at a time, restored in between. Each time a metered request
// (Anthropic Messages, OpenAI Chat Completions) gets 503 budget_unavailable in the provider's error
// shape and nothing reaches the provider; a non-metered request follows 7.01/7.02 (503
// audit_unavailable, fail closed by default); /readyz names the SQLite error. After each restore
// metered requests are admitted again and charged exactly once, the refused ones hold nothing, and
// no reservation is left open. Also: a request admitted just before an outage whose response ends
// during it is still settled once the store writes again.
//
// How the store is broken: (a) from a second connection of the test; (b) and (c) on the writer's
// own connection (PRAGMA query_only, PRAGMA max_page_count), with the writer's `limits` message —
// what SqliteAuditSink.setStoreLimits sends (used the same way by audit-sink-faults.test.ts), posted
// here because the gateway does not expose its sink. chmod cannot stand in for (b): the writer
// holds the file open, and the tests may run as root.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Anthropic from '@anthropic-ai/sdk';
import t, { type Test } from 'tap';
import { fetch as undiciFetch, ProxyAgent, request } from 'undici';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import type { FromWorker, ToWorker } from '../../../src/store/audit-writer-worker.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { fakeAnthropic, fakeOpenAi, llmGatewayOptions, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const BUSY_MS = 200;
const ANT_KEY = `CANARY_ANT_${Math.random().toString(36).slice(2)}`;
const OAI_KEY = `CANARY_OAI_${Math.random().toString(36).slice(2)}`;
const ctl: FakeLlmControl = { mode: 'normal', sent: 0, finished: 0 };
const pki = await makeTestCa();
const pair = await pki.issue(['api.anthropic.com', 'api.openai.com', 'api.github.com']);
const ant = await startUpstream({ tls: pair, handler: fakeAnthropic(ctl) });
const oai = await startUpstream({ tls: pair, handler: fakeOpenAi(ctl) });
const gh = await startUpstream({ tls: pair }); // a non-metered host (echo)

const ORG = `organization: Test Org
budget: { monthly_usd: 1000 }
teams:
  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml, budget: { monthly_usd: 100 } }
  beta: { name: Beta, idp_groups: [beta], policy: policies/beta.yaml }
agents:
  alpha-bot: { name: Alpha Bot, team: alpha }
  beta-bot: { name: Beta Bot, team: beta }
  store-bot: { name: Store Bot, team: alpha, budget: { monthly_usd: 10 } }
`;

// The writer thread: the first Worker the gateway posts an `ops` message to (records and ledger calls).
const writers: Worker[] = [];
const postMessage = Object.getOwnPropertyDescriptor(Worker.prototype, 'postMessage')?.value as Worker['postMessage'];
Worker.prototype.postMessage = function capture(this: Worker, value: unknown, transferList?: Parameters<Worker['postMessage']>[1]) {
  if (writers.length === 0 && (value as { t?: unknown } | null)?.t === 'ops') writers.push(this);
  return postMessage.call(this, value, transferList);
};
const restorePostMessage = () => { Worker.prototype.postMessage = postMessage; };
t.teardown(restorePostMessage);

const base = llmGatewayOptions({
  ant: ant.port, oai: oai.port, caPem: pki.caPem, antKey: ANT_KEY, oaiKey: OAI_KEY,
  files: { 'org.yaml': ORG }, extraYaml: `audit: { busy_timeout_ms: ${BUSY_MS} }`,
});
const tg = await startTestGateway({
  ...base,
  upstreams: { ...base.upstreams, 'api.github.com': gh.port },
  alphaRules: `${base.alphaRules}
  - { host: api.github.com, action: allow }`,
});
const dbFile = databasePath({ dataDir: path.join(tg.dir, 'data') });
const db = openDatabase(dbFile);
t.teardown(async () => {
  restorePostMessage();
  db.close();
  await tg.stop();
  await Promise.all([ant.close(), oai.close(), gh.close()]);
});

let token = '';
await tokenIssue({ dbFile, agent: 'store-bot', team: 'alpha', ttl: '1h', write: (s) => { token += s; } });
const dispatcher = new ProxyAgent({ uri: `http://alpha:${token.trim()}@127.0.0.1:${tg.proxyPort}`, requestTls: { ca: tg.caPem } });
t.teardown(() => dispatcher.close());

// the settleOpenReservations call made at start-up is an `ops` message; traffic would be another
for (let i = 0; i < 100 && writers.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
restorePostMessage();
const found = writers[0];
if (found === undefined) throw new Error('the audit writer thread was not found');
const writerThread: Worker = found;

let limitsId = 1_000_000_000; // far above the sink's own message ids, so it ignores the answers
/** The writer's `limits` message, as SqliteAuditSink.setStoreLimits sends it. */
function storeLimits(limits: { maxPageCount?: number | null; queryOnly?: boolean }): Promise<{ pageCount: number }> {
  const id = ++limitsId;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { writerThread.off('message', on); reject(new Error('the writer did not answer a limits message')); }, 5000);
    function on(m: FromWorker) {
      if (m.t !== 'done' || m.id !== id) return;
      clearTimeout(timer);
      writerThread.off('message', on);
      if (m.error !== undefined) reject(new Error(m.error));
      else resolve(m.value as { pageCount: number });
    }
    writerThread.on('message', on);
    writerThread.postMessage({ t: 'limits', id, ...limits } satisfies ToWorker);
  });
}

const HAIKU_COST = 100 * 1 + 1000 * 0.1 + 200 * 1.25 + 15 * 5; // µ$ (the fake's usage at $1 / $0.10 / $1.25 / $5 per MTok)
const MINI_COST = Math.ceil(90_000 * 0.15 + 10_000 * 0.075 + 20_000 * 0.6); // µ$ at $0.15 / $0.075 / $0.60 per MTok
const month = () => `month:${new Date().toISOString().slice(0, 7)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer { status: number; reason: string | undefined; requestId: string; text: string; ms: number }
async function send(url: string, init: { method?: 'GET' | 'POST'; body?: unknown } = {}): Promise<Answer> {
  const started = performance.now();
  const res = await request(url, {
    method: init.method ?? 'GET', dispatcher,
    ...(init.body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) }),
  });
  const text = await res.body.text();
  const header = (n: string) => { const v = res.headers[n]; return Array.isArray(v) ? v.join(',') : v; };
  return { status: res.statusCode, reason: header('x-tollgate-reason'), requestId: header('x-request-id') ?? '', text, ms: performance.now() - started };
}
const anthropicCall = () => send('https://api.anthropic.com/v1/messages', { method: 'POST', body: { model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] } });
const openaiCall = () => send('https://api.openai.com/v1/chat/completions', { method: 'POST', body: { model: 'gpt-4o-mini', max_completion_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] } });
const plainCall = (p = '/repos/acme/widgets') => send(`https://api.github.com${p}`);
const upstreamSeen = () => ({ ant: ant.seen.length, oai: oai.seen.length, gh: gh.seen.length });

interface LedgerRow { id: string; state: string; cost_micros: number | null; reserved_micros: number }
const ledgerRow = (id: string) => db.prepare<[string], LedgerRow>('SELECT id, state, cost_micros, reserved_micros FROM ledger_requests WHERE id = ?').get(id);
const openReservations = () => db.prepare<[], LedgerRow>("SELECT id, state, cost_micros, reserved_micros FROM ledger_requests WHERE state = 'reserved'").all();
const counter = (scope: string) =>
  db.prepare<[string, string], { spent_micros: number; reserved_micros: number }>('SELECT spent_micros, reserved_micros FROM budget_counters WHERE scope = ? AND window_key = ?').get(scope, month())
  ?? { spent_micros: 0, reserved_micros: 0 };
const ledgerIds = () => new Set(db.prepare<[], string>('SELECT id FROM ledger_requests').pluck(true).all());
/** Sends an admitted metered request; its id is that of the one ledger row it added (a 200 carries no X-Request-Id). */
async function admitted(call: () => Promise<Answer>): Promise<Answer & { id: string | undefined }> {
  const known = ledgerIds();
  const answer = await call();
  const added = [...ledgerIds()].filter((id) => !known.has(id));
  return { ...answer, id: added.length === 1 ? added[0] : undefined };
}
const auditRow = (id: string) => db.prepare<[string], { decision: string; status: number | null; reason: string | null; ended_at: number | null }>('SELECT decision, status, reason, ended_at FROM audit_requests WHERE request_id = ?').get(id);

async function until<T>(probe: () => T | Promise<T>, ok: (v: T) => boolean, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await sleep(20);
  }
}
async function readyz(): Promise<{ status: number; audit: { ok: boolean; detail: string } | undefined }> {
  const res = await request(`${tg.adminUrl}/readyz`);
  const body = (await res.body.json()) as { checks?: Array<{ name: string; ok: boolean; detail: string }> };
  return { status: res.statusCode, audit: body.checks?.find((c) => c.name === 'audit_store') };
}

/** During an outage: metered → 503 budget_unavailable (provider shape), non-metered → 503 audit_unavailable, nothing upstream. */
async function assertFailsClosed(t: Test, sqliteCode: RegExp, logError: RegExp): Promise<string[]> {
  const before = upstreamSeen();
  const a = await anthropicCall();
  t.equal(a.status, 503, 'Anthropic Messages: 503');
  t.equal(a.reason, 'budget_unavailable');
  t.match(JSON.parse(a.text), { type: 'error', error: { type: 'overloaded_error', message: /^Tollgate: .*spend store/ }, request_id: a.requestId, tollgate: { reason: 'budget_unavailable' } }, 'in Anthropic\'s error shape');
  const o = await openaiCall();
  t.equal(o.status, 503, 'OpenAI Chat Completions: 503');
  t.equal(o.reason, 'budget_unavailable');
  t.match(JSON.parse(o.text), { error: { type: 'server_error', code: 'budget_unavailable', message: /^Tollgate: .*spend store/ }, tollgate: { reason: 'budget_unavailable' } }, 'in OpenAI\'s error shape');
  const p = await plainCall();
  t.equal(p.status, 503, 'a non-metered request: 503 (7.01/7.02, fail closed by default)');
  t.equal(p.reason, 'audit_unavailable');
  t.match(p.text, /audit trail/);
  t.same(upstreamSeen(), before, 'nothing reached Anthropic, OpenAI or the non-metered host');
  t.ok(a.requestId !== '' && o.requestId !== '', 'the refusals carry their request ids');
  for (const id of [a.requestId, o.requestId]) {
    t.equal(ledgerRow(id), undefined, `no reservation stored for ${id}`);
    const logged = tg.logs.find((l) => l['msg'] === 'cannot reserve budget' && l['request_id'] === id);
    t.match(logged, { level: 'error', error: logError }, 'the reservation itself failed, with the store\'s error');
  }
  const r = await readyz();
  t.equal(r.status, 503, '/readyz: not ready');
  t.match(r.audit, { ok: false, detail: sqliteCode });
  return [a.requestId, o.requestId];
}

/** After a restore: admitted again, charged exactly once, the refused requests hold nothing, no reservation open. */
async function assertRecovered(t: Test, refused: readonly string[]): Promise<void> {
  const r = await until(readyz, (x) => x.status === 200);
  t.equal(r.status, 200, '/readyz: ready again, without a restart');
  const before = upstreamSeen();
  const spent = counter('agent:store-bot').spent_micros;
  const a = await admitted(anthropicCall);
  const o = await admitted(openaiCall);
  const p = await plainCall('/repos/acme/after');
  t.same([a.status, o.status, p.status], [200, 200, 200], 'metered and non-metered requests are admitted again');
  t.same(upstreamSeen(), { ant: before.ant + 1, oai: before.oai + 1, gh: before.gh + 1 }, 'each forwarded once');
  t.ok(a.id !== undefined && o.id !== undefined, 'each added one ledger row');
  const rows = await until(() => [ledgerRow(a.id ?? ''), ledgerRow(o.id ?? '')], (x) => x.every((row) => row?.state === 'settled'));
  t.match(rows, [{ state: 'settled', cost_micros: HAIKU_COST }, { state: 'settled', cost_micros: MINI_COST }], 'each settled at its usage');
  t.same(counter('agent:store-bot'), { spent_micros: spent + HAIKU_COST + MINI_COST, reserved_micros: 0 }, 'charged once: the spend grew by exactly the two charges, nothing held');
  t.same(openReservations(), [], 'no reservation left open');
  for (const id of refused) {
    t.equal(ledgerRow(id), undefined, `the refused ${id} holds and costs nothing`);
    const row = await until(() => auditRow(id), (x) => x?.ended_at != null);
    t.match(row, { decision: 'error', status: 503, reason: 'budget_unavailable' }, 'its refusal is in the audit trail once the store writes');
  }
}

t.test('baseline: metered requests are reserved, forwarded and settled', async (t) => {
  const a = await admitted(anthropicCall);
  t.equal(a.status, 200);
  t.ok(a.id !== undefined, 'one ledger row added');
  const row = await until(() => ledgerRow(a.id ?? ''), (x) => x?.state === 'settled');
  t.match(row, { state: 'settled', cost_micros: HAIKU_COST });
  t.same(counter('agent:store-bot'), { spent_micros: HAIKU_COST, reserved_micros: 0 });
});

t.test('(a) locked by another connection past the busy timeout: 503 budget_unavailable, nothing forwarded; then recovery', async (t) => {
  const other = openDatabase(dbFile);
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close(); });
  other.exec('BEGIN IMMEDIATE');
  let refused: string[] = [];
  try {
    const started = performance.now();
    refused = await assertFailsClosed(t, /SQLITE_BUSY/, /database is locked/);
    t.ok(performance.now() - started >= BUSY_MS * 0.75 * 3, 'each request waited about the busy timeout before failing closed');
    // The official SDK: one error, in Anthropic's shape; a 503 carries no x-should-retry: false, so
    // the SDK retries it as documented (maxRetries) — each attempt refused, none forwarded.
    const seen = ant.seen.length;
    const attemptsBefore = tg.exchanges().filter((e) => e['principal'] === 'agent:store-bot' && e['path'] === '/v1/messages').length;
    const client = new Anthropic({ apiKey: 'sk-ant-dummy', maxRetries: 1, fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher } as never });
    const err = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof Anthropic.APIError, 'the SDK raises an API error');
    t.equal((err as InstanceType<typeof Anthropic.APIError>).status, 503);
    t.match((err as InstanceType<typeof Anthropic.APIError>).error, { type: 'error', error: { type: 'overloaded_error' } });
    const attempts = await until(() => tg.exchanges().filter((e) => e['principal'] === 'agent:store-bot' && e['path'] === '/v1/messages').slice(attemptsBefore), (x) => x.length >= 2, 1000);
    t.equal(attempts.length, 2, 'the SDK made 1 + maxRetries attempts');
    t.ok(attempts.every((e) => e['reason'] === 'budget_unavailable' && e['status'] === 503), 'every attempt refused: budget_unavailable');
    t.equal(ant.seen.length, seen, 'none reached Anthropic');
  } finally {
    other.exec('COMMIT');
  }
  await assertRecovered(t, refused);
});

t.test('(b) read-only store: 503 budget_unavailable, nothing forwarded; then recovery', async (t) => {
  await storeLimits({ queryOnly: true });
  let refused: string[] = [];
  try {
    refused = await assertFailsClosed(t, /SQLITE_READONLY/, /readonly/);
  } finally {
    await storeLimits({ queryOnly: false });
  }
  await assertRecovered(t, refused);
});

t.test('(c) disk full (max_page_count): 503 budget_unavailable, nothing forwarded; then recovery without a restart', async (t) => {
  const { pageCount } = await storeLimits({ maxPageCount: 0 }); // cannot go below the current size: answers it
  await storeLimits({ maxPageCount: pageCount });
  let refused: string[] = [];
  try {
    // fill what is left with non-metered requests whose rows are large, until the store is full
    let filler: Answer | undefined;
    for (let i = 0; i < 300; i++) {
      filler = await plainCall(`/fill/${i}/${'x'.repeat(2000)}`);
      if (filler.status !== 200) break;
    }
    t.match(filler, { status: 503, reason: 'audit_unavailable' }, 'the store filled up: a non-metered request is refused');
    refused = await assertFailsClosed(t, /SQLITE_FULL/, /full/);
  } finally {
    await storeLimits({ maxPageCount: null });
  }
  await assertRecovered(t, refused);
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check: ok');
});

t.test('a request admitted before an outage whose response ends during it is settled once the store writes again', async (t) => {
  let release!: () => void;
  ctl.hold = new Promise<void>((r) => { release = r; });
  ctl.mode = 'delay';
  t.teardown(() => { release(); ctl.mode = 'normal'; delete ctl.hold; });
  const spent = counter('agent:store-bot').spent_micros;
  const seen = ant.seen.length;
  const known = ledgerIds();
  const answer = anthropicCall();
  await until(() => ant.seen.length, (n) => n > seen); // reserved and forwarded: the provider is generating
  t.equal(ant.seen.length, seen + 1, 'admitted');
  const [id = '', ...more] = [...ledgerIds()].filter((x) => !known.has(x));
  t.same(more, [], 'one reservation added');
  t.match(ledgerRow(id), { state: 'reserved' }, 'its reservation is held while the provider generates');
  const other = openDatabase(dbFile);
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close(); });
  other.exec('BEGIN IMMEDIATE');
  try {
    release();
    const a = await answer;
    t.equal(a.status, 200, 'the client got its answer');
    const down = await until(readyz, (x) => x.status === 503);
    t.equal(down.status, 503, 'the settlement (with the completion) met the locked store');
    await sleep(BUSY_MS);
  } finally {
    other.exec('COMMIT');
  }
  await until(readyz, (x) => x.status === 200);
  const row = await until(() => ledgerRow(id), (x) => x?.state !== 'reserved', 1200); // the writer retries every 500 ms
  t.match(row, { state: 'settled', cost_micros: HAIKU_COST }, 'settled at its usage');
  t.same(counter('agent:store-bot'), { spent_micros: spent + HAIKU_COST, reserved_micros: 0 }, 'charged once, nothing held');
});

t.test('at the end: the counters are what the committed rows add up to; the audit store verifies', async (t) => {
  const sum = db.prepare<[], { n: number; cost: number }>("SELECT count(*) AS n, coalesce(sum(cost_micros), 0) AS cost FROM ledger_requests WHERE subject = 'store-bot' AND state = 'settled'").get();
  t.equal(counter('agent:store-bot').spent_micros, sum?.cost, 'spent = the sum of the settled charges');
  t.equal(db.prepare<[], { n: number }>("SELECT count(*) AS n FROM ledger_requests WHERE state = 'released'").get()?.n, 0, 'no refused reservation was committed late and released');
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  t.match(verifyAuditStore(db), { ok: true });
});
