// Billable provider endpoints Tollgate cannot meter (batch jobs, fine-tuning, images, audio,
// realtime, Assistants runs) are refused by default — with the organisation's key injected they
// were a way around every budget — while the free endpoints clients call at start-up still pass;
// `metering.unmetered_endpoints: allow` lets them through. Driven with the official SDKs, undici and
// a raw WebSocket upgrade through a real gateway; the fake providers count what reached them.
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import t from 'tap';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { databasePath } from '../../../src/config/gateway-config.ts';
import { tokenIssue } from '../../../src/identity/token-commands.ts';
import { openDatabase } from '../../../src/store/database.ts';
import { llmGatewayOptions } from '../../helpers/fake-llm.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway-harness.ts';
import { collect, openTunnel, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream, type UpstreamHandler } from '../../helpers/upstream-server.ts';

const ANT_KEY = `CANARY_ANT_${Math.random().toString(36).slice(2)}`;
const OAI_KEY = `CANARY_OAI_${Math.random().toString(36).slice(2)}`;
const pki = await makeTestCa();
const pair = await pki.issue(['api.anthropic.com', 'api.openai.com']);
/** Answers every request with a small JSON object (what a batch or image call would return). */
const ok: UpstreamHandler = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: 'obj_1', object: 'batch', path: req.url, data: [] }));
};
const ant = await startUpstream({ tls: pair, handler: ok });
const oai = await startUpstream({ tls: pair, handler: ok });
t.teardown(() => Promise.all([ant.close(), oai.close()]));

async function gateway(extraYaml: string): Promise<TestGateway> {
  const tg = await startTestGateway(llmGatewayOptions({ ant: ant.port, oai: oai.port, caPem: pki.caPem, antKey: ANT_KEY, oaiKey: OAI_KEY, extraYaml }));
  t.teardown(() => tg.stop());
  return tg;
}

async function tokenFor(tg: TestGateway): Promise<string> {
  let out = '';
  await tokenIssue({ dbFile: databasePath({ dataDir: path.join(tg.dir, 'data') }), user: 'dev@example.com', team: 'alpha', ttl: '1h', write: (s) => { out += s; } });
  return out.trim();
}

const viaProxy = (dispatcher: ProxyAgent) => ({ fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher } as never, maxRetries: 2 });

type AuditRow = { decision: string; reason: string | null; status: number | null };
function readAuditRows(tg: TestGateway, p: string): AuditRow[] {
  const db = openDatabase(databasePath({ dataDir: path.join(tg.dir, 'data') }));
  try {
    return db.prepare<[string], AuditRow>('SELECT decision, reason, status FROM audit_requests WHERE path = ?').all(p);
  } finally {
    db.close();
  }
}
/** The audit rows of `p` once there are `n` of them and all are complete (rows are written after the response). */
async function auditRows(tg: TestGateway, p: string, n = 1): Promise<AuditRow[]> {
  let rows = readAuditRows(tg, p);
  for (let i = 0; i < 200 && (rows.length < n || rows.some((r) => r.status === null)); i++) {
    await new Promise((r) => setTimeout(r, 20));
    rows = readAuditRows(tg, p);
  }
  return rows;
}

const refused = await gateway('');
const refusedToken = await tokenFor(refused);
const dispatcher = new ProxyAgent({ uri: `http://alpha:${refusedToken}@127.0.0.1:${refused.proxyPort}`, requestTls: { ca: refused.caPem } });
t.teardown(() => dispatcher.close());

t.test('by default the SDKs\' batch, image and fine-tuning calls are refused once, in the provider\'s shape, and nothing reaches the provider', async (t) => {
  const antSeen = ant.seen.length;
  const oaiSeen = oai.seen.length;
  const anthropic = new Anthropic({ apiKey: 'sk-ant-dummy', ...viaProxy(dispatcher) });
  const err = await anthropic.messages.batches.create({
    requests: [{ custom_id: 'a', params: { model: 'claude-haiku-4-5', max_tokens: 64_000, messages: [{ role: 'user', content: 'hi' }] } }],
  }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof Anthropic.PermissionDeniedError, 'Anthropic SDK: PermissionDeniedError');
  t.match((err as Error).message, /cannot meter the Message Batches API/);
  t.match((err as { error?: unknown }).error, { type: 'error', error: { type: 'permission_error' }, tollgate: { reason: 'endpoint_not_metered' } });

  const openai = new OpenAI({ apiKey: 'sk-dummy', ...viaProxy(dispatcher) });
  const calls: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['batches', () => openai.batches.create({ input_file_id: 'file-abc', endpoint: '/v1/chat/completions', completion_window: '24h' }), /Batch API/],
    ['images', () => openai.images.generate({ model: 'gpt-image-1', prompt: 'a cat' }), /Images API/],
    ['fine-tuning', () => openai.fineTuning.jobs.create({ model: 'gpt-4o-mini', training_file: 'file-abc' }), /fine-tuning jobs/],
    ['speech', () => openai.audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'alloy', input: 'hi' }), /Audio API/],
  ];
  for (const [name, call, what] of calls) {
    const e = await call().then(() => undefined, (x: unknown) => x);
    t.ok(e instanceof OpenAI.PermissionDeniedError, `OpenAI SDK ${name}: PermissionDeniedError`);
    t.match((e as Error).message, what, `${name}: the message names what cannot be metered`);
  }
  t.equal(ant.seen.length, antSeen, 'nothing reached Anthropic');
  t.equal(oai.seen.length, oaiSeen, 'nothing reached OpenAI');
  const rows = await auditRows(refused, '/v1/messages/batches');
  t.same(rows, [{ decision: 'deny', reason: 'endpoint_not_metered', status: 403 }], 'one attempt (403 is not retried), audited as a denial');
  t.equal((await auditRows(refused, '/v1/batches')).length, 1);
});

t.test('a case variant of the path is refused too; the free endpoints still pass', async (t) => {
  const oaiSeen = oai.seen.length;
  const r = await undiciFetch('https://api.openai.com/V1/Batches', { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(r.status, 403);
  t.equal(r.headers.get('x-tollgate-reason'), 'endpoint_not_metered');
  await r.arrayBuffer();
  t.equal(oai.seen.length, oaiSeen, 'nothing reached OpenAI');

  const antSeen = ant.seen.length;
  const list = await undiciFetch('https://api.anthropic.com/v1/messages/batches', { dispatcher });
  t.equal(list.status, 200, 'listing batches spends nothing: it passes');
  await list.arrayBuffer();
  const files = await undiciFetch('https://api.openai.com/v1/files', { dispatcher });
  t.equal(files.status, 200);
  await files.arrayBuffer();
  t.equal(ant.seen.length, antSeen + 1);
  t.equal(ant.seen.at(-1)?.headers['x-api-key'], ANT_KEY, 'with the key injected');
  t.equal(oai.seen.length, oaiSeen + 1);
});

/** A WebSocket upgrade request (`head`: request line) through an intercepted tunnel to api.openai.com; the gateway's answer. */
async function upgradeVia(tg: TestGateway, token: string, head: string, extra: string[] = []): Promise<string> {
  const basic = Buffer.from(`alpha:${token}`).toString('base64');
  const sock = await openTunnel(tg.proxyPort, 'api.openai.com:443', { 'Proxy-Authorization': `Basic ${basic}` });
  const tls = await tlsOverTunnel(sock, tg.caPem, 'api.openai.com');
  const got = await collect(tls, [
    head, 'Host: api.openai.com', 'Connection: Upgrade', 'Upgrade: websocket',
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...extra, '', '',
  ].join('\r\n'), { until: (s) => s.includes('\r\n\r\n') && s.includes('}') });
  tls.destroy();
  return got.text;
}

t.test('WebSocket upgrades (Realtime, the Responses API\'s WebSocket mode) are refused before anything is dialled', async (t) => {
  const before = oai.tcpConnections;
  for (const head of ['GET /v1/realtime?model=gpt-realtime HTTP/1.1', 'GET /v1/responses HTTP/1.1']) {
    const text = await upgradeVia(refused, refusedToken, head);
    t.match(text, /^HTTP\/1\.1 403 /, head);
    t.match(text, /x-tollgate-reason: endpoint_not_metered/i);
    t.match(text, /WebSocket APIs/);
  }
  t.equal(oai.tcpConnections, before, 'the gateway never connected to the provider');
});

t.test('metering.unmetered_endpoints: allow lets them through with the key injected', async (t) => {
  const open = await gateway('metering: { unmetered_endpoints: allow }');
  const token = await tokenFor(open);
  const d = new ProxyAgent({ uri: `http://alpha:${token}@127.0.0.1:${open.proxyPort}`, requestTls: { ca: open.caPem } });
  t.teardown(() => d.close());
  const antSeen = ant.seen.length;
  const anthropic = new Anthropic({ apiKey: 'sk-ant-dummy', ...viaProxy(d) });
  const batch = await anthropic.messages.batches.create({
    requests: [{ custom_id: 'a', params: { model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] } }],
  });
  t.equal(batch.id, 'obj_1');
  t.equal(ant.seen.length, antSeen + 1);
  t.equal(ant.seen.at(-1)?.url, '/v1/messages/batches');
  t.equal(ant.seen.at(-1)?.headers['x-api-key'], ANT_KEY);
  // a model endpoint asked to switch protocols is never forwarded unmetered, even in allow mode
  const before = oai.tcpConnections;
  const text = await upgradeVia(open, token, 'POST /v1/chat/completions HTTP/1.1', ['Content-Type: application/json', 'Content-Length: 2']);
  t.match(text, /^HTTP\/1\.1 403 /);
  t.match(text, /x-tollgate-reason: endpoint_not_metered/i);
  t.equal(oai.tcpConnections, before, 'nothing dialled');
  t.match(await auditRows(open, '/v1/messages/batches'), [{ decision: 'allow', status: 200 }], 'audited as allowed (the completion follows the response)');
});
