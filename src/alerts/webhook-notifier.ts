// Owns: posting alert events to the configured webhooks, off the request path. An event is queued
// in tollgate.db (one row per webhook, unique per event, so never twice — also across restarts) by
// a synchronous insert, and sent by a background pump through undici directly: the webhook host is
// operator configuration, not agent traffic, so it does not go through the proxy pipeline (only
// through `upstream_proxy` when one is set). Failed attempts are retried with exponential backoff,
// a bounded number of times; rows still pending at start-up are resumed. The URL is a secret: it is
// never logged, never stored, and scrubbed from any error text.
import { request, type Dispatcher } from 'undici';
import type { GatewayConfig } from '../config/gateway-config.ts';
import type { SecretSource } from '../credentials/secret-source.ts';
import type { ThresholdEvent } from '../metering/budget.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../store/database.ts';
import { createSqliteAlertQueue, type AlertDelivery, type AlertQueue } from '../store/sqlite-alert-queue.ts';
import { webhookUrlProblem, type AlertsConfig, type WebhookConfig } from './alerts-config.ts';
import { classifyStatus, parseRetryAfter, retryDelayMs, type DeliveryVerdict } from './delivery-plan.ts';
import { thresholdEventKey, thresholdPayload } from './threshold-message.ts';

export interface GiveUpInfo {
  webhook: string;
  event: string;
  attempts: number;
  status: number | null;
  error: string;
}

export interface WebhookNotifier {
  /** Queues the event for every webhook subscribed to it and wakes the sender. Synchronous, never throws. */
  notifyThreshold(e: ThresholdEvent): void;
  /** Starts the pump (resumes deliveries left pending by a previous run). */
  start(): void;
  /** Resolves when no delivery is pending or in flight (tests: waits through the retries). */
  idle(): Promise<void>;
  /** Stops the pump; attempts in flight get `graceMs` to finish, then are aborted (retried by the next run). */
  close(graceMs?: number): Promise<void>;
}

export interface WebhookNotifierDeps {
  queue: AlertQueue;
  config: AlertsConfig;
  secrets: Pick<SecretSource, 'get'>;
  logger: Logger;
  /** undici dispatcher for the posts (default: undici's global one) */
  dispatcher?: Dispatcher;
  now?: () => number;
  /** attempts in flight at once (default 4) */
  concurrency?: number;
  /** a delivery given up after its last attempt (for an audit event) */
  onGiveUp?: (info: GiveUpInfo) => void;
}

const MAX_TIMER_MS = 3_600_000;
const ERROR_BODY_BYTES = 300;

/** Removes the URL (and its path and query, where Slack keeps the credential) from a text. */
export function scrubUrl(text: string, url: string | undefined): string {
  if (!url) return text;
  let out = text.split(url).join('[redacted]');
  try {
    const u = new URL(url);
    const tail = `${u.pathname}${u.search}`;
    if (tail.length >= 8) out = out.split(tail).join('[redacted]');
  } catch {
    // not a URL: the whole-string replacement above is all there is
  }
  return out;
}

async function readSome(body: AsyncIterable<unknown> & { destroy?: () => void }): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
    parts.push(b);
    n += b.length;
    if (n >= ERROR_BODY_BYTES) break; // leaving the loop destroys the body
  }
  return Buffer.concat(parts).subarray(0, ERROR_BODY_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
}

export function createWebhookNotifier(deps: WebhookNotifierDeps): WebhookNotifier {
  const { queue, config, logger } = deps;
  const now = deps.now ?? Date.now;
  const concurrency = deps.concurrency ?? 4;
  const byName = new Map(config.webhooks.map((w) => [w.name, w]));
  const inFlight = new Map<number, Promise<void>>();
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let closed = false;
  let idleWaiters: Array<() => void> = [];

  const checkIdle = () => {
    if (inFlight.size > 0) return;
    let next: number | undefined;
    try {
      next = queue.nextDueAt();
    } catch {
      next = undefined;
    }
    if (next !== undefined && !closed) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const f of w) f();
  };

  const schedule = (ms: number) => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(pump, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    timer.unref();
  };

  function pump(): void {
    if (closed || !started) return;
    if (timer) { clearTimeout(timer); timer = undefined; }
    try {
      const t = now();
      const room = concurrency - inFlight.size;
      if (room > 0) {
        for (const row of queue.due(t, room + inFlight.size)) {
          if (inFlight.size >= concurrency) break;
          if (inFlight.has(row.id)) continue;
          const wh = byName.get(row.webhook);
          // Hold the row while the attempt is in flight; after a crash the next run retries it then.
          if (!queue.claim(row.id, t + (wh?.timeoutMs ?? 10_000) + 5000)) continue;
          const p = attempt(row, wh)
            .catch((err: unknown) => { logger.error('alert delivery bookkeeping failed', { webhook: row.webhook, event: row.eventKey, error: String(err) }); })
            .finally(() => {
              inFlight.delete(row.id);
              pump();
              checkIdle();
            });
          inFlight.set(row.id, p);
        }
      }
      const next = queue.nextDueAt();
      if (next !== undefined && inFlight.size < concurrency) schedule(next - now());
    } catch (err) {
      logger.error('alert queue unavailable; retrying in 1 s', { error: String(err) });
      schedule(1000);
    }
    checkIdle();
  }

  async function attempt(row: AlertDelivery, wh: WebhookConfig | undefined): Promise<void> {
    const attemptNo = row.attempts + 1;
    const fields = { webhook: row.webhook, event: row.eventKey, attempt: attemptNo };
    if (!wh) {
      queue.failed(row.id, now(), row.attempts, null, 'the webhook is no longer configured');
      logger.warn('alert dropped: its webhook is no longer configured', fields);
      return;
    }
    let url: string | undefined;
    let status: number | null = null;
    let error = '';
    let verdict: DeliveryVerdict;
    let retryAfterMs: number | undefined;
    if (wh.url.kind === 'inline') url = wh.url.value.reveal();
    else url = deps.secrets.get(wh.url.secret);
    const urlProblem = url === undefined ? undefined : webhookUrlProblem(url);
    if (url === undefined || urlProblem) {
      verdict = 'retry';
      error = url === undefined ? `secret ${wh.url.kind === 'secret' ? wh.url.secret : '?'} has no value` : `the URL in secret ${wh.url.kind === 'secret' ? wh.url.secret : '?'} ${urlProblem ?? ''}`;
    } else {
      try {
        const res = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Tollgate-Alerts/1' },
          body: row.payload,
          headersTimeout: wh.timeoutMs,
          bodyTimeout: wh.timeoutMs,
          signal: AbortSignal.any([abort.signal, AbortSignal.timeout(wh.timeoutMs)]),
          ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
        });
        status = res.statusCode;
        verdict = classifyStatus(status);
        const ra = res.headers['retry-after'];
        retryAfterMs = parseRetryAfter(Array.isArray(ra) ? ra[0] : ra, now());
        if (verdict === 'delivered') await res.body.dump();
        else error = `HTTP ${status}${await readSome(res.body).then((s) => (s ? `: ${s}` : ''), () => '')}`;
      } catch (err) {
        if (closed) return; // aborted by shutdown: the claim lapses and the next run retries
        verdict = 'retry';
        const e = err as { code?: string; name?: string; message?: string };
        error = e.code ?? e.name ?? 'error';
        if (e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') error = `no answer within ${wh.timeoutMs} ms`;
      }
    }
    error = scrubUrl(error, url);
    const at = now();
    if (verdict === 'delivered') {
      queue.delivered(row.id, at, attemptNo, status ?? 0);
      logger.info('alert delivered', { ...fields, status });
      return;
    }
    if (verdict === 'retry' && attemptNo < config.retry.attempts) {
      const wait = retryDelayMs(attemptNo, config.retry, retryAfterMs);
      queue.retryLater(row.id, at, attemptNo, at + wait, status, error);
      logger.warn('alert delivery failed; will retry', { ...fields, status, error, retry_in_ms: wait });
      return;
    }
    queue.failed(row.id, at, attemptNo, status, error);
    logger.error('alert delivery given up', { ...fields, status, error });
    try {
      deps.onGiveUp?.({ webhook: row.webhook, event: row.eventKey, attempts: attemptNo, status, error });
    } catch {
      // a hook must not break the pump
    }
  }

  return {
    notifyThreshold(e) {
      if (closed) return;
      const key = thresholdEventKey(e);
      let queued = false;
      for (const wh of config.webhooks) {
        if (!wh.on.includes('budget_threshold')) continue;
        if (wh.percents && !wh.percents.includes(e.percent)) continue;
        try {
          if (queue.enqueue({ webhook: wh.name, eventKey: key, payload: thresholdPayload(e, wh.format), at: now() })) queued = true;
        } catch (err) {
          logger.error('cannot queue an alert', { webhook: wh.name, event: key, error: String(err) });
        }
      }
      if (queued) queueMicrotask(pump);
    },
    start() {
      if (started || closed) return;
      started = true;
      pump();
    },
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        checkIdle();
      });
    },
    async close(graceMs = 2000) {
      if (closed) return;
      const pending = [...inFlight.values()];
      if (pending.length > 0) {
        let t: NodeJS.Timeout | undefined;
        await Promise.race([Promise.allSettled(pending), new Promise((r) => { t = setTimeout(r, graceMs); })]);
        clearTimeout(t);
      }
      closed = true;
      if (timer) clearTimeout(timer);
      abort.abort(new Error('the gateway is shutting down'));
      await Promise.allSettled([...inFlight.values()]);
      const w = idleWaiters;
      idleWaiters = [];
      for (const f of w) f();
    },
  };
}

/**
 * Builds the notifier from tollgate.yaml on tollgate.db. `dispatcher`: the gateway's outbound client
 * (src/upstream/outbound-dispatcher.ts: through `upstream_proxy` when one is set); its owner closes it.
 */
export function webhookNotifierFromConfig(deps: {
  db: Database; config: GatewayConfig; secrets: SecretSource; logger: Logger; dispatcher: Dispatcher; onGiveUp?: (info: GiveUpInfo) => void;
}): WebhookNotifier {
  const alerts = deps.config.alerts;
  for (const w of alerts.webhooks) {
    if (w.url.kind === 'secret' && !deps.secrets.has(w.url.secret)) {
      deps.logger.warn('alert webhook secret has no value; its deliveries wait and retry until it is set', { webhook: w.name, secret: w.url.secret });
    }
  }
  return createWebhookNotifier({
    queue: createSqliteAlertQueue(deps.db), config: alerts, secrets: deps.secrets, logger: deps.logger, dispatcher: deps.dispatcher,
    ...(deps.onGiveUp ? { onGiveUp: deps.onGiveUp } : {}),
  });
}
