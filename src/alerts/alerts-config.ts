// Owns: the `alerts:` block of tollgate.yaml — its schema and its validated, normalised form (the
// webhooks that budget threshold events are posted to, and the retry schedule). A webhook URL is a
// secret (Slack's carries its credential in the path): it is held in a wrapper that prints as
// "[redacted]", and no problem message ever quotes it.
import { Type, type Static } from '../config/typebox.ts';
import type { Problem } from '../errors.ts';
import type { YamlSource } from '../config/yaml-source.ts';

/** Events a webhook can subscribe to (`on:`). */
export const ALERT_EVENTS = ['budget_threshold'] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

export const AlertsSchema = Type.Object({
  webhooks: Type.Optional(Type.Array(Type.Object({
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$', description: 'short name of the webhook, used in logs and the delivery table (lower case, digits, - and _)' }),
    url: Type.Optional(Type.String({ minLength: 1, description: 'the incoming-webhook URL, normally "${SLACK_WEBHOOK_URL}" (https; http only on loopback); never logged' })),
    url_secret: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'name of a secret (secret source: env or secrets dir) holding the webhook URL; read at each delivery' })),
    on: Type.Optional(Type.Array(Type.Union([Type.Literal('budget_threshold')]), { minItems: 1, description: 'events posted to this webhook', default: ['budget_threshold'] })),
    percents: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 1000 }), { minItems: 1, description: 'only these threshold percentages (default: every one of metering.thresholds)' })),
    format: Type.Optional(Type.Union([Type.Literal('slack'), Type.Literal('json')], { description: 'slack: {"text", "blocks"}; json: {"text", "event", ...fields}', default: 'slack' })),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000, description: 'time limit of one attempt, in milliseconds', default: 10_000 })),
  }, { additionalProperties: false }), { description: 'incoming webhooks (Slack-compatible) that budget events are posted to' })),
  retry: Type.Optional(Type.Object({
    attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, description: 'attempts per delivery, the first included', default: 5 })),
    first_delay_ms: Type.Optional(Type.Integer({ minimum: 10, maximum: 3_600_000, description: 'wait before the second attempt, doubled for each later one', default: 8000 })),
    max_delay_ms: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400_000, description: 'longest wait between attempts, also the cap on a Retry-After', default: 60_000 })),
  }, { additionalProperties: false, description: 'how failed deliveries are retried (milliseconds)' })),
}, { additionalProperties: false, description: 'Alert webhooks (docs/metering.md, "Threshold webhooks")' });

export type AlertsFile = Static<typeof AlertsSchema>;

const REDACTED = '[redacted]';

/** A webhook URL: `reveal()` gives it; JSON, string and inspect forms print "[redacted]". */
export interface SecretUrl {
  reveal(): string;
  toJSON(): string;
  toString(): string;
}

export function secretUrl(value: string): SecretUrl {
  const holder = {
    reveal: () => value,
    toJSON: () => REDACTED,
    toString: () => REDACTED,
    [Symbol.for('nodejs.util.inspect.custom')]: () => REDACTED,
  };
  return holder;
}

export interface WebhookConfig {
  name: string;
  /** Where the URL comes from: inline (from `url:`, usually an env variable) or a named secret. */
  url: { kind: 'inline'; value: SecretUrl } | { kind: 'secret'; secret: string };
  on: readonly AlertEvent[];
  /** undefined: every threshold percentage */
  percents: readonly number[] | undefined;
  format: 'slack' | 'json';
  timeoutMs: number;
}

export interface AlertsConfig {
  webhooks: readonly WebhookConfig[];
  retry: { attempts: number; firstDelayMs: number; maxDelayMs: number };
}

export const DEFAULT_ALERTS: AlertsConfig = { webhooks: [], retry: { attempts: 5, firstDelayMs: 8000, maxDelayMs: 60_000 } };

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/;

/** Why a webhook URL cannot be used, or undefined when it can. Never quotes the URL. */
export function webhookUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (u.username || u.password) return 'must not carry user:password@';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && LOOPBACK.test(u.hostname)) return undefined;
  return 'must use https (http is allowed only on loopback)';
}

export function alertsConfig(a: AlertsFile | undefined, thresholds: readonly number[], source: YamlSource, problems: Problem[]): AlertsConfig {
  const names = new Set<string>();
  const at = (i: number, key: string) => source.positionOf(['alerts', 'webhooks', i, key]);
  const webhooks: WebhookConfig[] = [];
  (a?.webhooks ?? []).forEach((w, i) => {
    const where = `alerts.webhooks[${i}]`;
    if (names.has(w.name)) problems.push({ ...at(i, 'name'), severity: 'error', message: `${where}: the name "${w.name}" is used twice` });
    names.add(w.name);
    let url: WebhookConfig['url'] | undefined;
    if ((w.url === undefined) === (w.url_secret === undefined)) {
      problems.push({ ...source.positionOf(['alerts', 'webhooks', i]), severity: 'error', message: `${where} (${w.name}): give exactly one of url ("\${ENV_VAR}") and url_secret (a secret name)` });
    } else if (w.url !== undefined) {
      const why = webhookUrlProblem(w.url);
      if (why) problems.push({ ...at(i, 'url'), severity: 'error', message: `${where}.url (${w.name}) ${why}` });
      else url = { kind: 'inline', value: secretUrl(w.url) };
    } else if (w.url_secret !== undefined) {
      url = { kind: 'secret', secret: w.url_secret };
    }
    for (const p of w.percents ?? []) {
      if (!thresholds.includes(p)) problems.push({ ...at(i, 'percents'), severity: 'error', message: `${where}.percents (${w.name}): ${p} is not one of metering.thresholds (${thresholds.join(', ')}), so it would never fire` });
    }
    if (!url) return;
    webhooks.push({
      name: w.name, url, on: [...new Set<AlertEvent>(w.on ?? ['budget_threshold'])],
      percents: w.percents ? [...new Set(w.percents)].sort((x, y) => x - y) : undefined,
      format: w.format ?? 'slack', timeoutMs: w.timeout_ms ?? 10_000,
    });
  });
  const retry = {
    attempts: a?.retry?.attempts ?? DEFAULT_ALERTS.retry.attempts,
    firstDelayMs: a?.retry?.first_delay_ms ?? DEFAULT_ALERTS.retry.firstDelayMs,
    maxDelayMs: a?.retry?.max_delay_ms ?? DEFAULT_ALERTS.retry.maxDelayMs,
  };
  if (retry.maxDelayMs < retry.firstDelayMs) {
    problems.push({ ...source.positionOf(['alerts', 'retry', 'max_delay_ms']), severity: 'error', message: 'alerts.retry.max_delay_ms must be at least first_delay_ms' });
  }
  return { webhooks, retry };
}
