// Admin sessions on tollgate.db: they survive a restart (a second connection, as after one), the
// cookie value is never stored (only its SHA-256), expired sessions are refused (a read never
// writes) and swept at the next sign-in, at most `maxSessions` are kept — over the bound those
// expiring soonest go, even when an older session (made under a longer session_ttl) expires later
// than a newer one, and after a restart with a shorter session_ttl — and sign-out removes the row.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { createAdminSessions, sessionIdHash } from '../../../src/admin/admin-sessions.ts';
import { sqliteSessionTable } from '../../../src/store/sqlite-admin-sessions.ts';
import { tempDb } from '../../helpers/temp-db.ts';

const PREFIX = 'tollgate-sessions-';
const ada = { email: 'ada@acme.example', issuer: 'https://idp.example', subject: 'ada-1', groups: ['admins', 'sre'] };
const NOW = Date.parse('2026-11-26T10:00:00Z');

t.test('a session made before a restart is valid after it; the cookie value is never stored', async (t) => {
  const { file, db: first, open } = tempDb(t, PREFIX);
  const before = createAdminSessions({ ttlMs: 3_600_000, table: sqliteSessionTable(first) });
  const { id, session } = before.create(ada, NOW);
  const db = open();
  db.pragma('wal_checkpoint(TRUNCATE)');
  const after = createAdminSessions({ ttlMs: 3_600_000, table: sqliteSessionTable(db) });
  t.same(after.get(id, NOW + 60_000), session, 'same email, groups, CSRF token and expiry');
  t.same(after.get(id, NOW + 60_000)?.groups, ['admins', 'sre']);
  const stored = db.prepare('SELECT id_hash FROM admin_sessions').all() as Array<{ id_hash: string }>;
  t.same(stored, [{ id_hash: sessionIdHash(id) }], 'only the hash of the id');
  t.notOk(readFileSync(file).includes(Buffer.from(id)), 'the cookie value is nowhere in the file');
  t.equal(after.get(`${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`, NOW), undefined, 'another id (its last character changed): nothing');
});

t.test('expiry, sign-out and the bound', async (t) => {
  const { db } = tempDb(t, PREFIX);
  const sessions = createAdminSessions({ ttlMs: 1000, maxSessions: 3, table: sqliteSessionTable(db) });
  const a = sessions.create(ada, NOW);
  t.ok(sessions.get(a.id, NOW + 999), 'valid until it expires');
  t.equal(sessions.get(a.id, NOW + 1000), undefined, 'expired: refused');
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 1, 'a read writes nothing: the row waits for the sweep');
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

t.test('over the bound, the session that expires soonest goes, not the oldest', async (t) => {
  const { db } = tempDb(t, PREFIX);
  const table = sqliteSessionTable(db);
  // the same tollgate.db under session_ttl 8 h, then 30 min, then 8 h again (restarts in between)
  const long = createAdminSessions({ ttlMs: 8 * 3_600_000, maxSessions: 2, table });
  const short = createAdminSessions({ ttlMs: 30 * 60_000, maxSessions: 2, table });
  const oldest = long.create({ ...ada, subject: 'oldest' }, NOW); // expires NOW + 8 h
  const middle = short.create({ ...ada, subject: 'middle' }, NOW + 1000); // newer, but expires NOW + 30 min + 1 s
  const stored = () => (db.prepare('SELECT subject FROM admin_sessions ORDER BY created_at').all() as Array<{ subject: string }>).map((r) => r.subject);
  t.same(stored(), ['oldest', 'middle'], 'at the bound: nothing trimmed yet');
  const newest = long.create({ ...ada, subject: 'newest' }, NOW + 2000); // one over the bound
  t.same(stored(), ['oldest', 'newest'], 'the newer session that expires first was dropped');
  t.equal(long.get(middle.id, NOW + 3000), undefined, 'its cookie no longer signs in');
  t.ok(long.get(oldest.id, NOW + 3000), 'the oldest session, which expires last, stays');
  t.ok(long.get(newest.id, NOW + 3000));
});

t.test('a row that cannot be read is refused (and left for the sweep)', async (t) => {
  const { db } = tempDb(t, PREFIX);
  const sessions = createAdminSessions({ ttlMs: 60_000, table: sqliteSessionTable(db) });
  const { id } = sessions.create(ada, NOW);
  db.prepare("UPDATE admin_sessions SET groups = '[1]'").run();
  t.equal(sessions.get(id, NOW), undefined);
  sessions.create({ ...ada, subject: 'later' }, NOW + 60_000);
  t.equal((db.prepare("SELECT count(*) AS n FROM admin_sessions WHERE groups = '[1]'").get() as { n: number }).n, 0, 'swept once expired');
});

t.test('a stored session counts only within the current session_ttl and while its issuer is configured', async (t) => {
  const { db: first, open } = tempDb(t, PREFIX);
  const long = createAdminSessions({ ttlMs: 8 * 3_600_000, table: sqliteSessionTable(first) });
  const a = long.create(ada, NOW);
  const b = long.create({ ...ada, issuer: 'removed-issuer', subject: 'b' }, NOW);
  // restarted with a shorter session_ttl and without `removed-issuer`
  const db = open();
  const restarted = createAdminSessions({ ttlMs: 3_600_000, table: sqliteSessionTable(db), accept: (s) => s.issuer === ada.issuer });
  t.ok(restarted.get(a.id, NOW + 60_000), 'within the new ttl');
  t.equal(restarted.get(b.id, NOW + 60_000), undefined, 'its issuer is gone: refused');
  t.equal(restarted.get(a.id, NOW + 3_600_000), undefined, 'past the new ttl, though the old one would allow it');
  t.same(db.prepare('SELECT DISTINCT expires_at FROM admin_sessions').all(), [{ expires_at: NOW + 3_600_000 }], 'stored expiries capped to the new ttl at start');
  t.equal(restarted.destroy('short'), false, 'a malformed id is not looked up');
});

t.test('after a restart with a shorter session_ttl, the bound drops what really ends soonest', async (t) => {
  const { db: first, open } = tempDb(t, PREFIX);
  const before = createAdminSessions({ ttlMs: 8 * 3_600_000, maxSessions: 2, table: sqliteSessionTable(first) });
  const old = before.create({ ...ada, subject: 'old' }, NOW); // stored expiry NOW + 8 h
  // restarted with session_ttl 1 h: `old` now ends at NOW + 1 h
  const db = open();
  const after = createAdminSessions({ ttlMs: 3_600_000, maxSessions: 2, table: sqliteSessionTable(db) });
  const mid = after.create({ ...ada, subject: 'mid' }, NOW + 60_000); // ends NOW + 1 h 1 min
  after.create({ ...ada, subject: 'new' }, NOW + 120_000); // one over the bound
  t.equal(after.get(old.id, NOW + 180_000), undefined, 'the session that ends first (under the new ttl) was dropped');
  t.ok(after.get(mid.id, NOW + 180_000), 'the newer one that outlives it stays');
});

t.test('a cap the store could not take at start is applied with the next sign-in', async (t) => {
  const { db: first, open } = tempDb(t, PREFIX);
  const before = createAdminSessions({ ttlMs: 8 * 3_600_000, maxSessions: 2, table: sqliteSessionTable(first) });
  const old = before.create({ ...ada, subject: 'old' }, NOW);
  const db = open();
  db.pragma('busy_timeout = 0');
  const locker = open();
  locker.exec('BEGIN IMMEDIATE');
  const after = createAdminSessions({ ttlMs: 3_600_000, maxSessions: 2, table: sqliteSessionTable(db) }); // the cap meets a locked store
  locker.exec('ROLLBACK');
  t.same(db.prepare('SELECT expires_at FROM admin_sessions').all(), [{ expires_at: NOW + 8 * 3_600_000 }], 'not capped yet');
  const mid = after.create({ ...ada, subject: 'mid' }, NOW + 60_000);
  after.create({ ...ada, subject: 'new' }, NOW + 120_000);
  t.equal(after.get(old.id, NOW + 180_000), undefined, 'capped with the sign-in: the bound dropped what ends first');
  t.ok(after.get(mid.id, NOW + 180_000));
});
