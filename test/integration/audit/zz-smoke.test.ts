import t from 'tap';
import { ProxyAgent, request } from 'undici';
import path from 'node:path';
import { startTestGateway } from '/work/main/test/helpers/gateway-harness.ts';
import { startUpstream } from '/work/main/test/helpers/upstream-server.ts';
import { openDatabase } from '/work/main/src/store/database.ts';
import { searchAuditRows, verifyAuditStore } from '/work/main/src/store/sqlite-audit-reader.ts';

const up = await startUpstream();
const tg = await startTestGateway({ upstreams: { 'echo.allowed.test': up.port } });
t.teardown(async () => { await tg.stop(); await up.close(); });
const agent = new ProxyAgent({ uri: tg.proxyUrl });
const t0 = performance.now();
for (let i = 0; i < 20; i++) {
  const r = await request(`http://echo.allowed.test/x/${i}?q=secret`, { dispatcher: agent });
  await r.body.text();
}
console.log('20 req ms', performance.now() - t0);
const { rawExchange } = await import('/work/main/test/helpers/raw-client.ts');
const d = await rawExchange(tg.proxyPort, `GET http://evil.test/x HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: ${tg.proxyAuth}\r\n\r\n`);
console.log(d.text.slice(0, 200));
await new Promise((r) => setTimeout(r, 100));
const db = openDatabase(path.join(tg.dir, 'data', 'tollgate.db'));
const page = searchAuditRows(db, { limit: 5 });
console.log(page.rows);
console.log(JSON.stringify(verifyAuditStore(db), null, 1));
db.close();
await agent.close();
t.pass();
