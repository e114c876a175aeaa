// Owns: telling whether tollgate.db at its path is still the file a connection opened (security
// case 7.09: the file deleted or replaced while the gateway runs), and moving aside the WAL and
// shared-memory files of the old database so that the next opener of the path does not replay them
// into the new one. SQLite itself leaves them behind: closing a connection whose file has moved
// skips the checkpoint and the WAL's deletion (SQLITE_READONLY_DBMOVED).
import { renameSync, statSync } from 'node:fs';

interface Inode { dev: number; ino: number }

export interface FileIdentity {
  file: string;
  db: Inode;
  /** The -wal and -shm files as they were when captured (absent: not there then). */
  companions: Array<{ path: string; inode: Inode }>;
}

const COMPANIONS = ['-wal', '-shm'];

function inodeOf(p: string): Inode | undefined {
  try {
    const st = statSync(p);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

const same = (a: Inode | undefined, b: Inode) => a !== undefined && a.dev === b.dev && a.ino === b.ino;

/** The identity of `file` and its -wal/-shm now (call right after opening: WAL mode creates both). */
export function captureFileIdentity(file: string): FileIdentity {
  const db = inodeOf(file);
  if (!db) throw Object.assign(new Error(`${file} does not exist`), { code: 'AUDIT_FILE_REPLACED' });
  const companions: FileIdentity['companions'] = [];
  for (const suffix of COMPANIONS) {
    const inode = inodeOf(`${file}${suffix}`);
    if (inode) companions.push({ path: `${file}${suffix}`, inode });
  }
  return { file, db, companions };
}

/** Why the path no longer holds the captured file ('deleted' or 'replaced'), or undefined while it does. */
export function fileIdentityChange(id: FileIdentity): 'deleted' | 'replaced' | undefined {
  const now = inodeOf(id.file);
  if (!now) return 'deleted';
  return same(now, id.db) ? undefined : 'replaced';
}

/**
 * Renames the old database's -wal and -shm (those still at their paths with the captured inodes)
 * to `<name>.replaced-<stamp>`: the next opener then starts the file at the path with empty ones
 * rather than replaying frames that belong to another database. Connections already open keep
 * theirs (an open file descriptor and mapping survive a rename). Returns the new names.
 */
export function moveAsideCompanions(id: FileIdentity, stamp: string): string[] {
  const moved: string[] = [];
  for (const c of id.companions) {
    if (!same(inodeOf(c.path), c.inode)) continue;
    const to = `${c.path}.replaced-${stamp}`;
    try {
      renameSync(c.path, to);
      moved.push(to);
    } catch {
      // left in place: the log line names the ones moved, so an operator sees which were not
    }
  }
  return moved;
}

export interface ConnectionFileGuard {
  /** Checks now (a stat, a few µs): for the connection's writers, before they write. */
  check(): void;
  stop(): void;
}

/**
 * Watches a connection's file (once per `everyMs`, and on `check()`): when the path stops holding
 * it, the connection is made read-only (PRAGMA query_only), so nothing more is written silently into
 * an unlinked or moved file — a revocation or a session written there would be lost at the next
 * start; such writes fail with SQLITE_READONLY instead — and `onChange` is told once.
 */
export function guardConnectionFile(
  db: { pragma(source: string): unknown; open: boolean }, file: string,
  onChange: (change: 'deleted' | 'replaced') => void, everyMs = 1000,
): ConnectionFileGuard {
  const id = captureFileIdentity(file);
  let changed = false;
  const check = () => {
    if (changed) return;
    const change = fileIdentityChange(id);
    if (change === undefined) return;
    changed = true;
    clearInterval(timer);
    if (db.open) db.pragma('query_only = ON');
    onChange(change);
  };
  const timer = setInterval(check, everyMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
