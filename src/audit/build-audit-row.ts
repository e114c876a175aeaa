// Owns: turning an Exchange into its audit row (decision snapshot or completed row) and an event
// description into an event row. PURE: the clock and the "admitted" fact are arguments; no I/O.
// Never copies headers, bodies, query strings or tokens: only the named fields of AuditRequestRow.
import { REASONS, type ReasonCode } from '../errors.ts';
import type { Exchange } from '../proxy/exchange.ts';
import type { AuditDecision, AuditEventRow, AuditRequestRow } from './audit-record.ts';
import { canonicalJson } from './canonical-json.ts';

/** Longest path and error text kept in a row; longer text is cut with a marker. */
export const MAX_PATH_CHARS = 2048;
export const MAX_ERROR_CHARS = 1000;

const GATEWAY_TOKEN = /tg_[A-Za-z0-9_-]{43}/g;
/** Credentials that may appear in free text (error messages): schemes followed by a value. */
const AUTH_VALUE = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;

/** Removes gateway tokens and Authorization-style values from free text, then applies `redact`. */
export function scrubText(text: string, redact?: (s: string) => string): string {
  const out = text.replace(GATEWAY_TOKEN, 'tg_[REDACTED]').replace(AUTH_VALUE, (_m, scheme: string) => `${scheme} [REDACTED]`);
  return redact ? redact(out) : out;
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function int(n: number | undefined): number | null {
  return n === undefined || !Number.isFinite(n) ? null : Math.max(0, Math.round(n));
}

export interface BuildAuditRowOptions {
  /** Milliseconds since the epoch: the decision time (phase `decision`) or the end (phase `complete`). */
  now: number;
  /** `decision`: the snapshot committed before forwarding; `complete`: the final row. */
  phase: 'decision' | 'complete';
  /** The exchange passed every admission stage (the audit stage is last and records this). */
  admitted: boolean;
  /** Extra redaction (known secret values) for free text. */
  redact?: (text: string) => string;
}

/**
 * deny when the policy refused it, also after admission (a POST form body naming a denied
 * `_method`, read on its way upstream); allow/direct when admitted; deny when refused for a client
 * or policy reason (4xx); error otherwise.
 */
export function auditDecisionOf(ex: Pick<Exchange, 'decision' | 'outcome'>, admitted: boolean): AuditDecision {
  if (ex.decision?.effect === 'deny') return 'deny';
  if (admitted) return ex.decision?.effect === 'direct' ? 'direct' : 'allow';
  const reason = ex.outcome.reason as ReasonCode | undefined;
  const status = ex.outcome.status ?? (reason !== undefined ? REASONS[reason]?.status : undefined);
  return status !== undefined && status < 500 ? 'deny' : 'error';
}

export function buildAuditRow(ex: Exchange, opts: BuildAuditRowOptions): AuditRequestRow {
  const p = ex.principal;
  const complete = opts.phase === 'complete';
  const u = complete ? ex.usage : undefined;
  const reason = complete ? (ex.outcome.reason ?? ex.decision?.reason ?? null) : (ex.decision?.reason ?? 'allowed');
  const error = complete && ex.outcome.error !== undefined ? cut(scrubText(ex.outcome.error, opts.redact), MAX_ERROR_CHARS) : null;
  return {
    request_id: ex.id,
    time: Math.round(ex.startedAt),
    ended_at: complete ? Math.round(opts.now) : null,
    principal_kind: p?.kind ?? null,
    subject: p?.subject ?? null,
    token_id: p?.id ? p.id : null,
    agent: p?.agent ?? (p?.kind === 'agent' ? p.subject : null),
    team: p?.team ?? ex.decision?.team ?? null,
    project: p?.project ?? ex.decision?.project ?? null,
    kind: ex.kind,
    via: ex.via,
    method: ex.kind === 'tunnel' ? 'CONNECT' : ex.method,
    scheme: ex.scheme,
    host: ex.host,
    port: ex.port > 0 ? ex.port : null,
    path: ex.path === undefined ? null : cut(scrubText(ex.path, opts.redact), MAX_PATH_CHARS),
    decision: complete ? auditDecisionOf(ex, opts.admitted) : (ex.decision?.effect === 'direct' ? 'direct' : 'allow'),
    rule: ex.decision?.rule ?? null,
    reason,
    status: complete ? (ex.outcome.status ?? null) : null,
    duration_ms: complete ? int(opts.now - ex.startedAt) : null,
    upstream_ms: complete ? int(ex.outcome.upstreamMs) : null,
    bytes_in: complete ? (int(ex.outcome.bytesIn) ?? 0) : 0,
    bytes_out: complete ? (int(ex.outcome.bytesOut) ?? 0) : 0,
    address: ex.target?.address ?? null,
    error,
    provider: u?.provider ?? null,
    model: u?.model ?? null,
    input_tokens: u ? int(u.inputTokens) : null,
    output_tokens: u ? int(u.outputTokens) : null,
    cache_read_tokens: u ? int(u.cacheReadTokens) : null,
    cache_write_tokens: u ? int(u.cacheWriteTokens) : null,
    cost_micros: u ? int(u.costMicros) : null,
    estimated: u ? (u.estimated ? 1 : 0) : null,
  };
}

export interface AuditEventInput {
  /** snake_case, e.g. `token_issued` (see AUDIT_EVENT_TYPES). */
  type: string;
  /** `user:<email>`, `agent:<name>`, `cli:<os user>`, `gateway` … */
  actor: string;
  /** Plain data; never a secret (token values are scrubbed anyway). */
  detail?: Record<string, unknown>;
}

const EVENT_TYPE = /^[a-z][a-z0-9_]{0,63}$/;

export function buildAuditEvent(input: AuditEventInput, now: number): AuditEventRow {
  if (!EVENT_TYPE.test(input.type)) throw new TypeError(`audit event type ${JSON.stringify(input.type)} is not snake_case`);
  if (input.actor.length === 0) throw new TypeError('audit event needs an actor');
  return {
    time: Math.round(now),
    type: input.type,
    actor: cut(scrubText(input.actor), 320),
    detail: scrubText(canonicalJson(input.detail ?? {})),
  };
}
