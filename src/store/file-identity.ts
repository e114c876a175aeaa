// Owns: telling whether tollgate.db at its path is still the file a connection opened (security
// case 7.09: the file deleted or replaced while the gateway runs), and moving aside the WAL and
// shared-memory files of the old database so that the next opener of the path does not replay them
// into the new one. SQLite itself leaves them behind: closing a connection whose file has moved
// skips the checkpoint and the WAL's deletion (SQLITE_READONLY_DBMOVED).
import { realpathSync, renameSync, statSync } from 'node:fs';

interface Inode { dev: number; ino: number }

export interface FileIdentity {
  file: string;
  db: Inode;
  /** The -wal and -shm files as they were when captured (absent: not there then). */
  companions: Array<{ path: string; inode: Inode }>;
}

const COMPANIONS = ['-wal', '-shm'];

/** The inode at `p`; undefined when nothing is there; null when it cannot be told (EACCES, EIO, …). */
function inodeOf(p: string): Inode | undefined | null {
  try {
    const st = statSync(p);
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : null;
  }
}

const same = (a: Inode | undefined | null, b: Inode) => a !== undefined && a !== null && a.dev === b.dev && a.ino === b.ino;

/** The identity of `file` and its -wal/-shm now (call right after opening: WAL mode creates both). */
export function captureFileIdentity(file: string): FileIdentity {
  const db = inodeOf(file); // stat follows a symbolic link: the target's inode
  if (!db) throw Object.assign(new Error(`${file} cannot be read (${db === null ? 'stat failed' : 'it does not exist'})`), { code: 'AUDIT_FILE_REPLACED' });
  // SQLite keeps -wal and -shm next to the file a symbolic link points to
  let real = file;
  try {
    real = realpathSync(file);
  } catch {
    // the path itself, then
  }
  const companions: FileIdentity['companions'] = [];
  for (const suffix of COMPANIONS) {
    const inode = inodeOf(`${real}${suffix}`);
    if (inode) companions.push({ path: `${real}${suffix}`, inode });
  }
  return { file, db, companions };
}

/**
 * Why the path no longer holds the captured file ('deleted': nothing there; 'replaced': another
 * file), or undefined while it does — and also when the path cannot be examined now (EACCES, EIO,
 * a stale NFS handle): that is asked again, never taken for a deletion.
 */
export function fileIdentityChange(id: FileIdentity): 'deleted' | 'replaced' | undefined {
  const now = inodeOf(id.file);
  if (now === null) return undefined;
  if (now === undefined) return 'deleted';
  return same(now, id.db) ? undefined : 'replaced';
}

/**
 * Renames the old database's -wal and -shm (those still at their paths with the captured inodes)
 * to `<name>.replaced-<stamp>` (the time by default): the next opener then starts the file at the path with empty ones
 * rather than replaying frames that belong to another database. Connections already open keep
 * theirs (an open file descriptor and mapping survive a rename). Returns the new names.
 */
export function moveAsideCompanions(id: FileIdentity, stamp = new Date().toISOString().replace(/[:.]/g, '-')): string[] {
  const moved: string[] = [];
  if (fileIdentityChange(id) === undefined) return moved; // looked again: the file is (back) in place
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
 * start; such writes fail with SQLITE_READONLY instead — the old -wal/-shm are moved aside (as the
 * audit writer does; whichever notices first), and `onChange` is told once.
 */
export function guardConnectionFile(
  db: { pragma(source: string): unknown; open: boolean }, file: string,
  onChange: (change: 'deleted' | 'replaced', movedAside: string[]) => void, everyMs = 1000,
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
    onChange(change, moveAsideCompanions(id));
  };
  const timer = setInterval(check, everyMs);
  timer.unref();
  return {
    check,
    /** Stops watching after a last look (call before closing the connection). */
    stop: () => {
      clearInterval(timer);
      check();
    },
  };
}
