// Owns: reading the audit trail from tollgate.db — filtered search (newest first, keyset cursor),
// time-ordered iteration for export (one read transaction: a consistent snapshot), the summary
// aggregates, and the rows the chain verifier walks. Read-only.
import { AUDIT_EVENT_COLUMNS, AUDIT_REQUEST_COLUMNS, type AuditChainName, type AuditDecision, type StoredAuditEvent, type StoredAuditRequest } from '../audit/audit-record.ts';
import { verifyChain, type ChainVerification } from '../audit/verify-chain.ts';
import type { Database } from './database.ts';

export interface AuditFilter {
  /** Inclusive lower bound on `time` (ms). */
  since?: number;
  /** Exclusive upper bound on `time` (ms). */
  until?: number;
  /** A user's e-mail (principal_kind = user). */
  user?: string;
  /** An agent's name. */
  agent?: string;
  team?: string;
  project?: string;
  host?: string;
  decision?: AuditDecision;
  /** An exact status (`403`) or a class (`5xx`). */
  status?: string;
  /** Rows per page; default 100, at most 10,000. */
  limit?: number;
  /** Keyset cursor from a previous page (`nextCursor`): rows strictly older than it. */
  cursor?: string;
}

export interface AuditPage {
  rows: StoredAuditRequest[];
  /** Pass as `cursor` for the next (older) page; undefined on the last page. */
  nextCursor: string | undefined;
}

const ROW_COLS = `id, state, seq, hash, ${AUDIT_REQUEST_COLUMNS.join(', ')}`;
const EVENT_COLS = `id, seq, hash, ${AUDIT_EVENT_COLUMNS.join(', ')}`;

const DECISIONS: ReadonlySet<string> = new Set<AuditDecision>(['allow', 'direct', 'deny', 'error']);

function where(f: AuditFilter): { sql: string; params: Record<string, unknown> } {
  const clauses: string[] = [];
  const params: Record<string, unknown> = {};
  if (f.since !== undefined) { clauses.push('time >= @since'); params['since'] = f.since; }
  if (f.until !== undefined) { clauses.push('time < @until'); params['until'] = f.until; }
  if (f.user !== undefined) { clauses.push("principal_kind = 'user' AND subject = @user"); params['user'] = f.user; }
  if (f.agent !== undefined) { clauses.push('agent = @agent'); params['agent'] = f.agent; }
  if (f.team !== undefined) { clauses.push('team = @team'); params['team'] = f.team; }
  if (f.project !== undefined) { clauses.push('project = @project'); params['project'] = f.project; }
  if (f.host !== undefined) { clauses.push('host = @host'); params['host'] = f.host.toLowerCase(); }
  if (f.decision !== undefined) {
    // A known value goes in as a literal so that the planner can use the partial index of refused
    // rows (migration 2: audit_requests_refused); anything else stays a parameter (and matches nothing).
    if (DECISIONS.has(f.decision)) clauses.push(`decision = '${f.decision}'`);
    else { clauses.push('decision = @decision'); params['decision'] = f.decision; }
  }
  if (f.status !== undefined) {
    const cls = /^([1-5])xx$/i.exec(f.status);
    if (cls) {
      clauses.push('status >= @status_lo AND status < @status_hi');
      params['status_lo'] = Number(cls[1]) * 100;
      params['status_hi'] = Number(cls[1]) * 100 + 100;
    } else if (/^\d{3}$/.test(f.status)) {
      clauses.push('status = @status');
      params['status'] = Number(f.status);
    } else {
      throw new RangeError(`status filter ${JSON.stringify(f.status)} is not a status code (403) or class (5xx)`);
    }
  }
  if (f.cursor !== undefined) {
    const m = /^(\d+)\.(\d+)$/.exec(f.cursor);
    if (!m) throw new RangeError('cursor is not one this API returned');
    clauses.push('(time < @c_time OR (time = @c_time AND id < @c_id))');
    params['c_time'] = Number(m[1]);
    params['c_id'] = Number(m[2]);
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/** Newest first. */
export function searchAuditRows(db: Database, f: AuditFilter = {}): AuditPage {
  const limit = Math.min(Math.max(1, Math.trunc(f.limit ?? 100)), 10_000);
  const w = where(f);
  const rows = db.prepare(`SELECT ${ROW_COLS} FROM audit_requests ${w.sql} ORDER BY time DESC, id DESC LIMIT ${limit + 1}`).all(w.params) as StoredAuditRequest[];
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return { rows, nextCursor: more && last ? `${last.time}.${last.id}` : undefined };
}

/** Oldest first, streaming; run inside readSnapshot for a consistent export. */
export function iterateAuditRows(db: Database, f: Pick<AuditFilter, 'since' | 'until'> = {}): IterableIterator<StoredAuditRequest> {
  const w = where({ ...(f.since !== undefined ? { since: f.since } : {}), ...(f.until !== undefined ? { until: f.until } : {}) });
  return db.prepare(`SELECT ${ROW_COLS} FROM audit_requests ${w.sql} ORDER BY time, id`).iterate(w.params) as IterableIterator<StoredAuditRequest>;
}

export function iterateAuditEvents(db: Database, f: Pick<AuditFilter, 'since' | 'until'> = {}): IterableIterator<StoredAuditEvent> {
  const w = where({ ...(f.since !== undefined ? { since: f.since } : {}), ...(f.until !== undefined ? { until: f.until } : {}) });
  return db.prepare(`SELECT ${EVENT_COLS} FROM audit_events ${w.sql} ORDER BY time, id`).iterate(w.params) as IterableIterator<StoredAuditEvent>;
}

/** Runs fn inside one read transaction: every query in it sees the same snapshot (WAL readers do not block the writer). */
export function readSnapshot<T>(db: Database, fn: () => T): T {
  return db.transaction(fn).deferred();
}

export interface AuditSummary {
  since: number | undefined;
  until: number | undefined;
  requests: number;
  users: Array<{ subject: string; team: string | null; requests: number; denied: number; last: number }>;
  agents: Array<{ agent: string; team: string | null; requests: number; denied: number; last: number }>;
  actions: Array<{ method: string; host: string; requests: number; denied: number; errors: number }>;
  denials: Array<{ rule: string | null; reason: string | null; host: string; requests: number; subjects: number }>;
  errors: { total: number; errors: number; rate: number; byHost: Array<{ host: string; requests: number; errors: number; rate: number }> };
}

/** "Errors" are requests the gateway failed (decision `error`) or that answered 5xx. */
const IS_ERROR = "(decision = 'error' OR status >= 500)";

export function auditSummary(db: Database, f: Pick<AuditFilter, 'since' | 'until'> & { top?: number } = {}): AuditSummary {
  const top = f.top ?? 20;
  const w = where({ ...(f.since !== undefined ? { since: f.since } : {}), ...(f.until !== undefined ? { until: f.until } : {}) });
  const and = (extra: string) => (w.sql ? `${w.sql} AND (${extra})` : `WHERE (${extra})`);
  return readSnapshot(db, () => {
    const total = db.prepare(`SELECT count(*) AS n, coalesce(sum(${IS_ERROR}), 0) AS e FROM audit_requests ${w.sql}`).get(w.params) as { n: number; e: number };
    const users = db.prepare(`SELECT subject, max(team) AS team, count(*) AS requests, sum(decision = 'deny') AS denied, max(time) AS last
      FROM audit_requests ${and("principal_kind = 'user'")} GROUP BY subject ORDER BY requests DESC, subject LIMIT ${top}`).all(w.params) as AuditSummary['users'];
    const agents = db.prepare(`SELECT agent, max(team) AS team, count(*) AS requests, sum(decision = 'deny') AS denied, max(time) AS last
      FROM audit_requests ${and('agent IS NOT NULL')} GROUP BY agent ORDER BY requests DESC, agent LIMIT ${top}`).all(w.params) as AuditSummary['agents'];
    const actions = db.prepare(`SELECT method, host, count(*) AS requests, sum(decision = 'deny') AS denied, sum(${IS_ERROR}) AS errors
      FROM audit_requests ${and("kind != 'tunnel' OR decision != 'allow'")} GROUP BY method, host ORDER BY requests DESC, host, method LIMIT ${top}`).all(w.params) as AuditSummary['actions'];
    const denials = db.prepare(`SELECT rule, reason, host, count(*) AS requests, count(DISTINCT subject) AS subjects
      FROM audit_requests ${and("decision = 'deny'")} GROUP BY rule, reason, host ORDER BY requests DESC, host LIMIT ${top}`).all(w.params) as AuditSummary['denials'];
    const byHost = (db.prepare(`SELECT host, count(*) AS requests, sum(${IS_ERROR}) AS errors
      FROM audit_requests ${w.sql} GROUP BY host HAVING errors > 0 ORDER BY errors DESC, host LIMIT ${top}`).all(w.params) as Array<{ host: string; requests: number; errors: number }>)
      .map((r) => ({ ...r, rate: r.requests ? r.errors / r.requests : 0 }));
    return {
      since: f.since, until: f.until, requests: total.n, users, agents, actions, denials,
      errors: { total: total.n, errors: total.e, rate: total.n ? total.e / total.n : 0, byHost },
    };
  });
}

export interface AuditVerification {
  ok: boolean;
  chains: ChainVerification[];
  /** Rows whose exchange has not ended (not chained yet). */
  openRows: number;
  /** The requests anchor differs from the one the last `audit_pruned` event recorded. */
  anchorMismatch: string | undefined;
}

interface ChainStateRow { anchor_seq: number; anchor_hash: string; head_seq: number; head_hash: string }

/** Verifies both chains in one snapshot. */
export function verifyAuditStore(db: Database): AuditVerification {
  return readSnapshot(db, () => {
    const state = (chain: AuditChainName) => {
      const r = db.prepare('SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_chain WHERE chain = ?').get(chain) as ChainStateRow | undefined;
      if (!r) throw new Error(`audit_chain has no ${chain} row`);
      return r;
    };
    const rq = state('requests');
    const ev = state('events');
    function* requestRecords() {
      for (const r of db.prepare(`SELECT ${ROW_COLS} FROM audit_requests WHERE seq IS NOT NULL ORDER BY seq`).iterate() as IterableIterator<StoredAuditRequest>) {
        yield { seq: r.seq as number, hash: r.hash as string, label: `request ${r.request_id}`, row: r };
      }
    }
    let lastPrune: { anchor_seq: number; anchor_hash: string } | undefined;
    function* eventRecords() {
      for (const r of db.prepare(`SELECT ${EVENT_COLS} FROM audit_events ORDER BY seq`).iterate() as IterableIterator<StoredAuditEvent>) {
        if (r.type === 'audit_pruned') {
          try {
            const d = JSON.parse(r.detail) as { requests?: { anchor_seq: number; anchor_hash: string } };
            if (d.requests) lastPrune = d.requests;
          } catch {
            // a broken detail shows up as a hash mismatch
          }
        }
        yield { seq: r.seq, hash: r.hash, label: `event #${r.id} ${r.type}`, row: r };
      }
    }
    const chains = [
      verifyChain('requests', { seq: rq.anchor_seq, hash: rq.anchor_hash }, requestRecords(), { seq: rq.head_seq, hash: rq.head_hash }),
      verifyChain('events', { seq: ev.anchor_seq, hash: ev.anchor_hash }, eventRecords(), { seq: ev.head_seq, hash: ev.head_hash }),
    ];
    // Open rows are those with seq IS NULL (a table CHECK): counted through the seq index.
    const openRows = (db.prepare('SELECT count(*) AS n FROM audit_requests WHERE seq IS NULL').get() as { n: number }).n;
    let anchorMismatch: string | undefined;
    const pruned = lastPrune as { anchor_seq: number; anchor_hash: string } | undefined;
    if (pruned && (pruned.anchor_seq !== rq.anchor_seq || pruned.anchor_hash !== rq.anchor_hash)) {
      anchorMismatch = `the requests anchor (seq ${rq.anchor_seq}) differs from the one recorded by the last audit_pruned event (seq ${pruned.anchor_seq})`;
    } else if (!pruned && rq.anchor_seq !== 0 && chains[1]?.anchor.seq === 0) {
      anchorMismatch = `the requests chain starts at seq ${rq.anchor_seq} but no audit_pruned event records that anchor`;
    }
    return { ok: chains.every((c) => c.ok) && anchorMismatch === undefined, chains, openRows, anchorMismatch };
  });
}
