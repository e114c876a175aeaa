// Owns: moving tollgate.db's write-ahead log into the database file, off the writer thread. The
// audit writer's connection never checkpoints on commit (an automatic checkpoint copies tens of
// megabytes and fsyncs inside a COMMIT, stalling every decision waiting for that commit by 100 ms
// and more); this thread runs a PASSIVE checkpoint — which never takes the write lock, so it never
// blocks the writer — every `intervalMs` on its own connection. Started by
// src/audit/sqlite-audit-sink.ts. (The writer still truncates a WAL that outgrows its cap.)
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './database.ts';

export interface CheckpointerConfig {
  file: string;
  intervalMs: number;
  /** How long an attempt to open waits for the write lock before the next tick tries again. Default 5000. */
  openBusyTimeoutMs?: number;
}

function run(cfg: CheckpointerConfig): void {
  let db: ReturnType<typeof openDatabase> | undefined;
  // Opened on the first tick that can: opening migrates in a write transaction, which waits (on
  // this thread only) while the writer or a CLI verb holds the lock, and a failure is tried again
  // next tick rather than leaving the WAL to the writer's truncation for good.
  const connection = (): ReturnType<typeof openDatabase> | undefined => {
    if (db) return db;
    try {
      db = openDatabase(cfg.file, { busyTimeoutMs: cfg.openBusyTimeoutMs ?? 5000 });
      db.pragma('busy_timeout = 0'); // a checkpoint never waits: a busy one is retried next tick
      db.pragma('wal_autocheckpoint = 0');
    } catch {
      db = undefined; // the writer reports an unusable store
    }
    return db;
  };
  // Runs until the sink terminates the thread (the connection closes with it).
  setInterval(() => {
    try {
      connection()?.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // busy (another checkpoint) or the store is failing: the next tick tries again
    }
  }, cfg.intervalMs);
}

if (parentPort) run(workerData as CheckpointerConfig);
