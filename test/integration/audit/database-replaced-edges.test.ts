// Two edges of a database file deleted or replaced under a running gateway (security case 7.09;
// database-replaced.test.ts has the main cases): a backup restored and the gateway stopped within
// the second before its idle check — the old WAL must still be moved aside, not replayed into the
// backup by the next opener — and `audit.fail_open_non_metered: true`, which must not let traffic
// through a store that is gone until a restart.
import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import t from 'tap';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

function get(port: number, p: string, token: string): Promise<{ status: number; reason: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: 'GET', path: `http://echo.test${p}`, agent: false,
      headers: { host: 'echo.test', 'proxy-authorization': `Basic ${Buffer.from(`alpha:${token}`).toString('base64')}`, connection: 'close' },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: res.headers['x-tollgate-reason'] as string | undefined }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function waitComplete(dbFile: string, like: string, n: number): Promise<boolean> {
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    const db = new BetterSqlite3(dbFile, { readonly: true });
    try {
      if ((db.prepare("SELECT count(*) AS n FROM audit_requests WHERE path LIKE ? AND state = 'complete'").get(like) as { n: number }).n >= n) return true;
    } finally {
      db.close();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('a backup restored, then the gateway stopped at once: the old WAL is moved aside, not replayed into the backup', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const tg = await startTestGateway({ upstreams: { 'echo.test': up.port } });
  t.teardown(() => tg.stop());
  const dbFile = path.join(tg.dir, 'data', 'tollgate.db');
  t.equal((await get(tg.proxyPort, '/in-backup', tg.token)).status, 200);
  t.ok(await waitComplete(dbFile, '/in-backup', 1));
  const own = new BetterSqlite3(dbFile);
  const backup = `${dbFile}.backup`;
  own.prepare('VACUUM INTO ?').run(backup);
  own.close();
  for (let i = 0; i < 3; i++) t.equal((await get(tg.proxyPort, `/after-backup/${i}`, tg.token)).status, 200);
  t.ok(await waitComplete(dbFile, '/after-backup/%', 3));
  const backupBytes = readFileSync(backup);
  renameSync(backup, dbFile);
  await tg.gw.stop(500); // at once: no request since, and the idle check has not run yet
  t.same(readFileSync(dbFile), backupBytes, 'the stop did not write to the restored file');
  t.notOk(existsSync(`${dbFile}-wal`), 'no WAL of the old database is left at the path');
  const aside = readdirSync(path.dirname(dbFile)).filter((f) => f.includes('.replaced-'));
  t.ok(aside.some((f) => f.startsWith('tollgate.db-wal.replaced-')), `the old WAL was kept, renamed (${aside.join(', ')})`);
  const next = new BetterSqlite3(dbFile);
  t.teardown(() => next.close());
  t.equal((next.prepare("SELECT count(*) AS n FROM audit_requests WHERE path LIKE '/after-backup/%'").get() as { n: number }).n, 0,
    'the next opener sees the backup alone, not the traffic after it');
  t.equal(next.pragma('integrity_check', { simple: true }), 'ok');
});

t.test('fail_open_non_metered does not apply to a deleted database: refused until a restart, nothing upstream', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const tg = await startTestGateway({ upstreams: { 'echo.test': up.port }, extraYaml: 'audit: { busy_timeout_ms: 200, fail_open_non_metered: true }' });
  t.teardown(() => tg.stop());
  const dbFile = path.join(tg.dir, 'data', 'tollgate.db');
  t.equal((await get(tg.proxyPort, '/before', tg.token)).status, 200);
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) unlinkSync(f);
  await new Promise((r) => setTimeout(r, 1500)); // past the idle check
  const seen = up.seen.length;
  for (let i = 0; i < 3; i++) {
    const r = await get(tg.proxyPort, `/after/${i}`, tg.token);
    t.equal(r.status, 503, `request ${i} refused`);
    t.equal(r.reason, 'audit_unavailable');
  }
  t.equal(up.seen.length, seen, 'nothing reached the upstream');
});
