// Owns: the shape of audit records as data — one row per exchange (request, tunnel or upgrade) and
// one per event — with their snake_case column names, in the order the hash chain serialises them.
// PURE: no I/O. The SQLite schema (migration 2) mirrors these names one for one.

/** The gateway's verdict on an exchange: admitted (allow = intercepted, direct = pass-through), refused, or failed. */
export type AuditDecision = 'allow' | 'direct' | 'deny' | 'error';

/** One audit row per exchange. Times are integer milliseconds since the Unix epoch (UTC). */
export interface AuditRequestRow {
  /** The exchange id (X-Tollgate-Request-Id / the `request_id` of the log line). */
  request_id: string;
  /** When the exchange started. */
  time: number;
  /** When it ended; null while the row is open (decision committed, exchange in flight). */
  ended_at: number | null;
  principal_kind: 'user' | 'agent' | 'anonymous' | null;
  /** User e-mail or agent name. */
  subject: string | null;
  /** Gateway token id (never the token). */
  token_id: string | null;
  agent: string | null;
  team: string | null;
  project: string | null;
  kind: 'request' | 'tunnel' | 'upgrade';
  via: 'plain' | 'intercepted' | 'connect';
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number | null;
  /** Normalised path, never the query string; null for tunnels. */
  path: string | null;
  decision: AuditDecision;
  /** The policy rule that decided (file:line), when one did. */
  rule: string | null;
  /** Stable reason code (`allowed`, `host_not_allowed`, `audit_unavailable`, …). */
  reason: string | null;
  status: number | null;
  duration_ms: number | null;
  upstream_ms: number | null;
  bytes_in: number;
  bytes_out: number;
  /** The vetted upstream address that was dialled. */
  address: string | null;
  error: string | null;
  provider: string | null;
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  /** Integer micro-dollars. */
  cost_micros: number | null;
  /** 1 when the usage is an estimate (stream cut short), 0 when reported, null without usage. */
  estimated: 0 | 1 | null;
}

/** The columns of AuditRequestRow in chain order (append only: a new column needs a new chain version). */
export const AUDIT_REQUEST_COLUMNS = [
  'request_id', 'time', 'ended_at', 'principal_kind', 'subject', 'token_id', 'agent', 'team', 'project',
  'kind', 'via', 'method', 'scheme', 'host', 'port', 'path', 'decision', 'rule', 'reason', 'status',
  'duration_ms', 'upstream_ms', 'bytes_in', 'bytes_out', 'address', 'error', 'provider', 'model',
  'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cost_micros', 'estimated',
] as const satisfies ReadonlyArray<keyof AuditRequestRow>;

/** A request row as stored: the row plus its place in the chain. */
export interface StoredAuditRequest extends AuditRequestRow {
  /** Insertion order in the table. */
  id: number;
  state: 'open' | 'complete';
  /** Position in the `requests` chain; null while open. */
  seq: number | null;
  hash: string | null;
}

/** Event types written today; the column is free text so later features can add their own. */
export const AUDIT_EVENT_TYPES = [
  'login', 'token_issued', 'token_revoked', 'policy_reloaded', 'policy_rejected', 'budget_threshold',
  'agent_started', 'agent_stopped', 'audit_pruned', 'audit_recovered',
] as const;
export type KnownAuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** One audit event: something that is not a request (sign-in, token, policy, budget, agent). */
export interface AuditEventRow {
  time: number;
  /** snake_case, e.g. `token_issued`. */
  type: string;
  /** Who did it: `user:<email>`, `agent:<name>`, `cli:<os user>`, `gateway`. */
  actor: string;
  /** Canonical JSON object text (keys sorted); never a secret. */
  detail: string;
}

export const AUDIT_EVENT_COLUMNS = ['time', 'type', 'actor', 'detail'] as const satisfies ReadonlyArray<keyof AuditEventRow>;

export interface StoredAuditEvent extends AuditEventRow {
  id: number;
  seq: number;
  hash: string;
}

export type AuditChainName = 'requests' | 'events';
