import { statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { inImmediateTransaction, openDatabase } from '../../../src/store/database.ts';
import { appliedMigrations } from '../../../src/store/migrate.ts';
import { MIGRATIONS, type Migration } from '../../../src/store/migrations.ts';

t.test('pragmas and file mode', async (t) => {
  const file = path.join(t.testdir({}), 'data', 'tollgate.db');
  const db = openDatabase(file);
  t.teardown(() => db.close());
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(db.pragma('synchronous', { simple: true }), 1, 'NORMAL');
  t.equal(db.pragma('busy_timeout', { simple: true }), 5000);
  t.equal(db.pragma('foreign_keys', { simple: true }), 1);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
});

t.test('migrations are applied once and are idempotent', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const times = [111, 222];
  const a = openDatabase(file, { now: () => times[0] ?? 0 });
  const first = appliedMigrations(a);
  t.same(first.map((m) => [m.version, m.name, m.appliedAt]), MIGRATIONS.map((m) => [m.version, m.name, 111]));
  a.close();
  const b = openDatabase(file, { now: () => times[1] ?? 0 });
  t.same(appliedMigrations(b), first, 'reopening changes nothing');
  t.ok(b.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tokens'").get());
  b.close();
});

t.test('a later migration is applied on top; two connections opening at once serialise', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  openDatabase(file).close();
  const extra: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'audit_probe', up: 'CREATE TABLE audit_probe (id INTEGER PRIMARY KEY) STRICT;' }];
  const x = openDatabase(file, { migrations: extra });
  const y = openDatabase(file, { migrations: extra });
  t.equal(appliedMigrations(y).length, extra.length);
  x.close();
  y.close();
});

t.test('refuses an edited migration and a database from a newer build', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const newer: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'future', up: 'CREATE TABLE future (id INTEGER) STRICT;' }];
  openDatabase(file, { migrations: newer }).close();
  t.throws(() => openDatabase(file), { code: 'TOLLGATE_ERR_STARTUP_UNSAFE', message: /newer Tollgate/ });
  const edited: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'future', up: 'CREATE TABLE future (id TEXT) STRICT;' }];
  t.throws(() => openDatabase(file, { migrations: edited }), { code: 'TOLLGATE_ERR_STARTUP_UNSAFE', message: /must not be edited/ });
  const gap: Migration[] = [{ version: 2, name: 'x', up: '' }];
  t.throws(() => openDatabase(path.join(t.testdirName, 'other.db'), { migrations: gap }), { code: 'TOLLGATE_ERR_STARTUP_UNSAFE' });
});

t.test('a failing migration leaves nothing behind', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const broken: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', up: 'CREATE TABLE half (id INTEGER) STRICT; SELECT no_such_function();' }];
  t.throws(() => openDatabase(file, { migrations: broken }));
  const db = openDatabase(file);
  t.equal(appliedMigrations(db).length, MIGRATIONS.length, 'the earlier migrations rolled back with it, then applied cleanly');
  t.notOk(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'half'").get());
  db.close();
});

t.test('inImmediateTransaction rolls back on throw', async (t) => {
  const db = openDatabase(':memory:');
  db.exec('CREATE TABLE k (v INTEGER) STRICT');
  t.throws(() => inImmediateTransaction(db, () => {
    db.prepare('INSERT INTO k VALUES (1)').run();
    throw new Error('boom');
  }));
  t.equal((db.prepare('SELECT count(*) AS n FROM k').get() as { n: number }).n, 0);
  t.equal(inImmediateTransaction(db, () => db.prepare('INSERT INTO k VALUES (2)').run().changes), 1);
  db.close();
});
