// Security case 7.03 (../shared/security-cases.md), with metering: several rounds of kill -9 under
// a mixed load — plain requests to an echo origin and metered Anthropic calls (JSON and SSE, some
// held by the provider so that they are in flight when the gateway dies) — each round followed by a
// restart on the same tollgate.db. At the end: integrity_check is ok, both chains verify with no
// open row, every request an upstream saw and every response a client received has its audit row,
// and every metered call that reached the provider is charged (docs/metering.md "Crash safety"):
// settled with its usage, or — its reservation left open by the kill — charged the reservation in
// full, flagged estimated, by the next start; the budget counters add up to the ledger rows.
//
// Each metered call names its own model, a dated snapshot of the one priced model
// (claude-haiku-4-5-2RNNNNNN resolves to claude-haiku-4-5), so the provider's log, the ledger row
// (whose id is the audit row's request_id) and the client's log can be joined.
//
// The gateway runs as a child process (SIGKILL must hit the gateway itself) started like bin/tollgate
// (tsx register, then src/cli/main.ts `serve`), except that the next one is loaded ahead and parked
// until it is told to start: loading the sources costs seconds, starting the gateway does not.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ProxyAgent, request } from 'undici';
import { openDatabase } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { sleep, until } from '../../helpers/cli-process.ts';
import { fakeAnthropic, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { loadParkedGateway, prepareGatewayDir, startParked, type ParkedGateway } from '../../helpers/parked-gateway.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const ROUNDS = 2;
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-crash-metered-'));

// --- upstreams -----------------------------------------------------------------------------------
const echo = await startUpstream();
const ctl: FakeLlmControl = { mode: 'normal', sent: 0, finished: 0 };
const pki = await makeTestCa();
const anthropic = fakeAnthropic(ctl);
/** Models whose call the provider holds for 1.5 s before answering: in flight when the kill comes. */
const held = new Set<string>();
let providerBusy = 0;
const ant = await startUpstream({
  tls: await pki.issue(['api.anthropic.com']),
  handler: async (req, res, body) => {
    providerBusy++;
    try {
      const model = (JSON.parse(body.toString('utf8')) as { model?: string }).model ?? '';
      if (held.has(model)) await sleep(1500);
      if (!res.destroyed) await anthropic(req, res, body);
    } finally {
      providerBusy--;
    }
  },
});
t.teardown(async () => {
  await Promise.all([echo.close(), ant.close()]);
  rmSync(dir, { recursive: true, force: true });
});

// --- the gateway's directory ---------------------------------------------------------------------
const files: Record<string, string> = {
  'org.yaml': 'organization: T\nteams:\n  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }\nagents:\n  alpha-bot: { name: Bot, team: alpha }\n',
  'policies/alpha.yaml': [
    'team: alpha',
    'rules:',
    '  - { host: echo.allowed.test, action: allow }',
    '  - { host: api.anthropic.com, action: allow }',
    '  - { host: "*", action: deny }',
    'credentials:',
    '  - { host: api.anthropic.com, header: { name: x-api-key, secret: anthropic-key } }',
    '',
  ].join('\n'),
  'secrets/anthropic-key': 'CANARY_ANT_crash\n',
  'upstream-ca.pem': pki.caPem,
  // a price table of its own (the bundled one is not this test's business)
  'prices.yaml': 'as_of: "2026-01-01"\nsources: [test]\nproviders:\n  anthropic:\n    models:\n      claude-haiku-4-5: { input: 1, cache_write: 1.25, cache_read: 0.1, output: 5, max_output_tokens: 64000 }\n',
  'tollgate.yaml': [
    'listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }',
    'data_dir: ./data',
    'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
    `upstreams:\n  echo.allowed.test: 127.0.0.1:${echo.port}\n  api.anthropic.com: 127.0.0.1:${ant.port}`,
    'tls: { upstream_ca: [./upstream-ca.pem] }',
    'log: { level: info }',
    '',
  ].join('\n'),
};
const { config, dbFile, token, auth } = await prepareGatewayDir(dir, files);

// --- gateway processes ---------------------------------------------------------------------------
const gateways: ParkedGateway[] = [];
t.teardown(() => { for (const g of gateways) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL'); });
const next = () => { const g = loadParkedGateway(config); gateways.push(g); return g; };
const go = startParked;

// --- clients -------------------------------------------------------------------------------------
/** Echo paths whose 200 response reached the client. */
const echoReceived = new Set<string>();
/** Metered calls whose complete 200 response (usage included) reached the client, by model. */
const meteredReceived = new Set<string>();
let seq = 0;

function echoGet(port: number, agent: http.Agent, p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent, path: `http://echo.allowed.test${p}`, headers: { 'proxy-authorization': auth, host: 'echo.allowed.test' } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

async function meteredCall(dispatcher: ProxyAgent, model: string, stream: boolean): Promise<boolean> {
  const res = await request('https://api.anthropic.com/v1/messages', {
    dispatcher, method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model, max_tokens: 1000, stream, messages: [{ role: 'user', content: 'Say hello' }] }),
  });
  const text = await res.body.text();
  return res.statusCode === 200 && (stream ? text.includes('message_stop') : text.includes('"output_tokens":15'));
}

/** One round: start the parked gateway, load it, kill -9 it while metered calls are in flight. */
async function round(t: Test, r: number, g: ParkedGateway, caPem: () => string): Promise<void> {
  const began = Date.now();
  const port = await go(g);
  const listening = Date.now();
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const dispatcher = new ProxyAgent({ uri: `http://alpha:${token}@127.0.0.1:${port}`, requestTls: { ca: caPem() } });
  let stop = false;
  let i = 0;
  const plainWorker = async () => {
    for (let n = 0; n < 2000 && !stop; n++) {
      const p = `/r${r}/${i++}`;
      try {
        if ((await echoGet(port, httpAgent, p)) === 200) echoReceived.add(p);
      } catch {
        // the gateway died mid-request
      }
    }
  };
  const meteredWorker = async (w: number) => {
    for (let n = 0; n < 500 && !stop; n++) {
      const model = `claude-haiku-4-5-2${r}${String(++seq).padStart(6, '0')}`;
      if (n % 3 === w % 3) held.add(model); // every third call is still at the provider when the kill comes
      try {
        if (await meteredCall(dispatcher, model, n % 2 === 1)) meteredReceived.add(model);
      } catch {
        // the gateway died mid-call
      }
    }
  };
  const workers = [...Array.from({ length: 3 }, plainWorker), ...Array.from({ length: 3 }, (_, w) => meteredWorker(w))];
  // kill once calls were answered and at least one held call is at the provider
  const answered = meteredReceived.size;
  await until(`round ${r}: load established`, () => meteredReceived.size > answered && providerBusy > 0, 10_000);
  await sleep(100 + Math.random() * 400);
  g.child.kill('SIGKILL');
  const exit = await g.exited;
  stop = true;
  await Promise.all(workers);
  httpAgent.destroy();
  await dispatcher.destroy();
  t.equal(exit.signal, 'SIGKILL', `round ${r}: the gateway was killed (-9)`);
  t.comment(`round ${r}: started in ${listening - began} ms, killed after ${Date.now() - listening} ms`);
}

// --- the rounds ----------------------------------------------------------------------------------
interface LedgerRow { id: string; state: string; model: string; reserved_micros: number; cost_micros: number; estimated: number; input_tokens: number; lines: string }
const HAIKU_COST = 100 * 1 + 1000 * 0.1 + 200 * 1.25 + 15 * 5; // µ$: the fake's usage at $1 / $0.10 / $1.25 / $5 per MTok
const starts: ParkedGateway[] = [];

t.test(`${ROUNDS} rounds of kill -9 under plain and metered load, then a clean restart`, async (t) => {
  // one process per round and one for the final restart, loaded ahead (two at first: a round is
  // shorter than a load)
  const t0 = Date.now();
  const ahead = [next(), next()];
  let caPem = '';
  const readCa = () => (caPem ||= readFileSync(path.join(dir, 'certs/ca.pem'), 'utf8'));
  for (let r = 0; r < ROUNDS; r++) {
    const g = ahead.shift()!;
    await g.warm;
    if (r === 0) t.comment(`first process loaded in ${Date.now() - t0} ms`);
    if (gateways.length < ROUNDS + 1) ahead.push(next()); // loads while this round runs
    starts.push(g);
    await round(t, r, g, readCa);
  }
  // The final start completes what the last kill left open; then a graceful stop.
  const last = ahead.shift()!;
  starts.push(last);
  await go(last);
  const db = openDatabase(dbFile);
  const open = () => (db.prepare("SELECT count(*) AS n FROM ledger_requests WHERE state = 'reserved'").get() as { n: number }).n;
  const settled = await until('reservations left open to be settled', () => open() === 0, 5000).then(() => true, () => false);
  t.ok(settled, `the start settles the reservations the last kill left open (${open()} still open)`);
  db.close();
  last.child.kill('SIGTERM');
  const exit = await last.exited;
  t.match(exit, { code: 0, signal: null }, 'the last gateway stops cleanly');
  t.ok(echo.seen.length > 0 && ant.seen.length > 0, `traffic reached both upstreams (${echo.seen.length} plain, ${ant.seen.length} metered)`);
});

t.test('the store after the kills: consistent, verified, no open row', async (t) => {
  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check');
  t.match(verifyAuditStore(db), { ok: true, openRows: 0 }, 'both chains verify; no row is left open');
  t.equal((db.prepare("SELECT count(*) AS n FROM ledger_requests WHERE state = 'reserved'").get() as { n: number }).n, 0, 'no reservation is left open');
  const orphanRows = starts.flatMap((g) => g.logs.filter((l) => l['msg'] === 'audit rows left open by the last run were completed (crash or kill)'));
  const completedAtStart = (db.prepare("SELECT count(*) AS n FROM audit_requests WHERE error LIKE 'gateway stopped before the exchange ended%'").get() as { n: number }).n;
  t.equal(orphanRows.reduce((n, l) => n + Number(l['rows']), 0), completedAtStart, `the starts report the ${completedAtStart} rows they completed`);
  t.ok(completedAtStart >= ROUNDS, `each kill left rows open (${completedAtStart} completed at a start)`);
});

t.test('every plain request the upstream saw, and every response received, has its audit row', async (t) => {
  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  const paths = new Set((db.prepare("SELECT path FROM audit_requests WHERE host = 'echo.allowed.test'").all() as Array<{ path: string }>).map((r) => r.path));
  t.same(echo.seen.map((s) => s.url).filter((u) => !paths.has(u)), [], `all ${echo.seen.length} requests the upstream saw`);
  t.same([...echoReceived].filter((p) => !paths.has(p)), [], `all ${echoReceived.size} responses the client received`);
});

t.test('every metered call that reached the provider is charged, and has its audit row', async (t) => {
  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  const ledger = db.prepare<[], LedgerRow>('SELECT id, state, model, reserved_micros, cost_micros, estimated, input_tokens, lines FROM ledger_requests').all();
  const byModel = new Map<string, LedgerRow>();
  for (const row of ledger) byModel.set(row.model.replace(/-20251001$/, ''), row);
  const audit = new Map((db.prepare("SELECT request_id, state, decision, path FROM audit_requests WHERE host = 'api.anthropic.com'").all() as Array<{ request_id: string; state: string; decision: string; path: string }>).map((r) => [r.request_id, r]));

  // what reached the provider: a complete request (its handler ran)
  const reached = ant.seen.filter((s) => s.complete).map((s) => (JSON.parse(s.body.toString('utf8')) as { model: string }).model);
  t.ok(reached.length >= ROUNDS * 2, `${reached.length} metered calls reached the provider`);
  const problems: string[] = [];
  let exact = 0;
  let atStart = 0;
  for (const model of reached) {
    const row = byModel.get(model);
    if (!row) { problems.push(`${model}: no ledger row`); continue; }
    if (row.state !== 'settled') problems.push(`${model}: ledger ${row.state}`);
    if (!(row.cost_micros > 0)) problems.push(`${model}: charged ${row.cost_micros}`);
    const a = audit.get(row.id);
    if (!a) problems.push(`${model}: no audit row for request ${row.id}`);
    else if (a.state !== 'complete' || a.decision !== 'allow' || a.path !== '/v1/messages') problems.push(`${model}: audit row ${JSON.stringify(a)}`);
    if (row.estimated === 0 && row.cost_micros === HAIKU_COST) exact++;
    else if (row.estimated === 1 && row.cost_micros === row.reserved_micros && row.input_tokens === 0) atStart++;
    else problems.push(`${model}: neither its usage nor its reservation: ${JSON.stringify(row)}`);
  }
  t.same(problems, [], 'each is settled: its usage, or its whole reservation after a kill');
  t.comment(`${reached.length} reached the provider: ${exact} charged their usage, ${atStart} their reservation at the next start`);
  t.ok(atStart >= 1, 'kills left reservations open, charged in full at the next start');
  const reported = starts.flatMap((g) => g.logs.filter((l) => l['msg'] === 'charged reservations left open by a previous run')).reduce((n, l) => n + Number(l['count']), 0);
  const settledAtStart = ledger.filter((r) => r.estimated === 1 && r.cost_micros === r.reserved_micros && r.input_tokens === 0).length;
  t.equal(reported, settledAtStart, `the starts report the ${settledAtStart} reservations they charged`);

  // what the client received in full was charged: its usage, or (killed between the response's
  // end and the settlement's commit) its reservation
  const unpaid = [...meteredReceived].filter((m) => byModel.get(m)?.state !== 'settled');
  t.same(unpaid, [], `all ${meteredReceived.size} calls answered to the client are charged`);
  t.ok(meteredReceived.size >= ROUNDS, `${meteredReceived.size} calls were answered in full`);

  // A reservation the kill left open is charged even when the call never reached the provider
  // (killed before or while forwarding): the documented, conservative side.
  const reachedSet = new Set(reached);
  t.comment(`${ledger.filter((r) => r.state === 'settled' && !reachedSet.has(r.model.replace(/-20251001$/, ''))).length} charged calls never reached the provider in full`);

  // the counters add up to the rows
  const want = new Map<string, number>();
  for (const row of ledger) {
    for (const [scope, win] of JSON.parse(row.lines) as Array<[string, string]>) want.set(`${scope} ${win}`, (want.get(`${scope} ${win}`) ?? 0) + row.cost_micros);
  }
  const counters = db.prepare('SELECT scope, window_key, spent_micros, reserved_micros FROM budget_counters').all() as Array<{ scope: string; window_key: string; spent_micros: number; reserved_micros: number }>;
  const got = new Map(counters.map((c) => [`${c.scope} ${c.window_key}`, c.spent_micros]));
  t.same(Object.fromEntries(got), Object.fromEntries(want), 'every budget line spent exactly what its ledger rows cost');
  t.same(counters.filter((c) => c.reserved_micros !== 0), [], 'nothing is left reserved on any line');
});
