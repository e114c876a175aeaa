// Admin sessions on tollgate.db: they survive a restart (a second connection, as after one), the
// cookie value is never stored (only its SHA-256), expired sessions are refused and removed, the
// newest `maxSessions` are kept, and sign-out removes the row.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createAdminSessions, sessionIdHash } from '../../../src/admin/admin-sessions.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { sqliteSessionTable } from '../../../src/store/sqlite-admin-sessions.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-sessions-'));
const dbs: Database[] = [];
t.teardown(() => {
  for (const d of dbs) d.close();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
const fresh = () => path.join(dir, `s${n++}.db`);
const open = (file: string) => {
  const db = openDatabase(file);
  dbs.push(db);
  return db;
};
const ada = { email: 'ada@acme.example', issuer: 'https://idp.example', subject: 'ada-1', groups: ['admins', 'sre'] };
const NOW = Date.parse('2026-11-26T10:00:00Z');

t.test('a session made before a restart is valid after it; the cookie value is never stored', async (t) => {
  const file = fresh();
  const before = createAdminSessions({ ttlMs: 3_600_000, table: sqliteSessionTable(open(file)) });
  const { id, session } = before.create(ada, NOW);
  const db = open(file);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const after = createAdminSessions({ ttlMs: 3_600_000, table: sqliteSessionTable(db) });
  t.same(after.get(id, NOW + 60_000), session, 'same email, groups, CSRF token and expiry');
  t.same(after.get(id, NOW + 60_000)?.groups, ['admins', 'sre']);
  const stored = db.prepare('SELECT id_hash FROM admin_sessions').all() as Array<{ id_hash: string }>;
  t.same(stored, [{ id_hash: sessionIdHash(id) }], 'only the hash of the id');
  t.notOk(readFileSync(file).includes(Buffer.from(id)), 'the cookie value is nowhere in the file');
  t.equal(after.get(`${id.slice(0, -1)}A`, NOW), undefined, 'another id: nothing');
});

t.test('expiry, sign-out and the bound', async (t) => {
  const db = open(fresh());
  const sessions = createAdminSessions({ ttlMs: 1000, maxSessions: 3, table: sqliteSessionTable(db) });
  const a = sessions.create(ada, NOW);
  t.ok(sessions.get(a.id, NOW + 999), 'valid until it expires');
  t.equal(sessions.get(a.id, NOW + 1000), undefined, 'expired: refused');
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 0, 'and removed');
  const made = [1, 2, 3, 4, 5].map((i) => sessions.create({ ...ada, subject: `s${i}` }, NOW + 2000 + i));
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 3, 'at most maxSessions');
  t.equal(sessions.get(made[0]!.id, NOW + 2010), undefined, 'the oldest went first');
  t.ok(sessions.get(made[4]!.id, NOW + 2010), 'the newest stay');
  t.equal(sessions.destroy(made[4]!.id), true, 'sign-out removes it');
  t.equal(sessions.get(made[4]!.id, NOW + 2010), undefined);
  t.equal(sessions.destroy(made[4]!.id), false);
  sessions.create({ ...ada, subject: 'late' }, NOW + 10_000);
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions WHERE expires_at <= ?').get(NOW + 10_000) as { n: number }).n, 0, 'expired rows are swept when a session is made');
});

t.test('a row that cannot be read is refused and removed', async (t) => {
  const db = open(fresh());
  const sessions = createAdminSessions({ ttlMs: 60_000, table: sqliteSessionTable(db) });
  const { id } = sessions.create(ada, NOW);
  db.prepare("UPDATE admin_sessions SET groups = '[1]'").run();
  t.equal(sessions.get(id, NOW), undefined);
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 0);
});

t.test('a stored session counts only within the current session_ttl and while its issuer is configured', async (t) => {
  const file = fresh();
  const long = createAdminSessions({ ttlMs: 8 * 3_600_000, table: sqliteSessionTable(open(file)) });
  const a = long.create(ada, NOW);
  const b = long.create({ ...ada, issuer: 'removed-issuer', subject: 'b' }, NOW);
  // restarted with a shorter session_ttl and without `removed-issuer`
  const db = open(file);
  const restarted = createAdminSessions({ ttlMs: 3_600_000, table: sqliteSessionTable(db), accept: (s) => s.issuer === ada.issuer });
  t.ok(restarted.get(a.id, NOW + 60_000), 'within the new ttl');
  t.equal(restarted.get(b.id, NOW + 60_000), undefined, 'its issuer is gone: refused');
  t.equal(restarted.get(a.id, NOW + 3_600_000), undefined, 'past the new ttl, though the old one would allow it');
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 0, 'both removed');
  t.equal(restarted.destroy('short'), false, 'a malformed id is not looked up');
});
