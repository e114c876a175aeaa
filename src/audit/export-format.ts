// Owns: how audit records are written for people and pipelines — JSONL lines, RFC 4180 CSV
// (with spreadsheet-formula neutralising), ISO times, and the short table row. PURE.
import { AUDIT_REQUEST_COLUMNS, type StoredAuditEvent, type StoredAuditRequest } from './audit-record.ts';

/** Export columns: the row's named columns plus its chain position, in a stable order. */
export const EXPORT_REQUEST_COLUMNS = [...AUDIT_REQUEST_COLUMNS, 'state', 'seq', 'hash'] as const;
export const EXPORT_EVENT_COLUMNS = ['time', 'type', 'actor', 'detail', 'seq', 'hash'] as const;

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** One JSON object per line; times as ISO 8601 UTC strings (`time`, `ended_at`), the rest as stored. */
export function requestJsonLine(r: StoredAuditRequest): string {
  const out: Record<string, unknown> = { record: 'request' };
  for (const c of EXPORT_REQUEST_COLUMNS) out[c] = c === 'time' || c === 'ended_at' ? iso(r[c]) : r[c];
  return JSON.stringify(out);
}

export function eventJsonLine(e: StoredAuditEvent): string {
  let detail: unknown = e.detail;
  try {
    detail = JSON.parse(e.detail);
  } catch {
    // keep the text
  }
  return JSON.stringify({ record: 'event', time: iso(e.time), type: e.type, actor: e.actor, detail, seq: e.seq, hash: e.hash });
}

/** A CSV cell: quoted when needed; a leading = + - @ (formula in spreadsheets) is prefixed with '. */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s) && typeof v === 'string') s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(cells: readonly unknown[]): string {
  return cells.map(csvCell).join(',');
}

export function requestCsvHeader(): string {
  return csvLine(EXPORT_REQUEST_COLUMNS);
}

export function requestCsvLine(r: StoredAuditRequest): string {
  return csvLine(EXPORT_REQUEST_COLUMNS.map((c) => (c === 'time' || c === 'ended_at' ? iso(r[c]) : r[c])));
}

export function eventCsvHeader(): string {
  return csvLine(EXPORT_EVENT_COLUMNS);
}

export function eventCsvLine(e: StoredAuditEvent): string {
  return csvLine([iso(e.time), e.type, e.actor, e.detail, e.seq, e.hash]);
}

/** The columns `tollgate audit` shows in its table. */
export function tableRow(r: StoredAuditRequest): Record<string, string | number> {
  const who = r.agent ?? r.subject ?? '-';
  const target = r.kind === 'tunnel' ? `${r.host}:${r.port ?? ''}` : `${r.host}${r.path ?? ''}`;
  return {
    time: new Date(r.time).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    who,
    team: r.team ?? '-',
    method: r.method,
    target: target.length > 60 ? `${target.slice(0, 59)}…` : target,
    decision: r.decision,
    status: r.status ?? (r.state === 'open' ? 'open' : '-'),
    ms: r.duration_ms ?? '-',
    rule: r.rule ?? '-',
    reason: r.reason ?? '-',
  };
}
