// Owns: applying the numbered migrations to a database, once each, in order, and refusing a
// database whose recorded history does not match this build's list.
import { createHash } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { TollgateError } from '../errors.ts';
import { immediateTransaction } from './busy-retry.ts';
import type { Migration } from './migrations.ts';

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: number;
}

export function migrationChecksum(m: Migration): string {
  return createHash('sha256').update(m.up).digest('hex');
}

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `migration list is out of order: position ${i + 1} holds version ${m.version} (${m.name})`);
    }
  });
}

/**
 * Applies every pending migration in one BEGIN IMMEDIATE transaction, so concurrent openers (two
 * processes starting at once) serialise and the second sees the first's work. Idempotent.
 * Returns the versions applied by this call.
 */
export function migrate(db: BetterSqlite3.Database, migrations: readonly Migration[], now: () => number): number[] {
  checkList(migrations);
  const run = immediateTransaction(db, (): number[] => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER NOT NULL PRIMARY KEY,
      name       TEXT    NOT NULL,
      checksum   TEXT    NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT`);
    const applied = db
      .prepare('SELECT version, name, checksum, applied_at AS appliedAt FROM schema_migrations ORDER BY version')
      .all() as AppliedMigration[];
    for (const a of applied) {
      const known = migrations[a.version - 1];
      if (known === undefined) {
        throw new TollgateError(
          'TOLLGATE_ERR_STARTUP_UNSAFE',
          `the database has schema migration ${a.version} (${a.name}) which this build does not know; it was written by a newer Tollgate — upgrade, or restore a backup`,
        );
      }
      if (migrationChecksum(known) !== a.checksum) {
        throw new TollgateError(
          'TOLLGATE_ERR_STARTUP_UNSAFE',
          `schema migration ${a.version} (${a.name}) differs from the one applied to this database; shipped migrations must not be edited — add a new one`,
        );
      }
    }
    const done: number[] = [];
    const record = db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
    for (const m of migrations.slice(applied.length)) {
      db.exec(m.up);
      record.run(m.version, m.name, migrationChecksum(m), now());
      done.push(m.version);
    }
    return done;
  });
  return run();
}

export function appliedMigrations(db: BetterSqlite3.Database): AppliedMigration[] {
  return db
    .prepare('SELECT version, name, checksum, applied_at AS appliedAt FROM schema_migrations ORDER BY version')
    .all() as AppliedMigration[];
}
