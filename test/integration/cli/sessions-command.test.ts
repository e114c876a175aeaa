// `tollgate sessions list|end`, the real executable against tollgate.db: list shows live admin
// sessions newest first and never an id, its hash or a CSRF token; end signs out one user
// (case-insensitive) or everyone, each run one `admin_sessions_ended` event (actor cli:<os user>)
// committed with the deletion; a session ended is refused by the gateway's session code at once.
// When only the event cannot be written the sessions are ended anyway and the verb fails naming
// what has no event; when the store is locked nothing is ended.
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { createAdminSessions, sessionIdHash } from '../../../src/admin/admin-sessions.ts';
import { sqliteSessionTable } from '../../../src/store/sqlite-admin-sessions.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { breakAuditWrites, restoreAuditWrites } from '../../helpers/audit-down.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { tempDb } from '../../helpers/temp-db.ts';

const ACTOR = `cli:${os.userInfo().username}`;
const HOUR = 3_600_000;

function setup(t: Parameters<typeof tempDb>[0]) {
  const { dir, db, open } = tempDb(t, 'tollgate-sessions-cli-');
  mkdirSync(path.join(dir, 'policies'));
  writeFileSync(path.join(dir, 'org.yaml'), 'organization: T\nteams:\n  sre: { name: SRE, idp_groups: [sre], policy: policies/sre.yaml }\n');
  writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n');
  const config = path.join(dir, 'tollgate.yaml');
  // the CLI opens <data_dir>/tollgate.db: the temp db sits at <dir>/tollgate.db
  writeFileSync(config, 'data_dir: .\norg: ./org.yaml\npolicies: ./policies\naudit: { busy_timeout_ms: 300 }\n');
  const sessions = createAdminSessions({ ttlMs: 8 * HOUR, table: sqliteSessionTable(db) });
  const now = Date.now();
  const user = (email: string) => ({ email, issuer: 'https://idp.example', subject: email.split('@')[0] as string, groups: ['admins'] });
  const made = {
    ada1: sessions.create(user('ada@acme.example'), now - 3 * HOUR),
    bob: sessions.create(user('bob@acme.example'), now - 2 * HOUR),
    ada2: sessions.create(user('ada@acme.example'), now - HOUR),
    gone: sessions.create(user('old@acme.example'), now - 9 * HOUR), // expired
  };
  const tollgate = (...args: string[]) => cliInProcess([...args, '--config', config], {});
  const events = () => (db.prepare("SELECT actor, detail FROM audit_events WHERE type = 'admin_sessions_ended' ORDER BY seq").all() as Array<{ actor: string; detail: string }>)
    .map((e) => ({ actor: e.actor, detail: JSON.parse(e.detail) as unknown }));
  const live = (id: string) => sessions.get(id, Date.now()) !== undefined;
  return { db, open, made, tollgate, events, live };
}

t.test('list: live sessions newest first, no id, hash or CSRF token', async (t) => {
  const { made, tollgate } = setup(t);
  const json = await tollgate('sessions', 'list', '--json');
  t.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<{ email: string; createdAt: string; expiresAt: string; groups: string[] }>;
  t.same(rows.map((r) => r.email), ['ada@acme.example', 'bob@acme.example', 'ada@acme.example'], 'the expired one is not listed; newest first');
  t.same(rows[0]?.groups, ['admins']);
  const table = await tollgate('sessions', 'list', '--email', 'BOB@acme.example');
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /bob@acme\.example/);
  t.notMatch(table.stdout, /ada@/, 'narrowed to one user, case-insensitive');
  for (const m of Object.values(made)) {
    for (const secret of [m.id, sessionIdHash(m.id), m.session.csrfToken]) {
      t.notOk(json.stdout.includes(secret) || table.stdout.includes(secret), 'no id, hash or CSRF token printed');
    }
  }
});

t.test('end: one user, then everyone; each run one event; the sessions are refused at once', async (t) => {
  const { db, made, tollgate, events, live } = setup(t);
  const usage = await tollgate('sessions', 'end');
  t.equal(usage.code, 2, 'neither --email nor --all: a usage error');
  t.match(usage.stderr, /exactly one/);
  t.equal((await tollgate('sessions', 'end', '--all', '--email', 'x@y')).code, 2, 'both: a usage error');
  t.same(events(), [], 'no event for a usage error');

  const ada = await tollgate('sessions', 'end', '--email', 'ADA@acme.example');
  t.equal(ada.code, 0, ada.stderr);
  t.equal(ada.stdout, 'ended 2 admin session(s): ada@acme.example\n');
  t.notOk(live(made.ada1.id) || live(made.ada2.id), "ada's sessions are refused");
  t.ok(live(made.bob.id), "bob's is not");
  t.same(events(), [{ actor: ACTOR, detail: { by: 'cli', target: { email: 'ADA@acme.example' }, sessions: 2, emails: ['ada@acme.example'] } }]);

  const all = await tollgate('sessions', 'end', '--all', '--json');
  t.equal(all.code, 0, all.stderr);
  t.same(JSON.parse(all.stdout), { ended: 1, emails: ['bob@acme.example'] }, 'the expired row goes too, but is not counted');
  t.notOk(live(made.bob.id));
  t.equal((db.prepare('SELECT count(*) AS n FROM admin_sessions').get() as { n: number }).n, 0);
  t.equal(events().length, 2);
  t.match(events()[1], { detail: { target: 'all', sessions: 1 } });
  t.equal((await tollgate('sessions', 'end', '--all')).stdout, 'ended 0 admin session(s)\n', 'nothing left: still an event');
  t.equal(events().length, 3);
  t.match(verifyAuditStore(db), { ok: true }, 'the event chain verifies');
});

t.test('an audit store that refuses the event: sessions are ended anyway, and the verb fails saying so', async (t) => {
  const { db, made, tollgate, events, live } = setup(t);
  breakAuditWrites(db);
  const r = await tollgate('sessions', 'end', '--all');
  restoreAuditWrites(db);
  t.equal(r.code, 1);
  t.match(r.stderr, /ended 3 admin session\(s\) without an admin_sessions_ended event/);
  t.notOk(live(made.bob.id) || live(made.ada1.id), 'ended: access is taken away even without its event');
  t.same(events(), []);
});

t.test('a store locked past the busy timeout: nothing is ended', async (t) => {
  const { open, made, tollgate, events, live } = setup(t);
  const other = open(); // another process holding the write lock
  other.exec('BEGIN IMMEDIATE');
  try {
    const r = await tollgate('sessions', 'end', '--all');
    t.equal(r.code, 1);
    t.match(r.stderr, /no session was ended/);
  } finally {
    other.exec('ROLLBACK');
  }
  t.ok(live(made.bob.id) && live(made.ada1.id), 'all still valid');
  t.same(events(), []);
});

t.test('a deletion the store refuses inside the transaction: nothing ended, no event', async (t) => {
  const { db, made, tollgate, events, live } = setup(t);
  db.exec("CREATE TRIGGER no_delete BEFORE DELETE ON admin_sessions WHEN old.email = 'bob@acme.example' BEGIN SELECT RAISE(ABORT, 'kept'); END");
  const r = await tollgate('sessions', 'end', '--all');
  db.exec('DROP TRIGGER no_delete');
  t.equal(r.code, 1);
  t.match(r.stderr, /no session was ended/);
  t.ok(live(made.ada1.id) && live(made.ada2.id) && live(made.bob.id), 'all or nothing: ada\'s sessions were not ended either');
  t.same(events(), [], 'and no event');
});
