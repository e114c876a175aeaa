// Owns: the retry rule of webhook deliveries (pure) — which answers count as delivered, which are
// worth another attempt, and how long to wait before it (exponential, capped, Retry-After honoured).

export type DeliveryVerdict = 'delivered' | 'retry' | 'give_up';

/** 2xx delivered; 408, 425, 429 and 5xx are transient; any other answer will not change on retry. */
export function classifyStatus(status: number): DeliveryVerdict {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'retry';
  return 'give_up';
}

/** Seconds or an HTTP date → milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/**
 * The wait after `attemptsMade` failed attempts (1 → firstDelayMs, 2 → twice that, …), at most
 * maxDelayMs; a Retry-After longer than that wait is honoured up to maxDelayMs.
 */
export function retryDelayMs(attemptsMade: number, retry: { firstDelayMs: number; maxDelayMs: number }, retryAfterMs?: number): number {
  const exp = retry.firstDelayMs * 2 ** Math.max(0, attemptsMade - 1);
  const base = Math.min(retry.maxDelayMs, exp);
  return retryAfterMs === undefined ? base : Math.min(retry.maxDelayMs, Math.max(base, retryAfterMs));
}
