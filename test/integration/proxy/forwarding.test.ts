// Real clients (curl, undici ProxyAgent, Python requests) through a real Tollgate to real local
// upstreams: plain HTTP, CONNECT with interception, streaming bodies and SSE.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';

const run = promisify(execFile);

const pki = await makeTestCa();
const tlsPair = await pki.issue(['api.example.test', 'sse.example.test']);
const plain = await startUpstream();
const secure = await startUpstream({ tls: tlsPair });
// The SSE upstream sends its first event, then holds the rest until the client has seen it (or
// 5 s pass): a gateway that buffered the stream would make the client wait the full 5 s.
let clientSawFirst: () => void = () => undefined;
let upstreamHolding = false;
const sse = await startUpstream({
  tls: tlsPair,
  handler: async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('event: tick\ndata: 0\n\n');
    upstreamHolding = true;
    await new Promise<void>((r) => { clientSawFirst = r; setTimeout(r, 5000).unref(); });
    upstreamHolding = false;
    res.write('event: tick\ndata: 1\n\n');
    res.end('event: tick\ndata: 2\n\n');
  },
});
const tg = await startTestGateway({
  upstreams: { 'plain.example.test': plain.port, 'api.example.test': secure.port, 'sse.example.test': sse.port },
  upstreamCaPem: pki.caPem,
});
const caFile = path.join(tg.dir, 'exported-ca.pem');
writeFileSync(caFile, tg.caPem);
t.teardown(async () => {
  await tg.stop();
  await Promise.all([plain.close(), secure.close(), sse.close()]);
});

t.test('curl: plain absolute-form GET is forwarded with the proxy headers removed', async (t) => {
  const { stdout } = await run('curl', ['-sS', '-x', tg.proxyUrl, '-H', 'Connection: keep-alive, X-Drop-Me', '-H', 'X-Drop-Me: 1', 'http://plain.example.test/hello?q=1']);
  const body = JSON.parse(stdout) as { url: string; headers: Record<string, string> };
  t.equal(body.url, '/hello?q=1');
  t.equal(body.headers['host'], 'plain.example.test');
  t.notOk(body.headers['proxy-authorization'], 'Proxy-Authorization never reaches the upstream');
  t.notOk(body.headers['x-drop-me'], 'headers named in Connection are hop-by-hop');
  const last = plain.seen.at(-1);
  t.notOk(last?.rawHeaders.some((h) => h.includes(tg.token)), 'the gateway token never reaches the upstream');
});

t.test('curl: CONNECT is intercepted with a leaf from the exported CA', async (t) => {
  const { stdout } = await run('curl', ['-sS', '-x', tg.proxyUrl, '--cacert', caFile, 'https://api.example.test/v1/things?x=2']);
  const body = JSON.parse(stdout) as { url: string; headers: Record<string, string> };
  t.equal(body.url, '/v1/things?x=2');
  t.equal(body.headers['host'], 'api.example.test');
});

t.test('curl offering h2 inside the tunnel falls back to HTTP/1.1', async (t) => {
  const { stdout } = await run('curl', ['-sS', '--http2', '-w', '\n%{http_version}', '-x', tg.proxyUrl, '--cacert', caFile, 'https://api.example.test/h2']);
  t.match(stdout.trim().split('\n').at(-1), /^1\.1$/);
});

t.test('undici ProxyAgent: intercepted POST with a fixed-length body', async (t) => {
  const agent = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: tg.caPem } });
  const res = await request('https://api.example.test/upload', { method: 'POST', body: 'x'.repeat(100_000), dispatcher: agent });
  const body = (await res.body.json()) as { bodyLength: number; method: string };
  t.equal(res.statusCode, 200);
  t.equal(body.method, 'POST');
  t.equal(body.bodyLength, 100_000);
  await agent.close();
});

t.test('chunked upload is re-framed and delivered whole', async (t) => {
  const agent = new ProxyAgent({ uri: tg.proxyUrl });
  async function* gen() { for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i); }
  const res = await request('http://plain.example.test/chunked', { method: 'PUT', body: Readable.from(gen()), dispatcher: agent });
  const body = (await res.body.json()) as { bodyLength: number; headers: Record<string, string> };
  t.equal(body.bodyLength, 10_000);
  // framing is regenerated: chunked, or one Content-Length equal to the body — never both
  const te = body.headers['transfer-encoding'];
  const cl = body.headers['content-length'];
  t.ok((te === 'chunked' && cl === undefined) || (te === undefined && cl === '10000'), `framing ${te ?? '-'} / ${cl ?? '-'}`);
  await agent.close();
});

t.test('SSE reaches the client event by event', async (t) => {
  const agent = new ProxyAgent({ uri: tg.proxyUrl, requestTls: { ca: tg.caPem } });
  const res = await request('https://sse.example.test/stream', { dispatcher: agent });
  let text = '';
  let firstWhileHolding: boolean | undefined;
  for await (const chunk of res.body) {
    if (firstWhileHolding === undefined && String(chunk).includes('data: 0')) {
      firstWhileHolding = upstreamHolding;
      clientSawFirst();
    }
    text += String(chunk);
  }
  t.equal(firstWhileHolding, true, 'the first event reached the client while the upstream still held the rest');
  t.match(text, /data: 0[\s\S]*data: 1[\s\S]*data: 2/);
  await agent.close();
});

t.test('Python requests through the proxy (plain and intercepted)', async (t) => {
  const script = [
    'import requests, sys',
    `p = {"http": "${tg.proxyUrl}", "https": "${tg.proxyUrl}"}`,
    'r = requests.get("http://plain.example.test/py", proxies=p, timeout=10)',
    'print(r.status_code, r.json()["url"])',
    `r = requests.get("https://api.example.test/pys", proxies=p, verify="${caFile}", timeout=10)`,
    'print(r.status_code, r.json()["url"])',
  ].join('\n');
  const { stdout } = await run(process.env['TOLLGATE_TEST_PYTHON'] ?? 'python3', ['-c', script]);
  t.equal(stdout.trim(), '200 /py\n200 /pys');
});

t.test('every exchange writes one canonical log event with a request id', async (t) => {
  const ex = tg.exchanges();
  t.ok(ex.length >= 5);
  for (const e of ex) t.match(e, { request_id: String, host: String });
  const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  t.ok(ex.every((e) => v7.test(e['request_id'] as string)), 'request ids are UUIDv7 (time-ordered)');
  t.notOk(tg.logText().includes(tg.token), 'no proxy credential in logs');
});
