// Owns: the alert delivery queue on tollgate.db (table alert_deliveries, migration 5). A delivery
// is unique per webhook and event key, so enqueueing the same threshold twice (or again after a
// restart) is a no-op; an attempt claims its row for a lease, so a crash mid-attempt is retried by
// the next run rather than lost or sent twice by this one.
import type { Database } from './database.ts';

export interface AlertDelivery {
  id: number;
  webhook: string;
  eventKey: string;
  payload: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
}

export interface AlertQueue {
  /** true when the delivery is new; false when this webhook already has this event */
  enqueue(d: { webhook: string; eventKey: string; payload: string; at: number }): boolean;
  /** Pending deliveries due at `now`, oldest first. */
  due(now: number, limit: number): AlertDelivery[];
  /** Moves the next attempt of a row to `until` (the attempt in flight holds it); false if no longer pending. */
  claim(id: number, until: number): boolean;
  /** Earliest next attempt of a pending row. */
  nextDueAt(): number | undefined;
  delivered(id: number, at: number, attempts: number, status: number): void;
  retryLater(id: number, at: number, attempts: number, nextAt: number, status: number | null, error: string): void;
  failed(id: number, at: number, attempts: number, status: number | null, error: string): void;
  list(): AlertDelivery[];
}

interface Row {
  id: number; webhook: string; event_key: string; payload: string; state: AlertDelivery['state']; attempts: number;
  created_at: number; next_attempt_at: number; last_status: number | null; last_error: string | null;
}

const toDelivery = (r: Row): AlertDelivery => ({
  id: r.id, webhook: r.webhook, eventKey: r.event_key, payload: r.payload, state: r.state, attempts: r.attempts,
  createdAt: r.created_at, nextAttemptAt: r.next_attempt_at, lastStatus: r.last_status, lastError: r.last_error,
});

const COLUMNS = 'id, webhook, event_key, payload, state, attempts, created_at, next_attempt_at, last_status, last_error';

export function createSqliteAlertQueue(db: Database): AlertQueue {
  const insert = db.prepare<[string, string, string, number, number]>(
    "INSERT OR IGNORE INTO alert_deliveries (webhook, event_key, payload, state, created_at, next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?)",
  );
  const due = db.prepare<[number, number], Row>(`SELECT ${COLUMNS} FROM alert_deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`);
  const claim = db.prepare<[number, number]>("UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ? AND state = 'pending'");
  const next = db.prepare<[], { t: number | null }>("SELECT min(next_attempt_at) AS t FROM alert_deliveries WHERE state = 'pending'");
  const finish = db.prepare<[{ id: number; state: string; at: number; attempts: number; status: number | null; error: string | null }]>(
    "UPDATE alert_deliveries SET state = @state, attempts = @attempts, last_attempt_at = @at, done_at = @at, last_status = @status, last_error = @error WHERE id = @id AND state = 'pending'",
  );
  const later = db.prepare<[{ id: number; at: number; attempts: number; next: number; status: number | null; error: string }]>(
    "UPDATE alert_deliveries SET attempts = @attempts, last_attempt_at = @at, next_attempt_at = @next, last_status = @status, last_error = @error WHERE id = @id AND state = 'pending'",
  );
  const all = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM alert_deliveries ORDER BY id`);
  return {
    enqueue: (d) => insert.run(d.webhook, d.eventKey, d.payload, d.at, d.at).changes === 1,
    due: (now, limit) => due.all(now, limit).map(toDelivery),
    claim: (id, until) => claim.run(until, id).changes === 1,
    nextDueAt: () => next.get()?.t ?? undefined,
    delivered: (id, at, attempts, status) => { finish.run({ id, state: 'delivered', at, attempts, status, error: null }); },
    retryLater: (id, at, attempts, nextAt, status, error) => { later.run({ id, at, attempts, next: nextAt, status, error }); },
    failed: (id, at, attempts, status, error) => { finish.run({ id, state: 'failed', at, attempts, status, error }); },
    list: () => all.all().map(toDelivery),
  };
}
