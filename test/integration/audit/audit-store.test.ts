// The audit writer and reader on real SQLite files: group-committed batches chain across both
// tables, completions keep the chain intact, tampering through SQL is named by verify, orphans from
// a crash are completed, pruning keeps the chain verifiable, a second writer (CLI) never forks it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { appendAuditEvents, auditExport, auditPrune } from '../../../src/audit/audit-commands.ts';
import { buildAuditEvent } from '../../../src/audit/build-audit-row.ts';
import { createAuditWriter } from '../../../src/store/audit-writer.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { auditSummary, searchAuditRows, verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { row, T0 } from '../../unit/audit/fixtures.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-audit-store-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(dir, `t${++n}.db`);

t.test('open → complete keeps one row per request; the chain covers requests and events', async (t) => {
  const file = fresh();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const w = createAuditWriter(db);
  w.applyBatch([
    { op: 'open', id: 1, row: row({ request_id: 'a', ended_at: null, status: null }) },
    { op: 'open', id: 2, row: row({ request_id: 'b', ended_at: null, status: null }) },
    { op: 'complete', id: 3, row: row({ request_id: 'denied', decision: 'deny', status: 403, rule: 'p.yaml:9', reason: 'host_not_allowed' }) },
  ]);
  t.match(verifyAuditStore(db), { ok: true, openRows: 2 });
  w.applyBatch([
    { op: 'complete', id: 4, row: row({ request_id: 'b', status: 201, bytes_out: 9 }) },
    { op: 'event', id: 5, row: buildAuditEvent({ type: 'policy_reloaded', actor: 'gateway', detail: { generation: 2 } }, T0) },
    { op: 'complete', id: 6, row: row({ request_id: 'a', status: 200 }) },
    { op: 'complete', id: 7, row: row({ request_id: 'a', status: 999 }) },
  ]);
  const rows = searchAuditRows(db, { limit: 10 }).rows;
  t.equal(rows.length, 3, 'one row per request; a duplicate completion is ignored');
  t.same(rows.map((r) => [r.request_id, r.state, r.seq, r.status]).sort(), [['a', 'complete', 3, 200], ['b', 'complete', 2, 201], ['denied', 'complete', 1, 403]]);
  const v = verifyAuditStore(db);
  t.match(v, { ok: true, openRows: 0, chains: [{ chain: 'requests', checked: 3 }, { chain: 'events', checked: 1 }] });
});

t.test('verify names the first broken row after tampering through SQL', async (t) => {
  const file = fresh();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const w = createAuditWriter(db);
  w.applyBatch(Array.from({ length: 10 }, (_, i) => ({ op: 'complete' as const, id: i, row: row({ request_id: `r${i + 1}`, time: T0 + i }) })));
  t.ok(verifyAuditStore(db).ok);
  db.prepare("UPDATE audit_requests SET decision = 'deny', status = 403 WHERE request_id = 'r4'").run();
  let v = verifyAuditStore(db);
  t.equal(v.ok, false);
  t.match(v.chains[0]?.firstBroken, { seq: 4, label: 'request r4', problem: 'hash_mismatch' });
  db.prepare("UPDATE audit_requests SET decision = 'allow', status = 200 WHERE request_id = 'r4'").run();
  t.ok(verifyAuditStore(db).ok, 'restored');
  db.prepare("DELETE FROM audit_requests WHERE request_id = 'r7'").run();
  v = verifyAuditStore(db);
  t.match(v.chains[0]?.firstBroken, { seq: 8, problem: 'missing_records' });
});

t.test('orphans of a crash are completed and chained; the row says why', async (t) => {
  const file = fresh();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const w = createAuditWriter(db);
  w.applyBatch([{ op: 'open', id: 1, row: row({ request_id: 'inflight', ended_at: null, status: null, duration_ms: null }) }]);
  t.equal(w.closeOrphans(T0 + 500, 'gateway stopped'), 1);
  const [r] = searchAuditRows(db).rows;
  t.match(r, { request_id: 'inflight', state: 'complete', status: null, error: 'gateway stopped', duration_ms: 500, seq: 1 });
  t.ok(verifyAuditStore(db).ok);
  t.equal(w.closeOrphans(T0 + 600, 'x'), 0);
});

t.test('retention pruning deletes the chain prefix, anchors it, records an event, and still verifies', async (t) => {
  const file = fresh();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const w = createAuditWriter(db);
  const day = 86_400_000;
  w.applyBatch(Array.from({ length: 30 }, (_, i) => ({ op: 'complete' as const, id: i, row: row({ request_id: `d${i}`, time: T0 + i * day }) })));
  w.applyBatch([{ op: 'event', id: 99, row: buildAuditEvent({ type: 'token_issued', actor: 'cli:x' }, T0) }]);
  const r = w.prune(T0 + 10 * day, 4, T0 + 40 * day);
  t.match(r, { requests: 4, more: true });
  let total = r.requests;
  for (;;) {
    const x = w.prune(T0 + 10 * day, 4, T0 + 40 * day);
    total += x.requests;
    if (!x.more) break;
  }
  t.equal(total, 10, 'rows older than 10 days are gone');
  t.equal(searchAuditRows(db, { limit: 100 }).rows.length, 20);
  const v = verifyAuditStore(db);
  t.match(v, { ok: true, anchorMismatch: undefined, chains: [{ anchor: { seq: 10 }, checked: 20 }, { ok: true }] });
  db.prepare("UPDATE audit_chain SET anchor_seq = 12 WHERE chain = 'requests'").run();
  t.match(verifyAuditStore(db), { ok: false }, 'a moved anchor is caught');
});

t.test('a second writer (a CLI process) appends to the same chains without forking them', async (t) => {
  const file = fresh();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const w = createAuditWriter(db);
  for (let i = 0; i < 5; i++) {
    w.applyBatch([{ op: 'event', id: i, row: buildAuditEvent({ type: 'login', actor: `user:u${i}` }, T0 + i) }]);
    appendAuditEvents(file, [{ type: 'token_revoked', actor: 'cli:root', detail: { token_id: `tok_${i}` } }], T0 + i);
  }
  const v = verifyAuditStore(db);
  t.match(v, { ok: true, chains: [{}, { chain: 'events', checked: 10 }] });
  t.equal(auditPrune(file, 1, T0 + 10 * 86_400_000).events, 10);
  t.ok(verifyAuditStore(db).ok);
});

t.test('search filters, summary and export (one snapshot; CSV neutralises formulas)', async (t) => {
  const file = fresh();
  const db = openDatabase(file);
  t.teardown(() => db.close());
  createAuditWriter(db).applyBatch([
    { op: 'complete', id: 1, row: row({ request_id: 'u1', time: T0 }) },
    { op: 'complete', id: 2, row: row({ request_id: 'u2', time: T0 + 1, decision: 'deny', status: 403, host: 'evil.test', rule: 'policies/sre.yaml:9', reason: 'host_not_allowed' }) },
    { op: 'complete', id: 3, row: row({ request_id: 'a1', time: T0 + 2, principal_kind: 'agent', subject: 'bot', agent: 'bot', team: 'ops', status: 502, error: '=cmd|x', path: '/a,b' }) },
  ]);
  t.same(searchAuditRows(db, { decision: 'deny' }).rows.map((r) => r.request_id), ['u2']);
  t.same(searchAuditRows(db, { status: '5xx' }).rows.map((r) => r.request_id), ['a1']);
  t.same(searchAuditRows(db, { user: 'ann@acme.example' }).rows.map((r) => r.request_id), ['u2', 'u1']);
  t.same(searchAuditRows(db, { agent: 'bot', team: 'ops' }).rows.map((r) => r.request_id), ['a1']);
  t.same(searchAuditRows(db, { since: T0 + 1, until: T0 + 2 }).rows.map((r) => r.request_id), ['u2']);
  const p1 = searchAuditRows(db, { limit: 2 });
  t.ok(p1.nextCursor);
  t.same(searchAuditRows(db, { limit: 2, cursor: p1.nextCursor! }).rows.map((r) => r.request_id), ['u1'], 'cursor pagination');
  const s = auditSummary(db, { since: T0 });
  t.match(s, { requests: 3, errors: { errors: 1 }, users: [{ subject: 'ann@acme.example', requests: 2, denied: 1 }], agents: [{ agent: 'bot', requests: 1 }] });
  t.match(s.denials, [{ rule: 'policies/sre.yaml:9', reason: 'host_not_allowed', host: 'evil.test', requests: 1 }]);
  let csv = '';
  t.equal(auditExport({ dbFile: file, format: 'csv', write: (x) => { csv += x; } }), 3);
  t.match(csv, /^request_id,time,ended_at,/);
  t.match(csv, /'=cmd\|x/);
  t.match(csv, /"\/a,b"/);
  let jsonl = '';
  auditExport({ dbFile: file, format: 'jsonl', since: T0 + 1, write: (x) => { jsonl += x; } });
  const lines = jsonl.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(lines.map((l) => l['request_id']), ['u2', 'a1']);
  t.match(lines[0], { record: 'request', time: new Date(T0 + 1).toISOString(), seq: 2 });
});
