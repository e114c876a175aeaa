// Threshold webhooks against a local webhook receiver, on a real tollgate.db: exactly one post per
// threshold, retry after a 500, a bounded number of attempts, nothing posted twice after a restart
// (and a delivery left pending by the previous run is finished by the next), the URL never logged.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { secretUrl, type AlertsConfig, type WebhookConfig } from '../../../src/alerts/alerts-config.ts';
import { createWebhookNotifier, type GiveUpInfo } from '../../../src/alerts/webhook-notifier.ts';
import { createMemorySecretSource } from '../../../src/credentials/secret-source.ts';
import type { ThresholdEvent } from '../../../src/metering/budget.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { createSqliteAlertQueue } from '../../../src/store/sqlite-alert-queue.ts';
import { tempDb } from '../../helpers/temp-db.ts';

const CANARY = `CANARY${Math.random().toString(36).slice(2)}`;

interface Receiver { url: string; posts: Array<{ path: string; body: unknown }>; answer: number[]; close(): Promise<void> }
async function receiver(): Promise<Receiver> {
  const posts: Receiver['posts'] = [];
  const answer: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
      const status = answer.shift() ?? 200;
      // A failing receiver that echoes the request path (and so the secret) back: must be scrubbed.
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : `error for ${req.url ?? ''}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/services/T000/B000/${CANARY}`, posts, answer,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const event = (percent: number, scope = 'team:alpha'): ThresholdEvent => ({
  scope, label: scope.replace(':', ' '), window: 'month', windowKey: 'month:2026-11', percent, limitMicros: 100_000_000,
  spentMicros: percent * 1_000_000, resetsAt: '2026-12-01T00:00:00.000Z', cause: 'spend', at: '2026-11-20T10:00:00.000Z',
});

function setup(t: Test) {
  const { db, open } = tempDb(t, 'tollgate-alerts-');
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => { lines.push(l); } });
  return { db, open, logger, lines };
}

const hook = (name: string, url: WebhookConfig['url'], extra: Partial<WebhookConfig> = {}): WebhookConfig =>
  ({ name, url, on: ['budget_threshold'], percents: undefined, format: 'slack', timeoutMs: 2000, ...extra });
const alerts = (webhooks: WebhookConfig[], attempts = 5): AlertsConfig => ({ webhooks, retry: { attempts, firstDelayMs: 40, maxDelayMs: 200 } });

t.test('exactly one post per webhook and threshold, however often the event is raised', async (t) => {
  const rx = await receiver();
  t.teardown(rx.close);
  const { db, logger, lines } = setup(t);
  const n = createWebhookNotifier({
    queue: createSqliteAlertQueue(db), logger, secrets: createMemorySecretSource({ 'pager-hook': rx.url.replace('/services/', '/pager/') }),
    config: alerts([hook('finops', { kind: 'inline', value: secretUrl(rx.url) }), hook('pager', { kind: 'secret', secret: 'pager-hook' }, { percents: [100], format: 'json' })]),
  });
  n.start();
  n.notifyThreshold(event(50));
  n.notifyThreshold(event(50));
  n.notifyThreshold(event(80));
  n.notifyThreshold(event(100));
  n.notifyThreshold(event(100));
  await n.idle();
  n.notifyThreshold(event(80));
  await n.idle();
  const slack = rx.posts.filter((p) => p.path.startsWith('/services/'));
  const pager = rx.posts.filter((p) => p.path.startsWith('/pager/'));
  t.equal(slack.length, 3, 'finops: 50, 80, 100 once each');
  t.same(slack.map((p) => (p.body as { text: string }).text.match(/used (\d+)%/)?.[1]).sort(), ['100', '50', '80']);
  t.match(slack[0]?.body, { text: /^Tollgate: team alpha has used/, blocks: [{ type: 'section' }, { type: 'context' }] });
  t.equal(pager.length, 1, 'pager: only 100 %, from the secret URL');
  t.match(pager[0]?.body, { event: 'budget_threshold', scope: 'team:alpha', percent: 100 });
  const rows = createSqliteAlertQueue(db).list();
  t.equal(rows.length, 4);
  t.ok(rows.every((r) => r.state === 'delivered' && r.attempts === 1));
  t.notMatch(lines.join(''), new RegExp(CANARY), 'the URL is never logged');
  await n.close();
});

t.test('a 500 is retried with backoff until delivered; a delivery is given up after its last attempt', async (t) => {
  const rx = await receiver();
  t.teardown(rx.close);
  const { db, logger, lines } = setup(t);
  const gaveUp: GiveUpInfo[] = [];
  const n = createWebhookNotifier({
    queue: createSqliteAlertQueue(db), logger, secrets: createMemorySecretSource({}), onGiveUp: (i) => gaveUp.push(i),
    config: alerts([hook('finops', { kind: 'inline', value: secretUrl(rx.url) })], 3),
  });
  n.start();
  rx.answer.push(500, 503);
  const t0 = Date.now();
  n.notifyThreshold(event(50));
  await n.idle();
  t.equal(rx.posts.length, 3, 'two failures, then delivered');
  t.ok(Date.now() - t0 >= 40 + 80 - 10, 'waited 40 ms, then 80 ms');
  t.match(createSqliteAlertQueue(db).list()[0], { state: 'delivered', attempts: 3, lastStatus: 200 });
  t.equal(lines.filter((l) => l.includes('alert delivery failed; will retry')).length, 2);

  rx.answer.push(500, 500, 500);
  n.notifyThreshold(event(80));
  await n.idle();
  t.equal(rx.posts.length, 6, 'three attempts in all, then no more');
  t.match(createSqliteAlertQueue(db).list()[1], { state: 'failed', attempts: 3, lastStatus: 500 });
  t.match(gaveUp, [{ webhook: 'finops', event: 'budget_threshold|team:alpha|month:2026-11|80', attempts: 3, status: 500 }]);
  t.match(gaveUp[0]?.error, /^HTTP 500: error for \[redacted\]$/, 'the receiver echoed the URL path; it was scrubbed');

  rx.answer.push(404);
  n.notifyThreshold(event(100));
  await n.idle();
  t.equal(rx.posts.length, 7, 'a 404 (revoked Slack hook) is not retried');
  t.equal(gaveUp.length, 2);
  t.notMatch(lines.join(''), new RegExp(CANARY), 'the URL is never logged');
  await n.close();
});

t.test('no duplicate after a restart; a delivery left pending is finished by the next run', async (t) => {
  const rx = await receiver();
  t.teardown(rx.close);
  const { db: db1, open, logger, lines } = setup(t);
  const config = alerts([hook('finops', { kind: 'inline', value: secretUrl(rx.url) })]);
  config.retry.firstDelayMs = 150;
  const n1 = createWebhookNotifier({ queue: createSqliteAlertQueue(db1), logger, secrets: createMemorySecretSource({}), config });
  n1.start();
  n1.notifyThreshold(event(50));
  await n1.idle();
  rx.answer.push(500);
  n1.notifyThreshold(event(80));
  for (let i = 0; i < 100 && rx.posts.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(rx.posts.length, 2, '50 delivered, 80 failed once');
  await n1.close();
  db1.close();

  // "restart": a new connection and notifier on the same file
  const db2 = open();
  const n2 = createWebhookNotifier({ queue: createSqliteAlertQueue(db2), logger, secrets: createMemorySecretSource({}), config });
  n2.notifyThreshold(event(50));
  n2.start();
  await new Promise((r) => setTimeout(r, 200));
  await n2.idle();
  t.equal(rx.posts.length, 3, 'the pending 80 % was retried once; the delivered 50 % was not posted again');
  const texts = rx.posts.map((p) => (p.body as { text: string }).text.match(/used (\d+)%/)?.[1]);
  t.same(texts, ['50', '80', '80']);
  t.same(createSqliteAlertQueue(db2).list().map((r) => [r.eventKey.split('|')[3], r.state, r.attempts]), [['50', 'delivered', 1], ['80', 'delivered', 2]]);
  t.notMatch(lines.join(''), new RegExp(CANARY));
  await n2.close();
});

t.test('network failures and a missing secret: retried, logged without the URL', async (t) => {
  const rx = await receiver();
  const deadUrl = rx.url;
  await rx.close(); // nothing listens there any more: ECONNREFUSED
  const { db, logger, lines } = setup(t);
  const secrets = new Map<string, string>();
  const n = createWebhookNotifier({
    queue: createSqliteAlertQueue(db), logger, secrets: { get: (k) => secrets.get(k) },
    config: alerts([hook('dead', { kind: 'inline', value: secretUrl(deadUrl) }), hook('later', { kind: 'secret', secret: 'later-hook' })], 2),
  });
  const keepAlive = setInterval(() => undefined, 1000); // the notifier's timers are unref'd (the gateway's listeners keep it alive)
  n.start();
  n.notifyThreshold(event(50));
  await n.idle();
  clearInterval(keepAlive);
  const rows = createSqliteAlertQueue(db).list();
  t.match(rows, [{ webhook: 'dead', state: 'failed', attempts: 2, lastError: 'ECONNREFUSED' }, { webhook: 'later', state: 'failed', attempts: 2, lastError: 'secret later-hook has no value' }]);
  t.notMatch(lines.join(''), new RegExp(CANARY));
  t.match(lines.join(''), /alert delivery given up/);
  await n.close();
});
