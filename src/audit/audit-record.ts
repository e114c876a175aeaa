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

/**
 * The event types written today, with what each records (its actor and its `detail` keys). The
 * column is free text so later features can add their own; a type written anywhere in src/ must be
 * listed here (test/unit/docs/audit-docs.test.ts scans for them), and docs/reference/audit-schema.md
 * is generated from this list.
 */
export const AUDIT_EVENT_TYPE_DOCS = {
  sso_token_issued: 'A user signed in through SSO (`tollgate login`) and was issued a gateway token. Actor: the user\'s e-mail. Detail: `issuer`, `flow`, `source`, `subject`, `teams`, `admin`, `token_id`, `expires_at`.',
  sso_token_refused: 'An SSO sign-in was refused. Actor: `anonymous`. Detail: `issuer`, `flow`, `source`, `code` (why).',
  token_issued: 'A token was issued outside SSO sign-in: `tollgate token issue` (`by` `cli`; committed in the same transaction as the token, so an audit store that cannot be written issues no token), or an agent token issued or rotated by `tollgate agents` (`by` `supervisor`). Actor: `cli:<os user>`. Detail: `by`, `token_id`, `kind`, `subject`, `teams`, `projects` (null: every project of its team), `roles`, `issued_by`, `ttl_ms`, `expires_at`; never the token or its hash.',
  token_revoked: 'Gateway tokens were revoked: by an admin through the admin API (`by` `admin_api`; actor `user:<email>`; `via` `session` or `token`), with `tollgate token revoke` (`by` `cli`), or a rotated agent token by `tollgate agents` (`by` `supervisor`); those two have actor `cli:<os user>`. A sign-out (`tollgate logout`, `POST /api/v1/auth/revoke`) revokes its own token: `by` `logout`, actor `user:<email>`. Detail: `by`, `via` (admin API only), `target` (`id`, `user` or `agent`, as asked), `token_ids`, `subjects` (empty when nothing active matched).',
  admin_signed_in: 'A user signed in to the admin dashboard (`/auth/callback`) and was given a session. Actor: `user:<email>`. Detail: `issuer` (its URL), `subject`, `admin` (in an admin group of org.yaml), `source` (client address), `expires_at`.',
  admin_sign_in_refused: 'A dashboard sign-in was refused after the identity provider issued an ID token for it (the token fails verification or carries the wrong nonce, the user is in no team and no admin group). Actor: `anonymous`. Detail: `issuer` (its URL), `code`, `source`. Refusals before that (an unknown or foreign `state`, an IdP error, a forged code) are only logged, and every refusal counts against the address like a failed sign-in (past the limit: 429, nothing written).',
  admin_signed_out: 'A dashboard session was ended by its user (`POST /auth/logout`). Actor: `user:<email>`. Detail: `issuer`, `source`.',
  identity_unbound: 'An e-mail address was released: with `tollgate identities unbind` (actor `cli:<os user>`; the next identity provider account that signs in with it holds it), or at a sign-in, because the account that held it belongs to an issuer no longer configured (actor `gateway`; detail `by: sign-in` and `taken_by` { issuer, subject }). Detail: `email`, `issuer` and `subject` of the account that held it.',
  admin_sessions_ended: 'Dashboard sessions were ended with `tollgate sessions end`. Actor: `cli:<os user>`. Detail: `by` (`cli`), `target` (`all`, or `{ email }`), `sessions` (how many live sessions were ended), `emails` (their users, at most 100).',
  audit_exported: 'An admin exported audit records through the admin API. Actor: `user:<email>`. Detail: `records`, `format`, `since`, `until`, `count`, `via`, `source`.',
  audit_pruned: 'Retention deleted the oldest records of the chains and moved their anchors. Actor: `gateway`, or `cli` for `tollgate audit prune`. Detail: `cutoff`, and `requests` and `events`, each with `rows`, `anchor_seq`, `anchor_hash`.',
  policy_reloaded: 'A changed org.yaml or policy was compiled and put in force. Actor: `gateway`. Detail: `trigger`, `generation`, `problems` (empty).',
  policy_rejected: 'A changed org.yaml or policy was invalid; the last good one stays in force. Actor: `gateway`. Detail: `trigger`, `generation`, `problems` (`file:line:col: message`).',
  budget_threshold: 'A budget line crossed one of `metering.thresholds`, or a request was refused at it. Actor: `gateway`. Detail: `scope`, `label`, `window`, `windowKey`, `percent`, `limitMicros`, `spentMicros`, `resetsAt`, `cause`, `at`.',
  alert_failed: 'A threshold webhook delivery was given up after its last attempt. Actor: `gateway`. Detail: `webhook`, `event`, `attempts`, `status`, `error`.',
  agent_started: 'The agent supervisor (`tollgate agents`) started a run of a managed agent. Actor: `cli:<os user>` running the supervisor. Detail: `agent`, `team`, `project`, `pid`, `schedule` (`every 5m` or `continuous`), `restarts` (before this run).',
  agent_stopped: 'A run of a managed agent ended, or the supervisor stopped an agent that was not running because its budget was exhausted (then `pid`, `code`, `signal` and `duration_ms` are null). Actor: `cli:<os user>` running the supervisor. Detail: `agent`, `team`, `project`, `pid`, `code` (exit code), `signal`, `duration_ms`, `reason` (`exited`: code 0; `failed`: another code or a signal; `budget_exhausted`; `supervisor_stopped`), `message` (why the supervisor stopped it, else null).',
} as const satisfies Readonly<Record<string, string>>;
export type KnownAuditEventType = keyof typeof AUDIT_EVENT_TYPE_DOCS;
export const AUDIT_EVENT_TYPES = Object.keys(AUDIT_EVENT_TYPE_DOCS) as readonly KnownAuditEventType[];

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

/** One row of `audit_chain` per chain: where its kept records start and end. */
export interface AuditChainRow {
  chain: AuditChainName;
  anchor_seq: number;
  anchor_hash: string;
  head_seq: number;
  head_hash: string;
}

/**
 * What every column of the audit tables means: the single source of docs/reference/audit-schema.md
 * (scripts/generate-audit-docs.ts), checked against the columns of the migrated database
 * (test/unit/docs/audit-docs.test.ts). Types, nullability and checks come from the database itself.
 */
export const AUDIT_TABLE_DOCS: {
  readonly audit_requests: { readonly about: string; readonly columns: Readonly<Record<keyof StoredAuditRequest, string>> };
  readonly audit_events: { readonly about: string; readonly columns: Readonly<Record<keyof StoredAuditEvent, string>> };
  readonly audit_chain: { readonly about: string; readonly columns: Readonly<Record<keyof AuditChainRow, string>> };
} = {
  audit_requests: {
    about: 'One row per exchange: every HTTP request (plain or inside an intercepted tunnel), every CONNECT tunnel and every WebSocket upgrade, allowed or not. A forwarded request\'s row is inserted open, before its first byte goes upstream, and completed (and chained) when the exchange ends.',
    columns: {
      id: 'insertion order',
      request_id: 'the exchange id (`X-Request-Id`, `request_id` in logs); unique together with `time`',
      state: '`open`: the decision is committed and the exchange in flight; `complete`: ended',
      seq: 'position in the `requests` hash chain, set on completion; null exactly while open',
      hash: 'SHA-256 chain hash (hex) of this row; null while open',
      time: 'when the exchange started (ms since the epoch, UTC)',
      ended_at: 'when it ended (ms since the epoch, UTC); null while open',
      principal_kind: 'who asked: `user`, `agent`, or `anonymous`; null without valid credentials',
      subject: 'user e-mail or agent name',
      token_id: 'gateway token id (never the token)',
      agent: 'managed agent name',
      team: 'team the request acted for',
      project: 'project the request acted for',
      kind: '`request`, `tunnel` or `upgrade`',
      via: '`plain` (absolute-form request), `intercepted` (inside an intercepted tunnel) or `connect` (the CONNECT itself)',
      method: 'request method; `CONNECT` for tunnels',
      scheme: '`http` or `https` of the target',
      host: 'normalised target host',
      port: 'target port',
      path: 'normalised path, never the query string; null for tunnels',
      decision: '`allow`/`direct`: admitted and forwarded (intercepted / pass-through); `deny`: refused for a policy or client reason (4xx); `error`: refused by a gateway fault (5xx)',
      rule: '`file:line` of the policy rule that decided, when one did',
      reason: 'stable reason code (docs/reason-codes.md): `allowed` for requests that went through',
      status: 'status sent to the client (200 for an established tunnel, 499 when the client went away)',
      duration_ms: 'start to end',
      upstream_ms: 'time to the upstream\'s response headers',
      bytes_in: 'request body bytes sent upstream (for tunnels, every byte)',
      bytes_out: 'response bytes received from the upstream (for tunnels, every byte)',
      address: 'the vetted IP address that was dialled',
      error: 'what failed (at most 1,000 characters; tokens and `Bearer`/`Basic` values scrubbed)',
      provider: 'LLM provider, filled by metering',
      model: 'LLM model as the request named it, filled by metering',
      input_tokens: 'LLM input tokens',
      output_tokens: 'LLM output tokens',
      cache_read_tokens: 'LLM prompt-cache read tokens',
      cache_write_tokens: 'LLM prompt-cache write tokens',
      cost_micros: 'cost in micro-dollars (US dollars × 10⁶)',
      estimated: '1 when the usage is an estimate (stream cut short, no usage reported), 0 when reported; null without usage',
    },
  },
  audit_events: {
    about: 'One row per event: something that is not a request (sign-in, token, policy, budget, agent, retention); see "Event types".',
    columns: {
      id: 'insertion order',
      seq: 'position in the `events` hash chain',
      hash: 'SHA-256 chain hash (hex) of this row',
      time: 'when it happened (ms since the epoch, UTC)',
      type: 'what happened: an event type (snake_case)',
      actor: 'who did it: `user:<email>`, `gateway`, `cli:<os user>`, `cli`, `anonymous`, … (see each event type)',
      detail: 'canonical JSON object (keys sorted); never a secret',
    },
  },
  audit_chain: {
    about: 'One row per hash chain (`requests`, `events`): retention deletes a prefix of a chain and moves its anchor, so the records kept still verify.',
    columns: {
      chain: '`requests` or `events`',
      anchor_seq: '`seq` of the last record deleted by retention (0 before any)',
      anchor_hash: 'hash of that record: the first kept record chains from it (64 zeros before any)',
      head_seq: '`seq` of the last record',
      head_hash: 'hash of the last record',
    },
  },
};
