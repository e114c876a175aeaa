// kill -9 in the middle of a load (security case 7.03): a child-process gateway forwards requests to
// an upstream that logs each one; SIGKILL; restart; every request the upstream saw, and every
// response the client received, has its audit row; the file passes integrity_check; the chain verifies.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import http from 'node:http';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const repo = path.resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-crash-'));
const up = await startUpstream();
t.teardown(async () => { await up.close(); rmSync(dir, { recursive: true, force: true }); });
mkdirSync(path.join(dir, 'policies'));
writeFileSync(path.join(dir, 'org.yaml'), 'organization: T\nteams:\n  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }\nagents:\n  alpha-bot: { name: Bot, team: alpha }\n');
writeFileSync(path.join(dir, 'policies/alpha.yaml'), 'team: alpha\nrules:\n  - { host: echo.allowed.test, action: allow }\n  - { host: "*", action: deny }\n');
writeFileSync(path.join(dir, 'tollgate.yaml'), [
  'listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }', 'data_dir: ./data', 'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
  `upstreams:\n  echo.allowed.test: 127.0.0.1:${up.port}`, 'log: { level: warn }', '',
].join('\n'));
const dbFile = path.join(dir, 'data', 'tollgate.db');
openDatabase(dbFile).close();
let token = '';
await tokenIssue({ dbFile, agent: 'alpha-bot', team: 'alpha', ttl: '1h', write: (s) => { token += s.trim(); } });

function startChild(): Promise<{ child: ChildProcess; port: number }> {
  // `env -i` execs bin/tollgate with a clean environment: tap's process tracker adds its loaders to
  // the environment of every spawn, and they must not reach the gateway. (Same pid: SIGKILL hits it.)
  const child = spawn('/usr/bin/env', ['-i', `PATH=${process.env['PATH'] ?? '/usr/bin:/bin'}`, `HOME=${os.tmpdir()}`, path.join(repo, 'bin/tollgate'), 'serve', '--config', path.join(dir, 'tollgate.yaml')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 90_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"proxy":"127\.0\.0\.1:(\d+)"/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]) }); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited ${code}: ${out}`)); });
  });
}

t.test('SIGKILL under load loses no record of anything that left', async (t) => {
  // log level warn hides the listening line; run at info for this test
  writeFileSync(path.join(dir, 'tollgate.yaml'), (await import('node:fs')).readFileSync(path.join(dir, 'tollgate.yaml'), 'utf8').replace('level: warn', 'level: info'));
  const runs = 1; // each gateway start costs seconds (tsx); keep the file under 30 s
  const received = new Set<string>();
  for (let run = 0; run < runs; run++) {
    const { child, port } = await startChild();
    const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const auth = `Basic ${Buffer.from(`alpha:${token}`).toString('base64')}`;
    let i = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const id = `r${run}-${i++}`;
        try {
          const status = await new Promise<number>((resolve, reject) => {
            const req = http.request({ host: '127.0.0.1', port, agent: httpAgent, path: `http://echo.allowed.test/${id}`, headers: { 'proxy-authorization': auth, host: 'echo.allowed.test' } }, (res) => {
              res.resume();
              res.once('end', () => resolve(res.statusCode ?? 0));
              res.once('error', reject);
            });
            req.once('error', reject);
            req.end();
          });
          if (status === 200) received.add(`/${id}`);
        } catch {
          // the gateway died mid-request
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    const before = received.size;
    for (let w = 0; w < 200 && received.size === before; w++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    stop = true;
    await Promise.all(workers);
    httpAgent.destroy();
  }
  // restart once more: rows left open by the kills are completed at start
  const { child } = await startChild();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));

  const db = openDatabase(dbFile);
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  const paths = new Set((db.prepare('SELECT path FROM audit_requests').all() as Array<{ path: string }>).map((r) => r.path));
  const seen = up.seen.map((s) => s.url);
  t.ok(seen.length > 20, `the upstream saw ${seen.length} requests`);
  const missing = seen.filter((u) => !paths.has(u));
  t.same(missing, [], 'every request the upstream saw has its row');
  t.same([...received].filter((p) => !paths.has(p)), [], 'every response the client received has its row');
  const v = verifyAuditStore(db);
  t.match(v, { ok: true, openRows: 0 });
  const orphans = (db.prepare("SELECT count(*) AS n FROM audit_requests WHERE error LIKE 'gateway stopped before%'").get() as { n: number }).n;
  t.comment(`${seen.length} forwarded, ${received.size} answered, ${orphans} rows completed after a kill`);
});
