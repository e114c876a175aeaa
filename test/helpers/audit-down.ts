// Test-only: an audit store whose every event write fails — a trigger on audit_events that aborts
// each INSERT with AUDIT_DOWN_MESSAGE — and its removal.
import type { Database } from '../../src/store/database.ts';

export const AUDIT_DOWN_MESSAGE = 'simulated audit store failure';

/** From now on every INSERT into audit_events on this database fails with AUDIT_DOWN_MESSAGE. */
export function breakAuditWrites(db: Database): void {
  db.exec(`CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, '${AUDIT_DOWN_MESSAGE}'); END`);
}

/** Drops the trigger; throws when there is none, unless `ifExists`. */
export function restoreAuditWrites(db: Database, opts: { ifExists?: boolean } = {}): void {
  db.exec(`DROP TRIGGER ${opts.ifExists === true ? 'IF EXISTS ' : ''}audit_down`);
}
