// Owns: turning a budget threshold event into a webhook body (pure) — Slack-compatible incoming-
// webhook JSON (`text`, plus `blocks` for Slack itself) or a plain JSON form — and the key that
// makes a delivery unique (one post per webhook, scope, window and percentage).
import type { ThresholdEvent } from '../metering/budget.ts';
import { formatUsd } from '../metering/prices.ts';

/** "budget_threshold|team:sre|month:2026-11|80" */
export function thresholdEventKey(e: Pick<ThresholdEvent, 'scope' | 'windowKey' | 'percent'>): string {
  return `budget_threshold|${e.scope}|${e.windowKey}|${e.percent}`;
}

/** Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function when(iso: string): string {
  return iso.replace(/:00\.000Z$/, 'Z').replace('T', ' ').replace(/Z$/, ' UTC');
}

/** One sentence for people: what crossed, how much is spent, when it resets. */
export function thresholdText(e: ThresholdEvent): string {
  const period = e.window === 'month' ? 'monthly' : 'daily';
  const label = e.label;
  if (e.cause === 'refused') {
    return `Tollgate: ${label} has exhausted its ${period} budget of ${formatUsd(e.limitMicros)} (${formatUsd(e.spentMicros)} settled, the rest held by requests in flight); metered requests are refused until ${when(e.resetsAt)}.`;
  }
  if (e.percent >= 100) {
    return `Tollgate: ${label} has used ${e.percent}% of its ${period} budget: ${formatUsd(e.spentMicros)} of ${formatUsd(e.limitMicros)}. Metered requests are refused until ${when(e.resetsAt)}.`;
  }
  return `Tollgate: ${label} has used ${e.percent}% of its ${period} budget: ${formatUsd(e.spentMicros)} of ${formatUsd(e.limitMicros)} (resets ${when(e.resetsAt)}).`;
}

export function slackPayload(e: ThresholdEvent): { text: string; blocks: unknown[] } {
  const icon = e.percent >= 100 || e.cause === 'refused' ? ':no_entry:' : e.percent >= 80 ? ':warning:' : ':information_source:';
  const text = thresholdText(e);
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} ${escapeSlack(text)}` } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: escapeSlack(`scope ${e.scope} · window ${e.windowKey} · ${e.percent}% · ${e.cause} · ${e.at}`) }],
      },
    ],
  };
}

export function jsonPayload(e: ThresholdEvent): Record<string, unknown> {
  return {
    text: thresholdText(e),
    event: 'budget_threshold',
    scope: e.scope, window: e.window, window_key: e.windowKey, percent: e.percent, cause: e.cause,
    limit_micros: e.limitMicros, spent_micros: e.spentMicros, resets_at: e.resetsAt, at: e.at,
  };
}

export function thresholdPayload(e: ThresholdEvent, format: 'slack' | 'json'): string {
  return JSON.stringify(format === 'slack' ? slackPayload(e) : jsonPayload(e));
}
