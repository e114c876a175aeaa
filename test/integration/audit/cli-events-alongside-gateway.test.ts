// A CLI process appends audit events while the gateway is running and writing: real `tollgate
// token issue|revoke` processes commit their events on tollgate.db while the gateway's writer
// thread commits request rows (proxy traffic) and its own events (admin audit exports). Both
// chains still verify — with `tollgate audit verify` during the load and again after a stop —
// and the event chain holds the CLI's and the gateway's events interleaved.
import { rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import t from 'tap';
import { createTokenService } from '../../../src/identity/token-service.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { verifyAuditStore } from '../../../src/store/sqlite-audit-reader.ts';
import { createSqliteTokenStore } from '../../../src/store/sqlite-token-store.ts';
import { runTollgate, sleep, until } from '../../helpers/cli-process.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const up = await startUpstream();
const tg = await startTestGateway({ upstreams: { 'echo.allowed.test': up.port } });
const config = path.join(tg.dir, 'tollgate.yaml');
const db = openDatabase(path.join(tg.dir, 'data', 'tollgate.db'));
let gatewayStopped = false;
const stopGateway = async () => {
  if (!gatewayStopped) await tg.gw.stop(500);
  gatewayStopped = true;
};
t.teardown(async () => {
  db.close();
  await stopGateway();
  rmSync(tg.dir, { recursive: true, force: true });
  await up.close();
});

const tollgate = (...args: string[]) => runTollgate(args, config);

// An admin token (made straight through the service) lets the gateway write events of its own.
const admin = await createTokenService(createSqliteTokenStore(db)).issueToken({
  kind: 'user', subject: 'root@acme.example', teams: ['alpha'], roles: ['admin'], issuedBy: 'test', now: Date.now(),
});
interface EventRow { seq: number; type: string; actor: string }
const events = () => db.prepare('SELECT seq, type, actor FROM audit_events ORDER BY seq').all() as EventRow[];
const gatewayEvents = () => events().filter((e) => e.type === 'audit_exported').length;
t.test('CLI events and the gateway writer share the chains without forking them', async (t) => {
  let stop = false;
  let forwarded = 0;
  let exports = 0;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const proxyLoad = async () => {
    for (let i = 0; !stop; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: tg.proxyPort, agent: httpAgent, path: `http://echo.allowed.test/load/${i}`, headers: { 'proxy-authorization': tg.proxyAuth, host: 'echo.allowed.test' } }, (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
        });
        req.once('error', reject);
        req.end();
      });
      if (status === 200) forwarded++;
      await sleep(5); // a steady load, not a CPU hog: other test files share the machine
    }
  };
  const adminLoad = async () => {
    while (!stop) {
      const res = await fetch(`${tg.adminUrl}/api/v1/audit/export?format=jsonl&records=events&since=1m`, { headers: { authorization: `Bearer ${admin.token}` } });
      await res.text();
      if (res.status === 200) exports++;
      await sleep(25);
    }
  };
  const loads = [proxyLoad(), adminLoad()];
  t.teardown(async () => { stop = true; await Promise.allSettled(loads); httpAgent.destroy(); });
  await until('the gateway writing events', () => gatewayEvents() > 0);

  const runs = await Promise.all([
    tollgate('token', 'issue', '--user', 'ana@acme.example', '--team', 'alpha'),
    tollgate('token', 'issue', '--agent', 'beta-bot', '--team', 'beta'),
    tollgate('token', 'revoke', '--user', 'nobody@acme.example'),
  ]);
  for (const r of runs) t.equal(r.code, 0, r.stderr);
  const cliDone = gatewayEvents();
  await until('more gateway events after the CLI', () => gatewayEvents() > cliDone);

  const verify = await tollgate('audit', 'verify', '--json');
  t.equal(verify.code, 0, `tollgate audit verify while the gateway writes: ${verify.stdout}${verify.stderr}`);
  const v = JSON.parse(verify.stdout) as { ok: boolean; chains: Array<{ chain: string; ok: boolean; checked: number }> };
  t.match(v, { ok: true, chains: [{ chain: 'requests', ok: true }, { chain: 'events', ok: true }] });

  stop = true;
  await Promise.all(loads);
  httpAgent.destroy();
  t.ok(forwarded > 20, `${forwarded} requests forwarded during the test`);
  t.ok(exports > 5, `${exports} audit exports by the admin`);

  const chain = events();
  const cli = chain.filter((e) => e.actor.startsWith('cli:') && (e.type === 'token_issued' || e.type === 'token_revoked'));
  t.equal(cli.filter((e) => e.type === 'token_issued').length, 2 + 2, 'the harness\'s two agent tokens and the two issued here');
  t.equal(cli.filter((e) => e.type === 'token_revoked').length, 1);
  const seqs = chain.map((e) => e.seq);
  t.same(seqs, seqs.map((_s, i) => i + 1), 'one chain, seq 1..n without a gap or a repeat');
  const gw = chain.filter((e) => e.type === 'audit_exported').map((e) => e.seq);
  const interleaved = cli.filter((e) => e.seq > Math.min(...gw) && e.seq < Math.max(...gw));
  t.equal(interleaved.length, 3, 'the CLI\'s events landed between the gateway\'s');
});

t.test('after the gateway stops, both chains still verify', async (t) => {
  await stopGateway();
  const v = verifyAuditStore(db);
  t.match(v, { ok: true, openRows: 0 });
  const verify = await tollgate('audit', 'verify');
  t.equal(verify.code, 0, verify.stdout + verify.stderr);
  t.match(verify.stdout, /requests: ok, \d+ records/);
  t.match(verify.stdout, /events: ok, \d+ records/);
});
