// Threshold webhooks through the running gateway: a metered call that crosses 50 % and 80 % of an
// agent's budget posts each once; the refusal that follows posts 100 % once; a restart of the
// gateway on the same tollgate.db posts nothing again; the webhook URL (from ${ENV}) is never logged.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { databasePath, loadGatewayConfig } from '../../../src/config/gateway-config.ts';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { assembleGateway } from '../../../src/main.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { until } from '../../helpers/cli-process.ts';
import { fakeAnthropic, type FakeLlmControl } from '../../helpers/fake-llm.ts';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const CANARY = `CANARY${Math.random().toString(36).slice(2)}`;
const posts: Array<{ text: string }> = [];
const hook = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { text: string });
    res.end('ok');
  });
});
await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
const HOOK_URL = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/services/T0/B0/${CANARY}`;

const ctl: FakeLlmControl = { mode: 'normal', sent: 0, finished: 0 };
const pki = await makeTestCa();
const ant = await startUpstream({ tls: await pki.issue(['api.anthropic.com']), handler: fakeAnthropic(ctl) });
// One streamed claude-haiku-4-5 call of the fake costs 525 µ$: 87.5 % of $0.0006, and a second
// call's reservation no longer fits.
const ORG = `organization: Test Org
teams:
  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml }
  beta: { name: Beta, idp_groups: [beta], policy: policies/beta.yaml }
agents:
  alpha-bot: { name: Alpha Bot, team: alpha }
  beta-bot: { name: Beta Bot, team: beta }
  hook-bot: { name: Hook Bot, team: alpha, budget: { daily_usd: 0.0006 } }
`;
const env = { TG_TEST_HOOK_URL: HOOK_URL };
const tg = await startTestGateway({
  upstreams: { 'api.anthropic.com': ant.port },
  upstreamCaPem: pki.caPem,
  alphaRules: '  - { host: api.anthropic.com, action: allow }',
  files: { 'org.yaml': ORG },
  env,
  extraYaml: 'alerts:\n  webhooks:\n    - { name: finops, url: "${TG_TEST_HOOK_URL}" }\n  retry: { first_delay_ms: 50 }',
});
const dbFile = databasePath({ dataDir: path.join(tg.dir, 'data') });
let out = '';
await tokenIssue({ dbFile, agent: 'hook-bot', team: 'alpha', ttl: '1h', write: (s) => { out += s; } });
const token = out.trim();
const restartedLines: string[] = [];
let restarted: Awaited<ReturnType<typeof assembleGateway>> | undefined;
t.teardown(async () => {
  await restarted?.stop(500);
  rmSync(tg.dir, { recursive: true, force: true });
  await ant.close();
  await new Promise((r) => { hook.closeAllConnections(); hook.close(r); });
});

async function call(proxyPort: number): Promise<number> {
  const dispatcher = new ProxyAgent({ uri: `http://alpha:${token}@127.0.0.1:${proxyPort}`, requestTls: { ca: tg.caPem } });
  try {
    const res = await request('https://api.anthropic.com/v1/messages', {
      method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    return res.statusCode;
  } finally {
    await dispatcher.close();
  }
}

t.test('each threshold is posted once; a refusal posts 100 % once', async (t) => {
  t.equal(await call(tg.proxyPort), 200);
  await until('the 50 % and 80 % posts', () => posts.length >= 2, 5000);
  await new Promise((r) => setTimeout(r, 200));
  t.same(posts.map((p) => p.text.match(/used (\d+)%/)?.[1]), ['50', '80'], '50 % and 80 %, once each');
  t.match(posts[0]?.text, /^Tollgate: agent hook-bot has used 50% of its daily budget: \$0\.000525 of \$0\.0006/);
  t.equal(await call(tg.proxyPort), 402, 'the next call does not fit');
  t.equal(await call(tg.proxyPort), 402);
  await until('the 100 % post', () => posts.length >= 3, 5000);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(posts.length, 3, 'one more post for the exhausted budget, not one per refusal');
  t.match(posts[2]?.text, /agent hook-bot has exhausted its daily budget of \$0\.0006/);
  t.ok(tg.logs.some((l) => l['msg'] === 'alert delivered' && l['webhook'] === 'finops'));
  t.notMatch(tg.logText(), new RegExp(CANARY), 'the webhook URL is not in the gateway log');
});

t.test('after a gateway restart on the same tollgate.db nothing is posted again', async (t) => {
  await tg.gw.stop(500);
  const config = loadGatewayConfig(path.join(tg.dir, 'tollgate.yaml'), { ...process.env, ...env });
  restarted = await assembleGateway(config, createLogger({ level: 'debug', write: (l) => { restartedLines.push(l); } }), { dev: false });
  t.equal(await call(restarted.proxy.port), 402, 'still exhausted');
  await new Promise((r) => setTimeout(r, 400));
  t.equal(posts.length, 3, 'no duplicate of 50, 80 or 100 %');
  t.notMatch(restartedLines.join(''), new RegExp(CANARY));
});
