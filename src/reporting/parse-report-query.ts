// Owns: the query strings of the admin API's read routes → typed, bounded values, or a message
// that says what is wrong (the route answers 400). Unknown and repeated parameters are refused so
// a misspelt filter never silently widens a query. PURE: the clock is an argument.
import type { AuditDecision } from '../audit/audit-record.ts';
import { isCostDimension, type CostDimension } from './group-costs.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const DECISIONS: readonly AuditDecision[] = ['allow', 'direct', 'deny', 'error'];
const UNITS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** The earliest and latest times a query may name: 2000-01-01 and 2200-01-01. */
const MIN_TIME = Date.UTC(2000, 0, 1);
const MAX_TIME = Date.UTC(2200, 0, 1);

class QueryError extends Error {}

/** A duration back from now (`90m`, `24h`, `7d`, `2w`: one number and one unit, at most 10 years). */
export function parseLookback(text: string): number | undefined {
  const m = /^([1-9]\d{0,5})(m|h|d|w)$/.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number); // the pattern admits only the units of UNITS
  return ms > 0 && ms <= 3660 * 86_400_000 ? ms : undefined;
}

/** ISO date or date-time, epoch milliseconds (12–15 digits), or a duration back from now. */
export function parseTime(text: string, now: number): number | undefined {
  let ms: number | undefined;
  if (/^\d{12,15}$/.test(text)) ms = Number(text);
  else if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) ms = Date.parse(text);
  else {
    const back = parseLookback(text);
    if (back !== undefined) ms = now - back;
  }
  return ms !== undefined && Number.isFinite(ms) && ms >= MIN_TIME && ms <= MAX_TIME ? ms : undefined;
}

function reader(q: URLSearchParams, allowed: readonly string[]) {
  for (const k of new Set(q.keys())) {
    if (!allowed.includes(k)) throw new QueryError(`Unknown parameter ${JSON.stringify(k.slice(0, 40))}; this route takes ${allowed.length ? allowed.join(', ') : 'no parameters'}.`);
    if (q.getAll(k).length > 1) throw new QueryError(`Parameter ${k} is given more than once.`);
  }
  const text = (k: string, max = 320): string | undefined => {
    const v = q.get(k);
    if (v === null || v === '') return undefined;
    if (v.length > max) throw new QueryError(`${k} is longer than ${max} characters.`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(v)) throw new QueryError(`${k} holds a control character.`);
    return v;
  };
  return {
    text,
    time(k: string, now: number): number | undefined {
      const v = text(k, 40);
      if (v === undefined) return undefined;
      const ms = parseTime(v, now);
      if (ms === undefined) throw new QueryError(`${k}=${JSON.stringify(v)} is not a time: give an ISO date (2026-05-01), a date-time, epoch milliseconds, or a duration back from now (24h, 7d).`);
      return ms;
    },
    /** A whole number in [min, max], written in plain digits (no sign, exponent, fraction or spaces). */
    int(k: string, min: number, max: number): number | undefined {
      const v = text(k, 12);
      if (v === undefined) return undefined;
      const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) throw new QueryError(`${k} must be a whole number from ${min} to ${max}.`);
      return n;
    },
    oneOf<T extends string>(k: string, values: readonly T[]): T | undefined {
      const v = text(k, 40);
      if (v === undefined) return undefined;
      if (!(values as readonly string[]).includes(v)) throw new QueryError(`${k} must be one of ${values.join(', ')}.`);
      return v as T;
    },
  };
}

function run<T>(fn: () => T): Parsed<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof QueryError) return { ok: false, message: err.message };
    throw err;
  }
}

function window(since: number | undefined, until: number | undefined): { since?: number; until?: number } {
  if (since !== undefined && until !== undefined && since >= until) throw new QueryError('since must be before until.');
  return { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
}

export interface AuditQuery {
  since?: number; until?: number; user?: string; agent?: string; team?: string; project?: string;
  host?: string; decision?: AuditDecision; status?: string; limit?: number; cursor?: string;
}

/** GET /api/v1/audit */
export function parseAuditQuery(q: URLSearchParams, now: number): Parsed<AuditQuery> {
  return run(() => {
    const r = reader(q, ['since', 'until', 'user', 'agent', 'team', 'project', 'host', 'decision', 'status', 'limit', 'cursor']);
    const out: AuditQuery = window(r.time('since', now), r.time('until', now));
    for (const k of ['user', 'agent', 'team', 'project', 'host'] as const) {
      const v = r.text(k);
      if (v !== undefined) out[k] = v;
    }
    const decision = r.oneOf('decision', DECISIONS);
    if (decision !== undefined) out.decision = decision;
    const status = r.text('status', 3);
    if (status !== undefined) {
      if (!/^([1-5]\d\d|[1-5]xx)$/i.test(status)) throw new QueryError('status must be a status code (403) or a class (5xx).');
      out.status = status.toLowerCase();
    }
    const limit = r.int('limit', 1, 1000);
    if (limit !== undefined) out.limit = limit;
    const cursor = r.text('cursor', 40);
    if (cursor !== undefined) {
      if (!/^\d{1,15}\.\d{1,15}$/.test(cursor)) throw new QueryError('cursor is not one this API returned (use next_cursor).');
      out.cursor = cursor;
    }
    return out;
  });
}

/** GET /api/v1/audit/summary: `window` (a duration back from now, default 24h) or since/until. */
export function parseSummaryQuery(q: URLSearchParams, now: number): Parsed<{ since: number; until?: number }> {
  return run(() => {
    const r = reader(q, ['window', 'since', 'until']);
    const w = r.text('window', 12);
    const since = r.time('since', now);
    const until = r.time('until', now);
    if (w !== undefined && since !== undefined) throw new QueryError('Give window or since, not both.');
    let start = since;
    if (start === undefined) {
      const back = parseLookback(w ?? '24h');
      if (back === undefined) throw new QueryError(`window=${JSON.stringify(w)} is not a duration such as 90m, 24h, 7d or 2w.`);
      start = (until ?? now) - back;
    }
    return { since: start, ...window(start, until) } as { since: number; until?: number };
  });
}

export interface CostsQuery { by: CostDimension; since: number; until: number }

/** GET /api/v1/costs (and `tollgate costs`): by (required), since (default 30 days ago), until (default now). */
export function parseCostsQuery(q: URLSearchParams, now: number): Parsed<CostsQuery> {
  return run(() => {
    const r = reader(q, ['by', 'since', 'until']);
    const by = r.text('by', 20);
    if (by === undefined || !isCostDimension(by)) throw new QueryError('by must be one of team, agent, user, model, provider, day.');
    const since = r.time('since', now) ?? now - 30 * 86_400_000;
    const until = r.time('until', now) ?? now;
    window(since, until);
    return { by, since, until };
  });
}

export interface TrendQuery { by: Exclude<CostDimension, 'day'>; days: number }

/** GET /api/v1/costs/trend: by (default team), days shown (default 30, 1–366). */
export function parseTrendQuery(q: URLSearchParams): Parsed<TrendQuery> {
  return run(() => {
    const r = reader(q, ['by', 'days']);
    const by = r.oneOf('by', ['team', 'agent', 'user', 'model', 'provider'] as const) ?? 'team';
    const days = r.int('days', 1, 366) ?? 30;
    return { by, days };
  });
}

export interface ExportQuery { format: 'jsonl' | 'csv'; records: 'requests' | 'events'; since?: number; until?: number }

/** GET /api/v1/audit/export */
export function parseExportQuery(q: URLSearchParams, now: number): Parsed<ExportQuery> {
  return run(() => {
    const r = reader(q, ['format', 'records', 'since', 'until']);
    const format = r.oneOf('format', ['jsonl', 'csv'] as const);
    if (format === undefined) throw new QueryError('format must be jsonl or csv.');
    const records = r.oneOf('records', ['requests', 'events'] as const) ?? 'requests';
    return { format, records, ...window(r.time('since', now), r.time('until', now)) };
  });
}

/** Routes that take no parameters. */
export function parseNoQuery(q: URLSearchParams): Parsed<Record<string, never>> {
  return run(() => {
    reader(q, []);
    return {};
  });
}
