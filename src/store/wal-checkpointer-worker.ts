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
}

function run(cfg: CheckpointerConfig): void {
  let db: ReturnType<typeof openDatabase>;
  try {
    db = openDatabase(cfg.file, { busyTimeoutMs: 0 });
    db.pragma('wal_autocheckpoint = 0');
  } catch {
    // The writer reports an unusable store; without this thread the WAL is still bounded by the
    // writer's own truncation at its cap.
    return;
  }
  // Runs until the sink terminates the thread (the connection closes with it).
  setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // busy (another checkpoint) or the store is failing: the next tick tries again
    }
  }, cfg.intervalMs);
}

if (parentPort) run(workerData as CheckpointerConfig);
