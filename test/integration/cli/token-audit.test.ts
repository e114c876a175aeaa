// Break-glass tokens are audited: the real CLI (`tollgate token issue|revoke`, run in process) writes
// `token_issued` / `token_revoked` (actor cli:<os user>, never the token or its hash) into
// tollgate.db's event chain, in the same transaction as the token change. When the audit store
// cannot be written — the event insert fails, the store is locked past audit.busy_timeout_ms, the
// file is read-only, the data dir cannot be created — `token issue` fails without printing (or
// storing) a token; `token revoke` still revokes when only its event fails (and fails naming what
// has no event), and revokes nothing when the store is locked.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase, type Database } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { breakAuditWrites, restoreAuditWrites } from '../../helpers/audit-down.ts';
import type { CliResult } from '../../helpers/cli-in-process.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-token-audit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'policies'));
writeFileSync(path.join(dir, 'org.yaml'), 'organization: T\nteams:\n  sre: { name: SRE, idp_groups: [sre], policy: policies/sre.yaml }\n');
writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n');
const configFile = (name: string, dataDir: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, `data_dir: ${dataDir}\norg: ./org.yaml\npolicies: ./policies\naudit: { busy_timeout_ms: 300 }\n`);
  return file;
};
const config = configFile('tollgate.yaml', './data');
const dbFile = path.join(dir, 'data/tollgate.db');
const ACTOR = `cli:${os.userInfo().username}`;

/** The real executable, in a process of its own. */
const tollgate = (args: string[], configPath = config) => cliInProcess([...args, '--config', configPath], {});

const db: Database = openDatabase(dbFile);
t.teardown(() => db.close());
interface EventRow { seq: number; type: string; actor: string; detail: string }
const events = (): EventRow[] => db.prepare('SELECT seq, type, actor, detail FROM audit_events ORDER BY seq').all() as EventRow[];
const detailOf = (e: EventRow | undefined) => JSON.parse(e?.detail ?? 'null') as Record<string, unknown>;
const tokenCount = (subject: string) => (db.prepare('SELECT count(*) AS n FROM tokens WHERE subject = ?').get(subject) as { n: number }).n;
const head = () => db.prepare("SELECT head_seq, head_hash FROM audit_chain WHERE chain = 'events'").get();
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const TOKEN = /^tg_[A-Za-z0-9_-]{43}\n$/;

t.test('token issue and revoke write their events, with the detail and no secret', async (t) => {
  const [user, agent] = await Promise.all([
    tollgate(['token', 'issue', '--user', 'ana@acme.example', '--team', 'sre,web', '--project', 'payments', '--ttl', '2h']),
    tollgate(['token', 'issue', '--agent', 'sre-bot', '--team', 'sre']),
  ]);
  t.equal(user.code, 0, user.stderr);
  t.equal(agent.code, 0, agent.stderr);
  t.match(user.stdout, TOKEN, 'only the token is printed');
  t.match(agent.stdout, TOKEN);
  const issued = events().filter((e) => e.type === 'token_issued');
  t.equal(issued.length, 2);
  t.ok(issued.every((e) => e.actor === ACTOR), `actor ${ACTOR}`);
  const ana = db.prepare("SELECT id, created_at, expires_at FROM tokens WHERE subject = 'ana@acme.example'").get() as { id: string; created_at: number; expires_at: number };
  t.same(detailOf(issued.find((e) => detailOf(e)['subject'] === 'ana@acme.example')), {
    by: 'cli', token_id: ana.id, kind: 'user', subject: 'ana@acme.example', teams: ['sre', 'web'], projects: ['payments'], roles: [],
    issued_by: ACTOR, ttl_ms: 7_200_000, expires_at: ana.expires_at,
  });
  t.equal(ana.expires_at - ana.created_at, 7_200_000);
  t.match(detailOf(issued.find((e) => detailOf(e)['subject'] === 'sre-bot')), { by: 'cli', kind: 'agent', teams: ['sre'], projects: null, ttl_ms: 12 * 3_600_000 });

  const revoked = await tollgate(['token', 'revoke', '--user', 'ana@acme.example']);
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(revoked.stdout, /revoked 1 token\(s\)/);
  const ev = events().at(-1);
  t.match(ev, { type: 'token_revoked', actor: ACTOR });
  t.same(detailOf(ev), { by: 'cli', target: { user: 'ana@acme.example' }, token_ids: [ana.id], subjects: ['ana@acme.example'] });

  const all = events().map((e) => `${e.actor} ${e.detail}`).join('\n');
  for (const token of [user.stdout.trim(), agent.stdout.trim()]) {
    t.notOk(all.includes(token), 'no event holds the token');
    t.notOk(all.includes(sha256(token)), 'no event holds its hash');
  }
  t.match(verifyAuditStore(db), { ok: true, chains: [{ chain: 'requests' }, { chain: 'events', ok: true, checked: 3 }] });
});

t.test('when the audit event cannot be written, issue prints and keeps no token; revoke still revokes', async (t) => {
  let kept = '';
  const before = await tokenIssue({ dbFile, user: 'kim@acme.example', team: 'sre', write: (s) => { kept = s.trim(); } });
  const headBefore = head();
  const eventsBefore = events().length;
  breakAuditWrites(db);
  t.teardown(() => restoreAuditWrites(db, { ifExists: true }));

  const [issue, revoke] = await Promise.all([
    tollgate(['token', 'issue', '--user', 'bob@acme.example', '--team', 'sre']),
    tollgate(['token', 'revoke', before.id]),
  ]);
  t.equal(issue.code, 1);
  t.equal(issue.stdout, '', 'nothing on stdout');
  t.notMatch(issue.stderr, /tg_/, 'no token anywhere in the output');
  t.match(issue.stderr, /simulated audit store failure\): no token was issued \[TOLLGATE_ERR_AUDIT\]/);
  t.equal(tokenCount('bob@acme.example'), 0, 'the token row was rolled back with the event');

  t.equal(revoke.code, 1, 'the verb fails…');
  t.match(revoke.stderr, new RegExp(`revoked 1 token\\(s\\) \\(${before.id}\\) without a token_revoked event \\[TOLLGATE_ERR_AUDIT\\]`));
  const row = db.prepare('SELECT revoked_at FROM tokens WHERE id = ?').get(before.id) as { revoked_at: number | null };
  t.ok(row.revoked_at, '…but the revocation stands');
  t.match(kept, /^tg_/, 'the token issued before the fault was printed');

  t.equal(events().length, eventsBefore, 'no event was written');
  t.same(head(), headBefore, 'the chain head did not move');
  restoreAuditWrites(db);
  t.ok(verifyAuditStore(db).ok);
});

t.test('a store locked past audit.busy_timeout_ms: no token, and nothing revoked', async (t) => {
  const kept = await tokenIssue({ dbFile, user: 'lee@acme.example', team: 'sre', write: () => undefined });
  db.exec('BEGIN IMMEDIATE');
  let issue: CliResult;
  let revoke: CliResult;
  try {
    [issue, revoke] = await Promise.all([
      tollgate(['token', 'issue', '--user', 'lee@acme.example', '--team', 'sre']),
      tollgate(['token', 'revoke', '--user', 'lee@acme.example']),
    ]);
  } finally {
    db.exec('ROLLBACK');
  }
  t.equal(issue.code, 1);
  t.equal(issue.stdout, '');
  t.match(issue.stderr, /cannot be written \(SQLITE_BUSY.*no token was issued \[TOLLGATE_ERR_AUDIT\]/);
  t.equal(tokenCount('lee@acme.example'), 1, 'only the token issued before the lock');
  t.equal(revoke.code, 1);
  t.match(revoke.stderr, /cannot be written \(SQLITE_BUSY.*nothing was revoked \[TOLLGATE_ERR_AUDIT\]/);
  t.equal((db.prepare('SELECT revoked_at FROM tokens WHERE id = ?').get(kept.id) as { revoked_at: number | null }).revoked_at, null);
});

t.test('a data dir that cannot be created: no token', async (t) => {
  writeFileSync(path.join(dir, 'not-a-dir'), 'a file where the data dir should be\n');
  const r = await tollgate(['token', 'issue', '--user', 'max@acme.example', '--team', 'sre'], configFile('blocked.yaml', './not-a-dir/data'));
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /cannot be written \((ENOTDIR|EEXIST).*no token was issued \[TOLLGATE_ERR_AUDIT\]/);
});

// root ignores file modes: the file is made immutable instead (needs CAP_LINUX_IMMUTABLE and a
// file system with attributes).
const asRoot = process.getuid?.() === 0;
function chattrWorks(): boolean {
  const probe = path.join(dir, 'chattr-probe');
  writeFileSync(probe, '');
  try {
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const readOnlySkip = asRoot && !chattrWorks() ? 'running as root without chattr +i: the store cannot be made read-only' : false;

t.test('a read-only store: no token', { skip: readOnlySkip }, async (t) => {
  const roDir = path.join(dir, 'ro');
  const roConfig = configFile('ro.yaml', './ro');
  openDatabase(path.join(roDir, 'tollgate.db')).close();
  const file = path.join(roDir, 'tollgate.db');
  let undo: () => void;
  if (asRoot) {
    execFileSync('chattr', ['+i', file], { stdio: 'ignore' });
    undo = () => execFileSync('chattr', ['-i', file], { stdio: 'ignore' });
  } else {
    chmodSync(file, 0o444);
    chmodSync(roDir, 0o555);
    undo = () => { chmodSync(roDir, 0o700); chmodSync(file, 0o600); };
  }
  t.teardown(undo);
  const r = await tollgate(['token', 'issue', '--user', 'ro@acme.example', '--team', 'sre'], roConfig);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /cannot be written \((EPERM|EACCES|SQLITE_READONLY|SQLITE_CANTOPEN).*no token was issued \[TOLLGATE_ERR_AUDIT\]/);
  undo();
  const ro = openDatabase(file);
  t.teardown(() => ro.close());
  t.equal((ro.prepare('SELECT count(*) AS n FROM tokens').get() as { n: number }).n, 0);
});
