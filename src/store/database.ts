// Owns: opening tollgate.db (the only import of better-sqlite3 in the code base), its pragmas,
// running the migrations, and the BEGIN IMMEDIATE helper every read-modify-write goes through.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { TollgateError } from '../errors.ts';
import { immediateTransaction, retryBusyBegin, setBusyBudget } from './busy-retry.ts';
import { migrate } from './migrate.ts';
import { MIGRATIONS, type Migration } from './migrations.ts';

/** The database handle handed to store implementations (tokens now; audit and ledger later). */
export type Database = BetterSqlite3.Database;
export type Statement<P extends unknown[] | object = unknown[], R = unknown> = BetterSqlite3.Statement<P, R>;

export interface OpenDatabaseOptions {
  /** Defaults to every migration this build knows. Tests may pass a prefix of the list. */
  migrations?: readonly Migration[];
  /** Milliseconds a writer waits for the lock held by another connection or process. Default 5000. */
  busyTimeoutMs?: number;
  /** Clock for schema_migrations.applied_at. */
  now?: () => number;
  /**
   * For a reader of a database the gateway already opened (the reporting thread): never create the
   * file — one deleted under the gateway must not come back empty because a report was asked for.
   */
  mustExist?: boolean;
}

const IN_MEMORY = ':memory:';

/**
 * Opens (creating if needed, mode 0600 in a 0700 folder) the SQLite file, sets the pragmas and
 * applies pending migrations. Throws TollgateError when the file was written by a newer build or a
 * shipped migration was edited: fail closed rather than run against a schema we do not know.
 */
export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Database {
  const mustExist = file !== IN_MEMORY && opts.mustExist === true;
  if (mustExist && !existsSync(file)) {
    throw new TollgateError('TOLLGATE_ERR_AUDIT', `${file} does not exist (deleted while the gateway runs?); restore it and restart the gateway`);
  }
  if (file !== IN_MEMORY && !mustExist) {
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
    // Create the file ourselves so it is never world-readable; SQLite gives -wal/-shm the same mode.
    closeSync(openSync(file, 'a', 0o600));
    try {
      chmodSync(file, 0o600);
    } catch {
      // not the owner (e.g. a shared data dir): keep whatever mode the operator chose
    }
  }
  let db: Database;
  try {
    // mustExist: SQLite itself refuses a file gone since the check above (no creation race)
    db = new BetterSqlite3(file, { timeout: opts.busyTimeoutMs ?? 5000, fileMustExist: mustExist });
  } catch (err) {
    if (!mustExist) throw err;
    throw new TollgateError('TOLLGATE_ERR_AUDIT', `${file} cannot be opened (${(err as Error).message}); restore it and restart the gateway`);
  }
  try {
    db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
    setBusyBudget(db, opts.busyTimeoutMs ?? 5000);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (file !== IN_MEMORY && String(mode).toLowerCase() !== 'wal') {
      throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `${file}: SQLite refused WAL mode (got ${String(mode)}); put the data dir on a local file system`);
    }
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, opts.migrations ?? MIGRATIONS, opts.now ?? Date.now);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Opens the file for one piece of work (a CLI verb's) and closes it after, whatever happens. */
export function withDatabase<T>(file: string, opts: OpenDatabaseOptions, fn: (db: Database) => T): T {
  const db = openDatabase(file, opts);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/**
 * Runs fn inside BEGIN IMMEDIATE … COMMIT (ROLLBACK on throw): the write lock is taken up front, so
 * a read-modify-write never fails halfway with SQLITE_BUSY, and a BEGIN keeps trying for the
 * connection's busy timeout (busy-retry.ts). Nested calls become savepoints. fn must be synchronous.
 */
export function inImmediateTransaction<T>(db: Database, fn: () => T): T {
  return immediateTransaction(db, fn)();
}

/**
 * inImmediateTransaction for a function that awaits store methods whose SQLite work completes
 * synchronously inside their promises (the SQLite TokenStore): BEGIN IMMEDIATE, await fn, COMMIT;
 * ROLLBACK when fn or the COMMIT throws. Nested synchronous transactions inside fn become
 * savepoints of this one. Only for a connection nothing else uses meanwhile (a CLI verb's own):
 * statements run on it by another caller during an await would join the transaction.
 */
export async function inImmediateTransactionAsync<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  retryBusyBegin(db, (began) => {
    db.exec('BEGIN IMMEDIATE');
    began();
  });
  try {
    const out = await fn();
    db.exec('COMMIT');
    return out;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
