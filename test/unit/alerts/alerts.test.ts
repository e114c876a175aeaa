// Alert webhooks, the pure parts: the `alerts:` config block (URL kept secret), the message
// bodies (Slack-compatible), the event key, and the retry rule.
import { inspect } from 'node:util';
import t from 'tap';
import { parseGatewayConfig } from '../../../src/config/gateway-config.ts';
import { formatProblem } from '../../../src/errors.ts';
import { classifyStatus, parseRetryAfter, retryDelayMs } from '../../../src/alerts/delivery-plan.ts';
import { jsonPayload, slackPayload, thresholdEventKey, thresholdText } from '../../../src/alerts/threshold-message.ts';
import type { ThresholdEvent } from '../../../src/metering/budget.ts';

const HOOK = 'https://hooks.slack.com/services/T000/B000/CANARYsecretPART';

t.test('alerts: defaults, url from ${ENV}, url_secret, filters; the URL never prints', async (t) => {
  const d = parseGatewayConfig('tollgate.yaml', 'data_dir: ./d\n', {});
  t.ok(d.ok);
  if (d.ok) t.same(d.config.alerts, { webhooks: [], retry: { attempts: 5, firstDelayMs: 8000, maxDelayMs: 60_000 } });
  const r = parseGatewayConfig('tollgate.yaml', [
    'alerts:',
    '  webhooks:',
    '    - { name: finops, url: "${SLACK_WEBHOOK_URL}" }',
    '    - { name: pager, url_secret: pager-hook, on: [budget_threshold], percents: [100, 100], format: json, timeout_ms: 2000 }',
    '  retry: { attempts: 3, first_delay_ms: 100, max_delay_ms: 1000 }',
    '',
  ].join('\n'), { SLACK_WEBHOOK_URL: HOOK });
  t.ok(r.ok, r.ok ? '' : r.problems.map(formatProblem).join('\n'));
  if (!r.ok) return;
  const [a, b] = r.config.alerts.webhooks;
  t.match(a, { name: 'finops', on: ['budget_threshold'], percents: undefined, format: 'slack', timeoutMs: 10_000 });
  t.equal(a?.url.kind === 'inline' ? a.url.value.reveal() : undefined, HOOK);
  t.match(b, { name: 'pager', url: { kind: 'secret', secret: 'pager-hook' }, percents: [100], format: 'json', timeoutMs: 2000 });
  t.same(r.config.alerts.retry, { attempts: 3, firstDelayMs: 100, maxDelayMs: 1000 });
  t.notMatch(JSON.stringify(r.config), /CANARY/, 'JSON form of the config does not hold the URL');
  t.notMatch(inspect(r.config, { depth: 10 }), /CANARY/, 'inspect() form neither');
  t.notMatch(String(a?.url.kind === 'inline' ? a.url.value : ''), /CANARY/);

  const rows: Array<[string, RegExp, Record<string, string>?]> = [
    ['alerts: { webhooks: [ { name: x } ] }\n', /give exactly one of url .* and url_secret/],
    ['alerts: { webhooks: [ { name: x, url: "https://a.example/x", url_secret: s } ] }\n', /give exactly one/],
    ['alerts: { webhooks: [ { name: x, url: "${HOOK}" } ] }\n', /alerts\.webhooks\[0\]\.url \(x\) must use https/, { HOOK: 'http://hooks.example.com/services/CANARY' }],
    ['alerts: { webhooks: [ { name: x, url: "${HOOK}" } ] }\n', /is not a URL/, { HOOK: 'CANARY-not-a-url' }],
    ['alerts: { webhooks: [ { name: x, url: "https://a.example/1" }, { name: x, url: "https://a.example/2" } ] }\n', /the name "x" is used twice/],
    ['alerts: { webhooks: [ { name: x, url: "https://a.example/1", percents: [90] } ] }\n', /90 is not one of metering\.thresholds \(50, 80, 100\)/],
    ['alerts: { webhooks: [ { name: x, url: "https://a.example/1", on: [something_else] } ] }\n', /alerts\.webhooks\[0\]\.on/],
    ['alerts: { retry: { first_delay_ms: 5000, max_delay_ms: 1000 } }\n', /max_delay_ms must be at least first_delay_ms/],
    ['alerts: { webhooks: [ { name: x, url: "${NOPE}" } ] }\n', /environment variable NOPE is not set/],
  ];
  for (const [text, want, env] of rows) {
    const bad = parseGatewayConfig('tollgate.yaml', text, env ?? {});
    t.notOk(bad.ok, text);
    if (!bad.ok) {
      const msg = bad.problems.map(formatProblem).join('\n');
      t.match(msg, want, text);
      t.notMatch(msg, /CANARY/, 'a problem never quotes the URL');
    }
  }
  const loop = parseGatewayConfig('tollgate.yaml', 'alerts: { webhooks: [ { name: x, url: "http://127.0.0.1:9/hook" } ] }\n', {});
  t.ok(loop.ok, 'http is allowed on loopback (tests, a local relay)');
});

const EVENT: ThresholdEvent = {
  scope: 'team:sre', label: 'team sre', window: 'month', windowKey: 'month:2026-11', percent: 80, limitMicros: 500_000_000,
  spentMicros: 401_230_000, resetsAt: '2026-12-01T00:00:00.000Z', cause: 'spend', at: '2026-11-20T10:00:00.000Z',
};

t.test('threshold messages: Slack-compatible text + blocks, escaped; JSON form; event key', async (t) => {
  t.equal(thresholdEventKey(EVENT), 'budget_threshold|team:sre|month:2026-11|80');
  t.equal(thresholdText(EVENT), 'Tollgate: team sre has used 80% of its monthly budget: $401.23 of $500.00 (resets 2026-12-01 00:00 UTC).');
  const s = slackPayload(EVENT);
  t.equal(s.text, thresholdText(EVENT), 'text: what clients without blocks (Mattermost, Teams relays) show');
  t.match(s.blocks[0], { type: 'section', text: { type: 'mrkdwn', text: /^:warning: Tollgate: team sre/ } });
  t.match(s.blocks[1], { type: 'context', elements: [{ type: 'mrkdwn', text: /scope team:sre · window month:2026-11 · 80% · spend/ } ] });
  const full = thresholdText({ ...EVENT, percent: 100, spentMicros: 500_100_000, window: 'day', windowKey: 'day:2026-11-20', resetsAt: '2026-11-21T00:00:00.000Z' });
  t.equal(full, 'Tollgate: team sre has used 100% of its daily budget: $500.10 of $500.00. Metered requests are refused until 2026-11-21 00:00 UTC.');
  const refused = thresholdText({ ...EVENT, percent: 100, cause: 'refused' });
  t.match(refused, /has exhausted its monthly budget of \$500\.00 \(\$401\.23 settled, the rest held by requests in flight\); metered requests are refused until/);
  t.match(slackPayload({ ...EVENT, percent: 100, cause: 'refused' }).blocks[0], { text: { text: /^:no_entry: / } });
  const odd = slackPayload({ ...EVENT, scope: 'user:<a&b>@x', label: 'user <a&b>@x' });
  t.match(JSON.stringify(odd.blocks), /user &lt;a&amp;b&gt;@x/, 'mrkdwn control characters escaped in blocks');
  t.match(odd.text, /user <a&b>@x/, 'plain text left as is');
  t.same(jsonPayload(EVENT), {
    text: thresholdText(EVENT), event: 'budget_threshold', scope: 'team:sre', window: 'month', window_key: 'month:2026-11', percent: 80,
    cause: 'spend', limit_micros: 500_000_000, spent_micros: 401_230_000, resets_at: '2026-12-01T00:00:00.000Z', at: '2026-11-20T10:00:00.000Z',
  });
});

t.test('retry rule: which answers are retried, exponential capped backoff, Retry-After', async (t) => {
  const table: Array<[number, string]> = [[200, 'delivered'], [204, 'delivered'], [301, 'give_up'], [400, 'give_up'], [403, 'give_up'], [404, 'give_up'], [410, 'give_up'],
    [408, 'retry'], [425, 'retry'], [429, 'retry'], [500, 'retry'], [502, 'retry'], [503, 'retry']];
  for (const [status, want] of table) t.equal(classifyStatus(status), want, String(status));
  const r = { firstDelayMs: 8000, maxDelayMs: 60_000 };
  t.same([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, r)), [8000, 16_000, 32_000, 60_000, 60_000]);
  t.equal([1, 2, 3, 4].reduce((s, n) => s + retryDelayMs(n, r), 0), 116_000, 'defaults: 5 attempts over about 2 minutes');
  t.equal(retryDelayMs(1, r, 30_000), 30_000, 'a longer Retry-After is honoured');
  t.equal(retryDelayMs(1, r, 1000), 8000, 'a shorter one does not speed retries up');
  t.equal(retryDelayMs(1, r, 3_600_000), 60_000, 'capped');
  t.equal(parseRetryAfter('12', 0), 12_000);
  t.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:30 GMT', 10_000), 20_000);
  t.equal(parseRetryAfter('soon', 0), undefined);
  t.equal(parseRetryAfter(undefined, 0), undefined);
});
