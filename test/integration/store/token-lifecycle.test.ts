import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { tokenIssue, tokenList, tokenRevoke } from '../../../src/identity/token-commands.ts';
import { createTokenService, type IssuedToken } from '../../../src/identity/token-service.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { createSqliteTokenStore } from '../../../src/store/sqlite-token-store.ts';

const H = 3_600_000;
const T0 = 1_800_000_000_000;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function open(file: string) {
  const db = openDatabase(file);
  return { db, svc: createTokenService(createSqliteTokenStore(db)) };
}

t.test('issue → verify → revoke → verify fails; expiry; second connection sees revocation', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const a = open(file);
  const b = open(file);
  t.teardown(() => {
    a.db.close();
    b.db.close();
  });
  const { token, record } = await a.svc.issueToken({ kind: 'user', subject: 'ana@acme.example', teams: ['sre', 'backend'], ttlMs: 2 * H, issuedBy: 'test', now: T0 });
  t.match(await a.svc.verifyToken(token, T0 + 1), { ok: true, record: { id: record.id, teams: ['sre', 'backend'] } });
  t.match(await b.svc.verifyToken(token, T0 + 1), { ok: true }, 'the second connection sees the token');

  t.equal((await a.svc.revoke({ id: record.id }, T0 + 10)).length, 1);
  t.match(await a.svc.verifyToken(token, T0 + 11), { ok: false, rejection: 'revoked' }, 'same service: at once');
  t.match(await b.svc.verifyToken(token, T0 + 11), { ok: true }, 'other connection: still cached…');
  t.match(await b.svc.verifyToken(token, T0 + 1 + b.svc.revocationBoundMs), { ok: false, rejection: 'revoked' }, '…but not beyond the bound');

  const short = await a.svc.issueToken({ kind: 'agent', subject: 'sre-monitor', teams: ['sre'], ttlMs: H, issuedBy: 'test', now: T0 });
  t.match(await b.svc.verifyToken(short.token, T0 + H - 1), { ok: true });
  t.match(await b.svc.verifyToken(short.token, T0 + H), { ok: false, rejection: 'expired' }, 'expiry is checked even on a cached record');
});

t.test('the token is never stored in plain text (db, -wal, -shm)', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const { db, svc } = open(file);
  const issued: IssuedToken[] = [];
  for (let i = 0; i < 5; i++) issued.push(await svc.issueToken({ kind: 'user', subject: `u${i}@acme.example`, teams: ['sre'], issuedBy: 'test', now: T0 }));
  for (const x of issued) await svc.verifyToken(x.token, T0 + 1);
  const files = [file, `${file}-wal`, `${file}-shm`].filter((f) => existsSync(f));
  t.ok(files.includes(`${file}-wal`), 'the WAL is there to scan while the connection is open');
  const scan = (): void => {
    for (const f of files.filter((x) => existsSync(x))) {
      const bytes = readFileSync(f);
      for (const x of issued) {
        t.equal(bytes.indexOf(x.token), -1, `${path.basename(f)} does not hold a token`);
        t.equal(bytes.indexOf(x.token.slice(3)), -1, `${path.basename(f)} does not hold the token body`);
        t.equal(bytes.indexOf(Buffer.from(x.token.slice(3), 'base64url')), -1, `${path.basename(f)} does not hold the raw secret`);
      }
    }
  };
  scan();
  t.ok(readFileSync(`${file}-wal`).includes(issued[0]?.record.hash ?? 'x') || readFileSync(file).includes(issued[0]?.record.hash ?? 'x'), 'the hash is what is stored');
  db.close();
  scan();
});

t.test('CLI commands: issue prints only the token; list never shows it; revoke from another process', async (t) => {
  const file = path.join(t.testdir({}), 'tollgate.db');
  const out: string[] = [];
  const issued = await tokenIssue({ dbFile: file, user: 'ana@acme.example', team: 'sre', ttl: '30m', issuedBy: 'cli:test', write: (s) => out.push(s) });
  t.same(out, [`${issued.token}\n`]);
  const agent = await tokenIssue({ dbFile: file, agent: 'sre-monitor', team: 'sre', project: 'production', ttl: '7d', write: () => {} });
  const rows = await tokenList({ dbFile: file });
  t.equal(rows.length, 2);
  t.notOk(JSON.stringify(rows).includes(issued.token));
  t.notOk(/[0-9a-f]{64}/.test(JSON.stringify(rows)), 'no hash in lists');
  t.match(await tokenList({ dbFile: file, agent: 'sre-monitor' }), [{ id: agent.id, kind: 'agent', teams: ['sre'], projects: ['production'], status: 'active' }]);
  const exp = rows.find((r) => r.id === issued.id)!;
  t.equal(Date.parse(exp.expiresAt) - Date.parse(exp.createdAt), 30 * 60_000);

  // A long-lived gateway connection verifies, then another process revokes through the CLI library.
  const { db, svc } = open(file);
  t.teardown(() => db.close());
  const now = Date.now();
  t.match(await svc.verifyToken(issued.token, now), { ok: true });
  const script = `
    const { tokenRevoke } = await import(${JSON.stringify(path.join(ROOT, 'src/identity/token-commands.ts'))});
    const rows = await tokenRevoke({ dbFile: ${JSON.stringify(file)}, user: 'ana@acme.example' });
    process.stdout.write(JSON.stringify(rows.map((r) => r.id)));`;
  const child = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
  t.same(JSON.parse(child.stdout), [issued.id]);
  t.match(await svc.verifyToken(issued.token, now + svc.revocationBoundMs), { ok: false, rejection: 'revoked' }, 'seen by the first process within the bound');
  t.match(await tokenList({ dbFile: file, user: 'ana@acme.example' }), [{ status: 'revoked' }]);
  t.same(await tokenList({ dbFile: file, user: 'ana@acme.example', activeOnly: true }), []);

  t.same((await tokenRevoke({ dbFile: file, id: agent.id })).map((r) => r.id), [agent.id]);
  t.same(await tokenRevoke({ dbFile: file, id: agent.id }), [], 'revoking twice revokes nothing');
});

t.test('CLI commands refuse bad usage', async (t) => {
  const dbFile = path.join(t.testdir({}), 'tollgate.db');
  const w = { write: () => {} };
  await t.rejects(tokenIssue({ dbFile, team: 'sre', ...w }), { code: 'TOLLGATE_ERR_USAGE' });
  await t.rejects(tokenIssue({ dbFile, user: 'a@b.c', agent: 'x', team: 'sre', ...w }), { code: 'TOLLGATE_ERR_USAGE' });
  await t.rejects(tokenIssue({ dbFile, user: 'a@b.c', team: 'sre', ttl: '12 hours', ...w }), { code: 'TOLLGATE_ERR_USAGE', message: /--ttl/ });
  await t.rejects(tokenIssue({ dbFile, agent: 'bot', team: 'sre,backend', ...w }), { code: 'TOLLGATE_ERR_USAGE' });
  await t.rejects(tokenRevoke({ dbFile }), { code: 'TOLLGATE_ERR_USAGE' });
  await t.rejects(tokenRevoke({ dbFile, id: 'tok_1', user: 'a@b.c' }), { code: 'TOLLGATE_ERR_USAGE' });
  const multi = await tokenIssue({ dbFile, user: 'a@b.c', team: ['sre', 'backend'], ...w });
  t.match(await tokenList({ dbFile, user: 'a@b.c' }), [{ id: multi.id, teams: ['sre', 'backend'] }]);
});
