// Owns: writing audit records to tollgate.db — the open/complete/event operations applied in one
// BEGIN IMMEDIATE transaction per batch (group commit), chaining each record onto the head stored
// in `audit_chain` inside that same transaction (so several writers — the gateway's writer thread,
// a CLI process — never fork the chain), closing rows orphaned by a crash, and retention pruning
// that moves the chain's anchor. Synchronous; used by the writer thread and by CLI verbs.
import { AUDIT_EVENT_COLUMNS, AUDIT_REQUEST_COLUMNS, type AuditChainName, type AuditEventRow, type AuditRequestRow } from '../audit/audit-record.ts';
import { buildAuditEvent } from '../audit/build-audit-row.ts';
import { nextLinkValues, type ChainHead } from '../audit/hash-chain.ts';
import { immediateTransaction } from './busy-retry.ts';
import { inImmediateTransaction, type Database } from './database.ts';

export type AuditOp =
  | { op: 'open'; id: number; row: AuditRequestRow }
  | { op: 'complete'; id: number; row: AuditRequestRow }
  | { op: 'event'; id: number; row: AuditEventRow };

/** Op kinds of the compact form. */
export const OP_OPEN = 0;
export const OP_COMPLETE = 1;
export const OP_EVENT = 2;
export type OpKind = typeof OP_OPEN | typeof OP_COMPLETE | typeof OP_EVENT;

/**
 * An op in the writer's compact form: the row as its column values in AUDIT_REQUEST_COLUMNS (open,
 * complete) or AUDIT_EVENT_COLUMNS (event) order, undefined turned into null. This is what crosses
 * to the writer thread (arrays of primitives clone several times faster than objects) and what is
 * bound to the statements and hashed.
 */
export interface PackedOp { k: OpKind; id: number; v: unknown[] }

/** Many ops in one message: kinds, ids and every op's values one after the other. */
export interface PackedBatch { k: number[]; id: number[]; v: unknown[] }

/**
 * Ledger calls (method names of src/ledger/ledger.ts) no request waits on — settlements, releases,
 * threshold marks: the sink sends them like completions, and the writer answers them with its next
 * result (or within its counters interval).
 */
export const LATE_LEDGER_METHODS: ReadonlySet<string> = new Set(['settle', 'release', 'markThreshold']);

export const REQUEST_WIDTH = AUDIT_REQUEST_COLUMNS.length;
export const EVENT_WIDTH = AUDIT_EVENT_COLUMNS.length;

export function requestValues(r: AuditRequestRow): unknown[] {
  const out = new Array<unknown>(REQUEST_WIDTH);
  for (let i = 0; i < REQUEST_WIDTH; i++) out[i] = r[AUDIT_REQUEST_COLUMNS[i] as keyof AuditRequestRow] ?? null;
  return out;
}

export function eventValues(r: AuditEventRow): unknown[] {
  return [r.time ?? null, r.type ?? null, r.actor ?? null, r.detail ?? null];
}

export function packOp(o: AuditOp): PackedOp {
  if (o.op === 'event') return { k: OP_EVENT, id: o.id, v: eventValues(o.row) };
  return { k: o.op === 'open' ? OP_OPEN : OP_COMPLETE, id: o.id, v: requestValues(o.row) };
}

/** Appends one op to a batch (no intermediate array). */
export function appendPacked(b: PackedBatch, o: AuditOp): void {
  b.id.push(o.id);
  if (o.op === 'event') {
    b.k.push(OP_EVENT);
    b.v.push(o.row.time ?? null, o.row.type ?? null, o.row.actor ?? null, o.row.detail ?? null);
    return;
  }
  b.k.push(o.op === 'open' ? OP_OPEN : OP_COMPLETE);
  const r = o.row;
  for (let i = 0; i < REQUEST_WIDTH; i++) b.v.push(r[AUDIT_REQUEST_COLUMNS[i] as keyof AuditRequestRow] ?? null);
}

export function unpackBatch(b: PackedBatch): PackedOp[] {
  const out: PackedOp[] = new Array(b.k.length);
  let at = 0;
  for (let i = 0; i < b.k.length; i++) {
    const k = b.k[i] as OpKind;
    const w = k === OP_EVENT ? EVENT_WIDTH : REQUEST_WIDTH;
    out[i] = { k, id: b.id[i] as number, v: b.v.slice(at, at + w) };
    at += w;
  }
  if (at !== b.v.length) throw new TypeError(`audit batch holds ${b.v.length} values, its ops need ${at}`);
  return out;
}

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
  /** The same for ops in compact form (the writer thread's path). */
  applyPacked(ops: readonly PackedOp[]): AuditBatchResult;
  /** Completes every `open` row (a crash left them): status stays null, `error` says why. Returns how many. */
  closeOrphans(now: number, error: string): number;
  /** Deletes the chain prefix of records older than `cutoff` (at most `maxRows` per chain), moving the anchor. */
  prune(cutoff: number, maxRows: number, now: number, actor?: string): PruneResult;
}

// Positional parameters throughout: binding is markedly cheaper than by name for a row this wide.
const REQ_COLS = AUDIT_REQUEST_COLUMNS.join(', ');
const REQ_PARAMS = AUDIT_REQUEST_COLUMNS.map(() => '?').join(', ');
const col = (c: (typeof AUDIT_REQUEST_COLUMNS)[number]) => AUDIT_REQUEST_COLUMNS.indexOf(c);
const I_REQUEST_ID = col('request_id');
const I_TIME = col('time');
const I_TEAM = col('team');
/** Every column but the key: the full completion. */
const FULL_SET = AUDIT_REQUEST_COLUMNS.map((c, i) => ({ c, i })).filter(({ i }) => i !== I_REQUEST_ID);
/**
 * The completion finds its open row by (time, request_id) — the unique key, both fixed at the
 * decision — and leaves the indexed team out of the SET, so SQLite does not rewrite those index
 * entries; it only matches when the open row holds the same team (else the full form runs), so the
 * stored row is always exactly the hashed one.
 */
const FAST_SET = FULL_SET.filter(({ i }) => i !== I_TIME && i !== I_TEAM);
const FULL_SET_NO_TIME = FULL_SET.filter(({ i }) => i !== I_TIME);
const EV_COLS = AUDIT_EVENT_COLUMNS.join(', ');
const EV_PARAMS = AUDIT_EVENT_COLUMNS.map(() => '?').join(', ');

interface ChainRow { anchor_seq: number; anchor_hash: string; head_seq: number; head_hash: string }

export function createAuditWriter(db: Database): AuditWriter {
  const readChain = db.prepare<[string], ChainRow>('SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_chain WHERE chain = ?');
  const setHead = db.prepare<[number, string, string]>('UPDATE audit_chain SET head_seq = ?, head_hash = ? WHERE chain = ?');
  const setAnchor = db.prepare<[number, string, string]>('UPDATE audit_chain SET anchor_seq = ?, anchor_hash = ? WHERE chain = ?');
  // seq and hash stay NULL (their default) while open.
  const insertOpen = db.prepare<unknown[]>(`INSERT INTO audit_requests (state, ${REQ_COLS}) VALUES ('open', ${REQ_PARAMS}) ON CONFLICT (time, request_id) DO NOTHING`);
  const completeFast = db.prepare<unknown[]>(`UPDATE audit_requests SET state = 'complete', seq = ?, hash = ?, ${FAST_SET.map(({ c }) => `${c} = ?`).join(', ')}
    WHERE time = ? AND request_id = ? AND state = 'open' AND team IS ?`);
  const completeFull = db.prepare<unknown[]>(`UPDATE audit_requests SET state = 'complete', seq = ?, hash = ?, ${FULL_SET_NO_TIME.map(({ c }) => `${c} = ?`).join(', ')}
    WHERE time = ? AND request_id = ? AND state = 'open'`);
  const insertComplete = db.prepare<unknown[]>(`INSERT INTO audit_requests (state, seq, hash, ${REQ_COLS}) VALUES ('complete', ?, ?, ${REQ_PARAMS}) ON CONFLICT (time, request_id) DO NOTHING`);
  const insertEvent = db.prepare<unknown[]>(`INSERT INTO audit_events (seq, hash, ${EV_COLS}) VALUES (?, ?, ${EV_PARAMS})`);
  // Open rows are exactly those with seq IS NULL (a table CHECK): found through the seq index.
  const openRows = db.prepare<[], AuditRequestRow>(`SELECT ${REQ_COLS} FROM audit_requests WHERE seq IS NULL ORDER BY id`);
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

  const fastArgs = new Array<unknown>(2 + FAST_SET.length + 3);
  const fullArgs = new Array<unknown>(2 + FULL_SET_NO_TIME.length + 2);
  const completeArgs = new Array<unknown>(2 + AUDIT_REQUEST_COLUMNS.length);

  const apply = (ops: readonly PackedOp[]): AuditBatchResult => {
    // Read when the batch first needs them: a batch of decisions alone never reads the chain.
    let reqHead: ChainHead | undefined;
    let evHead: ChainHead | undefined;
    let reqStart = 0;
    let evStart = 0;
    let written = 0;
    let duplicates = 0;
    for (const o of ops) {
      const v = o.v;
      if (o.k === OP_OPEN) {
        insertOpen.run(v);
        written++;
      } else if (o.k === OP_COMPLETE) {
        if (reqHead === undefined) {
          reqHead = head('requests');
          reqStart = reqHead.seq;
        }
        const link = nextLinkValues('requests', reqHead, v);
        // The usual case: the decision row is open. Then: no row at all (a refused request, written
        // once). Then: an open row whose team differs. Else the request is already complete.
        fastArgs[0] = link.seq;
        fastArgs[1] = link.hash;
        let j = 2;
        for (const { i } of FAST_SET) fastArgs[j++] = v[i];
        fastArgs[j++] = v[I_TIME];
        fastArgs[j++] = v[I_REQUEST_ID];
        fastArgs[j] = v[I_TEAM];
        let done = completeFast.run(fastArgs).changes > 0;
        if (!done) {
          completeArgs[0] = link.seq;
          completeArgs[1] = link.hash;
          for (let i = 0; i < v.length; i++) completeArgs[i + 2] = v[i];
          done = insertComplete.run(completeArgs).changes > 0;
        }
        if (!done) {
          fullArgs[0] = link.seq;
          fullArgs[1] = link.hash;
          j = 2;
          for (const { i } of FULL_SET_NO_TIME) fullArgs[j++] = v[i];
          fullArgs[j++] = v[I_TIME];
          fullArgs[j] = v[I_REQUEST_ID];
          done = completeFull.run(fullArgs).changes > 0;
        }
        if (!done) {
          duplicates++;
          continue;
        }
        reqHead = link;
        written++;
      } else {
        if (evHead === undefined) {
          evHead = head('events');
          evStart = evHead.seq;
        }
        const link = nextLinkValues('events', evHead, v);
        insertEvent.run(link.seq, link.hash, ...v);
        evHead = link;
        written++;
      }
    }
    if (reqHead !== undefined && reqHead.seq !== reqStart) setHead.run(reqHead.seq, reqHead.hash, 'requests');
    if (evHead !== undefined && evHead.seq !== evStart) setHead.run(evHead.seq, evHead.hash, 'events');
    return { written, duplicates };
  };
  const applyTx = immediateTransaction(db, apply);

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
      return applyTx(ops.map(packOp));
    },
    applyPacked(ops) {
      if (ops.length === 0) return { written: 0, duplicates: 0 };
      return applyTx(ops);
    },
    closeOrphans(now, error) {
      return inImmediateTransaction(db, () => {
        const orphans = openRows.all();
        if (orphans.length === 0) return 0;
        apply(orphans.map((row, i) => packOp({
          op: 'complete', id: i,
          row: { ...row, ended_at: now, duration_ms: Math.max(0, now - row.time), error },
        })));
        return orphans.length;
      });
    },
    prune(cutoff, maxRows, now, actor = 'gateway') {
      return inImmediateTransaction(db, (): PruneResult => {
        const req = pruneChain('requests', cutoff, maxRows);
        const ev = pruneChain('events', cutoff, maxRows);
        if (req.rows > 0 || ev.rows > 0) {
          apply([packOp({
            op: 'event', id: 0,
            row: buildAuditEvent({
              type: 'audit_pruned', actor,
              detail: {
                cutoff: new Date(cutoff).toISOString(),
                requests: { rows: req.rows, anchor_seq: req.anchor.seq, anchor_hash: req.anchor.hash },
                events: { rows: ev.rows, anchor_seq: ev.anchor.seq, anchor_hash: ev.anchor.hash },
              },
            }, now),
          })]);
        }
        return { requests: req.rows, events: ev.rows, more: req.more || ev.more };
      });
    },
  };
}
