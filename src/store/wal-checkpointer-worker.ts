// Owns: moving tollgate.db's write-ahead log into the database file, off the writer thread. The
// audit writer's connection never checkpoints on commit (an automatic checkpoint copies tens of
// megabytes and fsyncs inside a COMMIT, stalling every decision waiting for that commit by 100 ms
// and more); this thread runs a PASSIVE checkpoint — which never takes the write lock, so it never
// blocks the writer — every `intervalMs` on its own connection, and then, when the WAL file is
// still above `walCapBytes`, a TRUNCATE checkpoint that never waits: with busy_timeout 0 a reader
// that holds an old snapshot (a long export) makes it give up at once — the writer goes on
// committing, and the thread posts a warning (at most every 5 s) for the sink to log. Started (and
// restarted when it dies) by src/audit/sqlite-audit-sink.ts.
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './database.ts';
import { captureFileIdentity, fileIdentityChange, type FileIdentity } from './file-identity.ts';

export interface CheckpointerConfig {
  file: string;
  intervalMs: number;
  /** WAL size above which the tick truncates the WAL (when no reader holds an older snapshot). */
  walCapBytes: number;
  /** How long an attempt to open waits for the write lock before the next tick tries again. Default 5000. */
  openBusyTimeoutMs?: number;
}

/**
 * What the thread posts: the WAL is above its cap and a reader keeps it from being truncated; or its
 * connection cannot be opened (checkpoints, and the cap, wait meanwhile).
 */
export type CheckpointerMessage = { t: 'wal-blocked'; walBytes: number; capBytes: number } | { t: 'open-failed'; error: string };

const WARN_EVERY_MS = 5000;
const OPEN_FAILURE_EVERY_MS = 60_000;

function walBytes(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0; // no WAL file (yet)
  }
}

function run(cfg: CheckpointerConfig, port: NonNullable<typeof parentPort>): void {
  let lastWarning = 0;
  let lastOpenFailure = 0;
  let db: ReturnType<typeof openDatabase> | undefined;
  // Opened on the first tick that can: opening migrates in a write transaction, which waits (on
  // this thread only) while the writer or a CLI verb holds the lock, and a failure is tried again
  // next tick rather than leaving the WAL to the writer's truncation for good.
  let identity: FileIdentity | undefined;
  // Set when the path stops holding the file this connection opened (deleted or replaced, security
  // case 7.09): no checkpoint ever copies the old WAL's pages again; the writer reports the store
  // failed and a restart is needed.
  let gone = false;
  const connection = (): ReturnType<typeof openDatabase> | undefined => {
    if (gone) return undefined;
    if (db) {
      if (identity && fileIdentityChange(identity) !== undefined) {
        gone = true;
        try {
          db.close(); // SQLite skips the checkpoint of a moved file on close
        } catch {
          // closing is all that is left to do
        }
        db = undefined;
      }
      return db;
    }
    try {
      db = openDatabase(cfg.file, { busyTimeoutMs: cfg.openBusyTimeoutMs ?? 5000 });
      identity = captureFileIdentity(cfg.file);
      db.pragma('busy_timeout = 0'); // a checkpoint never waits: a busy one is retried next tick
      db.pragma('wal_autocheckpoint = 0');
    } catch (err) {
      db = undefined; // the writer reports an unusable store; the sink logs this (rate-limited)
      const now = Date.now();
      if (now - lastOpenFailure >= OPEN_FAILURE_EVERY_MS) {
        lastOpenFailure = now;
        port.postMessage({ t: 'open-failed', error: String((err as Error).message ?? err) } satisfies CheckpointerMessage);
      }
    }
    return db;
  };
  // Runs until the sink terminates the thread (the connection closes with it).
  setInterval(() => {
    const c = connection();
    if (!c) return;
    try {
      const [passive] = c.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      const size = walBytes(cfg.file);
      if (size <= cfg.walCapBytes) return;
      // After the PASSIVE pass little is left to copy: the write lock is held only briefly.
      const [r] = c.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      const now = Date.now();
      // Busy because the writer held its lock just then is no news; frames the PASSIVE pass could
      // not copy are: a reader holds an older snapshot.
      const readerBlocks = passive !== undefined && passive.checkpointed < passive.log;
      if (r?.busy && readerBlocks && now - lastWarning >= WARN_EVERY_MS) {
        lastWarning = now;
        port.postMessage({ t: 'wal-blocked', walBytes: size, capBytes: cfg.walCapBytes } satisfies CheckpointerMessage);
      }
    } catch {
      // busy (the writer holds the lock, another checkpoint) or the store is failing: next tick
    }
  }, cfg.intervalMs);
}

if (parentPort) run(workerData as CheckpointerConfig, parentPort);
