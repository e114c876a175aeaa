// file-identity.ts on real files: a path that still holds the file, one deleted, one replaced; the
// old database's -wal/-shm moved aside only while they are still the captured ones; and the
// connection guard that turns a connection read-only when its file goes.
import { chmodSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase } from '../../../src/store/database.ts';
import { captureFileIdentity, fileIdentityChange, guardConnectionFile, moveAsideCompanions } from '../../../src/store/file-identity.ts';

function dir(t: Test): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'tollgate-file-identity-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('unchanged, deleted, replaced', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'tollgate.db');
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const id = captureFileIdentity(file);
  t.same(id.companions.map((c) => path.basename(c.path)).sort(), ['tollgate.db-shm', 'tollgate.db-wal'], 'WAL mode: both companions captured');
  t.equal(fileIdentityChange(id), undefined, 'unchanged');
  renameSync(file, `${file}.away`);
  t.equal(fileIdentityChange(id), 'deleted', 'nothing at the path: deleted');
  writeFileSync(file, 'another file');
  t.equal(fileIdentityChange(id), 'replaced', 'another inode at the path: replaced');
  unlinkSync(file);
  renameSync(`${file}.away`, file);
  t.equal(fileIdentityChange(id), undefined, 'the same file back at its path');
  t.throws(() => captureFileIdentity(path.join(d, 'missing.db')), { code: 'AUDIT_FILE_REPLACED' });
});

t.test('moveAsideCompanions moves only the captured -wal/-shm still at their paths', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'tollgate.db');
  openDatabase(file).close(); // a clean close deletes the WAL: write our own to stand for the old one
  writeFileSync(`${file}-wal`, 'new wal of another database');
  const fresh = captureFileIdentity(file);
  t.same(moveAsideCompanions(fresh, 'EARLY'), [], 'the file still in place: nothing is moved');
  renameSync(file, `${file}.restored-elsewhere`);
  writeFileSync(file, 'the replacement');
  const moved = moveAsideCompanions(fresh, 'STAMP');
  t.same(moved.map((m) => path.basename(m)).sort(), fresh.companions.map((c) => `${path.basename(c.path)}.replaced-STAMP`).sort());
  t.notOk(existsSync(`${file}-wal`), 'the captured WAL is no longer at its path');
  t.ok(existsSync(`${file}-wal.replaced-STAMP`), 'it is kept, renamed');
  writeFileSync(`${file}-wal`, 'a WAL created since by someone else');
  t.same(moveAsideCompanions(fresh, 'AGAIN'), [], 'a WAL at the path that is not the captured one stays');
  t.ok(readdirSync(d).includes('tollgate.db-wal'));
});

t.test('the connection guard makes the connection read-only when its file goes, and says so once', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'tollgate.db');
  const db = openDatabase(file);
  t.teardown(() => db.close());
  db.exec('CREATE TABLE IF NOT EXISTS x (v INTEGER)');
  const changes: string[] = [];
  const guard = guardConnectionFile(db, file, (c) => { changes.push(c); }, 60_000);
  t.teardown(() => guard.stop());
  guard.check();
  db.prepare('INSERT INTO x VALUES (1)').run();
  t.same(changes, [], 'unchanged: writes go on');
  renameSync(file, `${file}.moved`);
  guard.check();
  guard.check();
  t.same(changes, ['deleted'], 'told once');
  t.ok(readdirSync(d).some((f) => /^tollgate\.db-wal\.replaced-/.test(f)), 'the old WAL was moved aside by the guard');
  t.throws(() => db.prepare('INSERT INTO x VALUES (2)').run(), /readonly|read-only|query_only/i, 'a write now fails instead of landing in the moved file');
  t.same(db.prepare('SELECT v FROM x').all(), [{ v: 1 }], 'reads still work');
});

t.test('the guard also notices on its own timer', async (t) => {
  const d = dir(t);
  const file = path.join(d, 'tollgate.db');
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const changes: string[] = [];
  const guard = guardConnectionFile(db, file, (c) => { changes.push(c); }, 20);
  t.teardown(() => guard.stop());
  writeFileSync(`${file}.other`, 'x');
  renameSync(`${file}.other`, file);
  const until = Date.now() + 2000;
  while (changes.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.same(changes, ['replaced']);
});

t.test('a path that cannot be examined is not taken for a deletion; a symbolic link is followed to its WAL', async (t) => {
  const d = dir(t);
  const real = path.join(d, 'store.db');
  const link = path.join(d, 'tollgate.db');
  const db = openDatabase(real);
  t.teardown(() => db.close());
  symlinkSync(real, link);
  const id = captureFileIdentity(link);
  t.same(id.companions.map((c) => path.basename(c.path)).sort(), ['store.db-shm', 'store.db-wal'], 'the companions next to the target');
  t.equal(fileIdentityChange(id), undefined);
  if (process.getuid?.() !== 0) {
    chmodSync(d, 0o000);
    t.equal(fileIdentityChange(id), undefined, 'EACCES: unknown, asked again later');
    chmodSync(d, 0o700);
  }
  const loop = path.join(d, 'loop.db');
  symlinkSync(loop, loop); // ELOOP: cannot be examined
  t.equal(fileIdentityChange({ ...id, file: loop }), undefined, 'ELOOP: unknown, not deleted');
  unlinkSync(link);
  t.equal(fileIdentityChange(id), 'deleted');
  t.same(moveAsideCompanions(id, 'S').map((p) => path.basename(p)).sort(), ['store.db-shm.replaced-S', 'store.db-wal.replaced-S'], 'the target\'s companions are the ones moved');
});
