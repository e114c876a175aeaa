// Test-only: a migrated tollgate.db in a temp dir of its own, for one test. Every connection it
// opens is closed, and the dir removed, at that test's teardown.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { openDatabase, type Database } from '../../src/store/database.ts';

export interface TempDb {
  dir: string;
  /** `<dir>/tollgate.db` */
  file: string;
  /** The first connection, opened (and migrated) by openDatabase. */
  db: Database;
  /** Another connection on the same file (a second process, or the same one after a restart). */
  open(): Database;
}

export function tempDb(t: Test, prefix = 'tollgate-db-'): TempDb {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const file = path.join(dir, 'tollgate.db');
  const dbs: Database[] = [];
  t.teardown(() => {
    for (const d of dbs) if (d.open) d.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = () => {
    const d = openDatabase(file);
    dbs.push(d);
    return d;
  };
  return { dir, file, db: open(), open };
}
