// BENCH ONLY — stands in for src/store/audit-writer.ts in a gateway started with
// bench/lib/no-sql-audit-register.cjs: batches of records are taken and reported written without a
// statement run (no insert, no chain hash, no commit of audit rows); everything else — start-up,
// orphan closing, pruning, the spend ledger — is the real module. Never loaded by Tollgate itself.
import { createAuditWriter as createRealAuditWriter, type AuditWriter } from '../../src/store/audit-writer.ts';
import type { Database } from '../../src/store/database.ts';

export * from '../../src/store/audit-writer.ts';

export function createAuditWriter(db: Database): AuditWriter {
  const real = createRealAuditWriter(db);
  return {
    ...real,
    applyBatch: (ops) => ({ written: ops.length, duplicates: 0 }),
    applyPacked: (ops) => ({ written: ops.length, duplicates: 0 }),
  };
}
