// Retention pruning on the writer thread yields between chunks: a decision committed while a large
// prune runs is acknowledged before the prune ends (it used to wait for every chunk, so a retention
// backlog timed out every decision), and the prune still removes everything older than its cutoff
// with the chain verifying afterwards.
import t from 'tap';
import { createSqliteAuditSink } from '../../../src/audit/sqlite-audit-sink.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { createAuditWriter } from '../../../src/store/audit-writer.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { tempDb } from '../../helpers/temp-db.ts';
import { row, T0 } from '../../unit/audit/fixtures.ts';

t.test('a decision is acknowledged while a large prune is still running', async (t) => {
  const { file, db } = tempDb(t, 'tollgate-prune-');
  const w = createAuditWriter(db);
  const OLD = 20_000;
  for (let b = 0; b < OLD; b += 1000) {
    w.applyBatch(Array.from({ length: 1000 }, (_, i) => ({ op: 'complete' as const, id: b + i, row: row({ request_id: `old-${b + i}`, time: T0 + b + i }) })));
  }
  const sink = createSqliteAuditSink({ file, logger: createLogger({ level: 'error', write: () => undefined }), pruneChunkRows: 200 });
  t.teardown(() => sink.close());
  await sink.ready;
  const order: string[] = [];
  const pruned = sink.prune(T0 + OLD + 1).then((r) => { order.push('prune'); return r; });
  await new Promise((r) => setTimeout(r, 5)); // the prune has started on the writer thread
  const decided = sink.commitDecision(row({ request_id: 'new', time: Date.now(), status: null, ended_at: null })).then(() => { order.push('decision'); });
  const [r] = await Promise.all([pruned, decided]);
  t.same(order, ['decision', 'prune'], 'the decision did not wait for the whole prune');
  t.equal(r.requests, OLD, 'every old row pruned');
  await sink.flush();
  const left = db.prepare("SELECT request_id FROM audit_requests").all() as Array<{ request_id: string }>;
  t.same(left.map((x) => x.request_id), ['new']);
  t.match(verifyAuditStore(db), { ok: true }, 'the chain verifies');
});
