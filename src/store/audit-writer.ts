// Owns: writing audit records to tollgate.db — the open/complete/event operations applied in one
// BEGIN IMMEDIATE transaction per batch (group commit), chaining each record onto the head stored
// in `audit_chain` inside that same transaction (so several writers — the gateway's writer thread,
// a CLI process — never fork the chain), closing rows orphaned by a crash, and retention pruning
// that moves the chain's anchor. Synchronous; used by the writer thread and by CLI verbs.
import { AUDIT_EVENT_COLUMNS, AUDIT_REQUEST_COLUMNS, type AuditChainName, type AuditEventRow, type AuditRequestRow } from '../audit/audit-record.ts';
import { buildAuditEvent } from '../audit/build-audit-row.ts';
import { nextLink, type ChainHead } from '../audit/hash-chain.ts';
import type { Database } from './database.ts';

export type AuditOp =
  | { op: 'open'; id: number; row: AuditRequestRow }
  | { op: 'complete'; id: number; row: AuditRequestRow }
  | { op: 'event'; id: number; row: AuditEventRow };

export interface AuditBatchResult {
  /** Records written (an `open` whose request id already exists counts as written: idempotent). */
  written: number;
  /** `complete` ops whose request id was already complete (a duplicate; ignored). */
  duplicates: number;
}

export interface PruneResult {
  requests: number;
  events: number;
  /** More rows are older than the cutoff (the chunk limit stopped this call). */
  more: boolean;
}

export interface AuditWriter {
  /** Applies the ops in order in one transaction. Throws (nothing applied) when the store cannot write. */
  applyBatch(ops: readonly AuditOp[]): AuditBatchResult;
  /** Completes every `open` row (a crash left them): status stays null, `error` says why. Returns how many. */
  closeOrphans(now: number, error: string): number;
  /** Deletes the chain prefix of records older than `cutoff` (at most `maxRows` per chain), moving the anchor. */
  prune(cutoff: number, maxRows: number, now: number, actor?: string): PruneResult;
}

const REQ_COLS = AUDIT_REQUEST_COLUMNS.join(', ');
// Positional parameters: binding is markedly cheaper than by name for a row this wide.
const REQ_PARAMS = AUDIT_REQUEST_COLUMNS.map(() => '?').join(', ');
const REQ_SET_COLUMNS = AUDIT_REQUEST_COLUMNS.filter((c) => c !== 'request_id');
const REQ_SET = REQ_SET_COLUMNS.map((c) => `${c} = ?`).join(', ');
const EV_COLS = AUDIT_EVENT_COLUMNS.join(', ');
const EV_PARAMS = AUDIT_EVENT_COLUMNS.map(() => '?').join(', ');

const requestValues = (r: AuditRequestRow): unknown[] => AUDIT_REQUEST_COLUMNS.map((c) => r[c] ?? null);

interface ChainRow { anchor_seq: number; anchor_hash: string; head_seq: number; head_hash: string }

export function createAuditWriter(db: Database): AuditWriter {
  const readChain = db.prepare<[string], ChainRow>('SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_chain WHERE chain = ?');
  const setHead = db.prepare<[number, string, string]>('UPDATE audit_chain SET head_seq = ?, head_hash = ? WHERE chain = ?');
  const setAnchor = db.prepare<[number, string, string]>('UPDATE audit_chain SET anchor_seq = ?, anchor_hash = ? WHERE chain = ?');
  const insertOpen = db.prepare(`INSERT INTO audit_requests (state, seq, hash, ${REQ_COLS}) VALUES ('open', NULL, NULL, ${REQ_PARAMS}) ON CONFLICT (request_id) DO NOTHING`);
  const completeOpen = db.prepare(`UPDATE audit_requests SET state = 'complete', seq = ?, hash = ?, ${REQ_SET} WHERE request_id = ? AND state = 'open'`);
  const insertComplete = db.prepare(`INSERT INTO audit_requests (state, seq, hash, ${REQ_COLS}) VALUES ('complete', ?, ?, ${REQ_PARAMS}) ON CONFLICT (request_id) DO NOTHING`);
  const insertEvent = db.prepare(`INSERT INTO audit_events (seq, hash, ${EV_COLS}) VALUES (?, ?, ${EV_PARAMS})`);
  const openRows = db.prepare<[], AuditRequestRow>(`SELECT ${REQ_COLS} FROM audit_requests WHERE state = 'open' ORDER BY id`);
  const prefix = (table: string) => db.prepare<[number, number], { seq: number; hash: string; time: number }>(
    `SELECT seq, hash, time FROM ${table} WHERE seq > ? ORDER BY seq LIMIT ?`,
  );
  const prefixRequests = prefix('audit_requests');
  const prefixEvents = prefix('audit_events');
  const deleteRequests = db.prepare<[number]>('DELETE FROM audit_requests WHERE seq IS NOT NULL AND seq <= ?');
  const deleteEvents = db.prepare<[number]>('DELETE FROM audit_events WHERE seq <= ?');

  const head = (chain: AuditChainName): ChainHead => {
    const r = readChain.get(chain);
    if (!r) throw new Error(`audit_chain has no ${chain} row (migration 2 missing?)`);
    return { seq: r.head_seq, hash: r.head_hash };
  };

  const apply = (ops: readonly AuditOp[]): AuditBatchResult => {
    let reqHead = head('requests');
    let evHead = head('events');
    const reqStart = reqHead.seq;
    const evStart = evHead.seq;
    let written = 0;
    let duplicates = 0;
    for (const o of ops) {
      if (o.op === 'open') {
        insertOpen.run(requestValues(o.row));
        written++;
      } else if (o.op === 'complete') {
        const link = nextLink('requests', reqHead, o.row);
        const updated = completeOpen.run(link.seq, link.hash, ...REQ_SET_COLUMNS.map((c) => o.row[c] ?? null), o.row.request_id).changes > 0;
        if (!updated && insertComplete.run(link.seq, link.hash, ...requestValues(o.row)).changes === 0) {
          duplicates++;
          continue;
        }
        reqHead = link;
        written++;
      } else {
        const link = nextLink('events', evHead, o.row);
        insertEvent.run(link.seq, link.hash, ...AUDIT_EVENT_COLUMNS.map((c) => o.row[c]));
        evHead = link;
        written++;
      }
    }
    if (reqHead.seq !== reqStart) setHead.run(reqHead.seq, reqHead.hash, 'requests');
    if (evHead.seq !== evStart) setHead.run(evHead.seq, evHead.hash, 'events');
    return { written, duplicates };
  };
  const applyTx = db.transaction(apply);

  const pruneChain = (chain: AuditChainName, cutoff: number, maxRows: number): { rows: number; more: boolean; anchor: ChainHead } => {
    const c = readChain.get(chain);
    if (!c) throw new Error(`audit_chain has no ${chain} row`);
    const rows = (chain === 'requests' ? prefixRequests : prefixEvents).all(c.anchor_seq, maxRows + 1);
    let last: ChainHead | undefined;
    let n = 0;
    for (const r of rows) {
      if (r.time >= cutoff || n === maxRows) break;
      last = { seq: r.seq, hash: r.hash };
      n++;
    }
    const more = n === maxRows && rows.length > maxRows && (rows[maxRows]?.time ?? Infinity) < cutoff;
    if (!last) return { rows: 0, more: false, anchor: { seq: c.anchor_seq, hash: c.anchor_hash } };
    (chain === 'requests' ? deleteRequests : deleteEvents).run(last.seq);
    setAnchor.run(last.seq, last.hash, chain);
    return { rows: n, more, anchor: last };
  };

  return {
    applyBatch(ops) {
      if (ops.length === 0) return { written: 0, duplicates: 0 };
      return applyTx.immediate(ops);
    },
    closeOrphans(now, error) {
      return db.transaction(() => {
        const orphans = openRows.all();
        if (orphans.length === 0) return 0;
        apply(orphans.map((row, i) => ({
          op: 'complete' as const, id: i,
          row: { ...row, ended_at: now, duration_ms: Math.max(0, now - row.time), error },
        })));
        return orphans.length;
      }).immediate();
    },
    prune(cutoff, maxRows, now, actor = 'gateway') {
      return db.transaction((): PruneResult => {
        const req = pruneChain('requests', cutoff, maxRows);
        const ev = pruneChain('events', cutoff, maxRows);
        if (req.rows > 0 || ev.rows > 0) {
          apply([{
            op: 'event', id: 0,
            row: buildAuditEvent({
              type: 'audit_pruned', actor,
              detail: {
                cutoff: new Date(cutoff).toISOString(),
                requests: { rows: req.rows, anchor_seq: req.anchor.seq, anchor_hash: req.anchor.hash },
                events: { rows: ev.rows, anchor_seq: ev.anchor.seq, anchor_hash: ev.anchor.hash },
              },
            }, now),
          }]);
        }
        return { requests: req.rows, events: ev.rows, more: req.more || ev.more };
      }).immediate();
    },
  };
}
