// Test-only: the ledger's consistency check — the budget counters a database stores against what
// its ledger_requests rows add up to (reserved rows count as reserved, settled rows as spent), and
// no counter negative.
import type { Database } from '../../src/store/database.ts';

/** Lines whose stored counters differ from what the ledger_requests rows add up to, and any negative counter. */
export function ledgerDrift(db: Database): string[] {
  const want = new Map<string, { spent: number; reserved: number }>();
  const rows = db.prepare('SELECT state, reserved_micros, cost_micros, lines FROM ledger_requests').all() as Array<{ state: string; reserved_micros: number; cost_micros: number; lines: string }>;
  for (const r of rows) {
    for (const [scope, windowKey] of JSON.parse(r.lines) as Array<[string, string]>) {
      const k = `${scope}|${windowKey}`;
      const w = want.get(k) ?? { spent: 0, reserved: 0 };
      if (r.state === 'reserved') w.reserved += r.reserved_micros;
      if (r.state === 'settled') w.spent += r.cost_micros;
      want.set(k, w);
    }
  }
  const out: string[] = [];
  const stored = db.prepare('SELECT scope, window_key, spent_micros, reserved_micros FROM budget_counters').all() as Array<{ scope: string; window_key: string; spent_micros: number; reserved_micros: number }>;
  for (const c of stored) {
    const k = `${c.scope}|${c.window_key}`;
    const w = want.get(k) ?? { spent: 0, reserved: 0 };
    want.delete(k);
    if (c.spent_micros < 0 || c.reserved_micros < 0) out.push(`${k}: negative ${c.spent_micros}/${c.reserved_micros}`);
    if (w.spent !== c.spent_micros || w.reserved !== c.reserved_micros) out.push(`${k}: stored ${c.spent_micros}/${c.reserved_micros}, rows ${w.spent}/${w.reserved}`);
  }
  for (const [k, w] of want) if (w.spent !== 0 || w.reserved !== 0) out.push(`${k}: not stored, rows ${w.spent}/${w.reserved}`);
  return out;
}
