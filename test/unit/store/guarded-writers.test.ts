// The proxy thread's writers check the database file before they write (guardConnectionFile's
// check): once the file was moved or deleted, a sign-in's admin session and identity binding fail
// instead of landing in the moved file — even within the second before the guard's own timer.
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openDatabase } from '../../../src/store/database.ts';
import { guardConnectionFile } from '../../../src/store/file-identity.ts';
import { sqliteSessionTable } from '../../../src/store/sqlite-admin-sessions.ts';
import { sqliteIdentityBindings } from '../../../src/store/sqlite-identity-bindings.ts';

t.test('session and identity writes after the file moved fail, and write nothing there', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-guarded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tollgate.db');
  const db = openDatabase(file);
  t.teardown(() => db.close());
  const guard = guardConnectionFile(db, file, () => {}, 60_000); // its timer never fires in this test
  t.teardown(() => guard.stop());
  const sessions = sqliteSessionTable(db, { beforeWrite: guard.check });
  const identities = sqliteIdentityBindings(db, { beforeWrite: guard.check });
  const now = Date.now();
  const session = { email: 'ada@acme.example', issuer: 'https://idp.example', subject: 'ada', groups: ['admins'], csrfToken: 'c', createdAt: now, expiresAt: now + 60_000 };
  sessions.put('a'.repeat(64), session, 100);
  t.ok(identities.bind({ issuer: 'https://idp.example', subject: 'ada', email: 'ada@acme.example' }, now, new Set(['https://idp.example'])).ok, 'bound while the file is in place');
  renameSync(file, `${file}.moved`);
  t.throws(() => sessions.put('b'.repeat(64), session, 100), /readonly|read-only/i, 'a new session fails');
  t.throws(() => identities.bind({ issuer: 'https://idp.example', subject: 'bob', email: 'bob@acme.example' }, now, new Set(['https://idp.example'])), /readonly|read-only/i, 'a new binding fails');
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 1, 'only the session from before');
  t.equal((db.prepare('SELECT count(*) AS n FROM sso_identities').get() as { n: number }).n, 1, 'only the binding from before');
});
