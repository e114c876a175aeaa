// Owns: the ordered, numbered schema migrations of tollgate.db, as data.
// Append only: a shipped migration is never edited (its checksum is recorded and checked at open);
// a change is a new migration with the next number. Each owner (audit, ledger, …) adds its own.

export interface Migration {
  /** 1, 2, 3, … without gaps, in array order. */
  readonly version: number;
  /** Short snake_case name, e.g. `tokens`, kept in schema_migrations for people reading the file. */
  readonly name: string;
  /** SQL run once, inside the migration's BEGIN IMMEDIATE transaction (no PRAGMA, no BEGIN/COMMIT). */
  readonly up: string;
}

/**
 * Timestamps are INTEGER milliseconds since the Unix epoch (UTC). JSON columns hold arrays of
 * strings. Tables are STRICT so a wrong type is an error, not a silent coercion.
 */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'tokens',
    up: `
CREATE TABLE tokens (
  id           TEXT    NOT NULL PRIMARY KEY,
  token_hash   TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  kind         TEXT    NOT NULL CHECK (kind IN ('user', 'agent')),
  subject      TEXT    NOT NULL CHECK (length(subject) BETWEEN 1 AND 320),
  teams        TEXT    NOT NULL CHECK (json_valid(teams) AND json_type(teams) = 'array' AND json_array_length(teams) >= 1),
  projects     TEXT             CHECK (projects IS NULL OR (json_valid(projects) AND json_type(projects) = 'array')),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  revoked_at   INTEGER,
  last_used_at INTEGER,
  issued_by    TEXT    NOT NULL,
  CHECK (expires_at > created_at),
  CHECK (kind = 'user' OR json_array_length(teams) = 1)
) STRICT;
CREATE INDEX tokens_by_subject ON tokens (kind, subject);
CREATE INDEX tokens_by_expiry ON tokens (expires_at);
`,
  },
  {
    // Audit trail (src/audit, docs/audit.md). A forwarded request's row is inserted `open` before
    // it is forwarded and chained (seq, hash) when it completes; others are inserted complete.
    // Write cost matters here (every request writes a row, docs/audit.md "Throughput"):
    // - enumerations are checked with `=`/OR, not `IN (…)`: SQLite builds an ephemeral index for
    //   every execution of a statement with an `IN` list of three or more constants, which made
    //   these checks the most expensive part of an insert. Same rules, same NULL handling.
    // - open rows are found through the `seq` index (seq IS NULL exactly while open: checked),
    //   so there is no separate index of open rows to insert into and delete from.
    // - one row per exchange is enforced on (time, request_id): the exchange's start and its id,
    //   both fixed when the decision is written. Request ids are random UUIDs; a unique index on the
    //   id alone put every insert on a random page (one dirty 4 KiB page per row in each group
    //   commit's WAL write); led by time, inserts append. The completion looks its row up there.
    // - other indexes: seq (the chain; also finds open rows), time (listings, windows, ordered by
    //   time then id), (team, time) (team filter), and a partial index of refused rows (deny/error
    //   filter), which normal traffic does not pay for.
    version: 2,
    name: 'audit',
    up: `
CREATE TABLE audit_requests (
  id                 INTEGER NOT NULL PRIMARY KEY,
  request_id         TEXT    NOT NULL,
  state              TEXT    NOT NULL CHECK (state = 'open' OR state = 'complete'),
  seq                INTEGER UNIQUE,
  hash               TEXT    CHECK (hash IS NULL OR length(hash) = 64),
  time               INTEGER NOT NULL,
  ended_at           INTEGER,
  principal_kind     TEXT    CHECK (principal_kind IS NULL OR principal_kind = 'user' OR principal_kind = 'agent' OR principal_kind = 'anonymous'),
  subject            TEXT,
  token_id           TEXT,
  agent              TEXT,
  team               TEXT,
  project            TEXT,
  kind               TEXT    NOT NULL CHECK (kind = 'request' OR kind = 'tunnel' OR kind = 'upgrade'),
  via                TEXT    NOT NULL CHECK (via = 'plain' OR via = 'intercepted' OR via = 'connect'),
  method             TEXT    NOT NULL,
  scheme             TEXT    NOT NULL CHECK (scheme = 'http' OR scheme = 'https'),
  host               TEXT    NOT NULL,
  port               INTEGER,
  path               TEXT,
  decision           TEXT    NOT NULL CHECK (decision = 'allow' OR decision = 'direct' OR decision = 'deny' OR decision = 'error'),
  rule               TEXT,
  reason             TEXT,
  status             INTEGER,
  duration_ms        INTEGER,
  upstream_ms        INTEGER,
  bytes_in           INTEGER NOT NULL DEFAULT 0,
  bytes_out          INTEGER NOT NULL DEFAULT 0,
  address            TEXT,
  error              TEXT,
  provider           TEXT,
  model              TEXT,
  input_tokens       INTEGER,
  output_tokens      INTEGER,
  cache_read_tokens  INTEGER,
  cache_write_tokens INTEGER,
  cost_micros        INTEGER,
  estimated          INTEGER CHECK (estimated IS NULL OR estimated = 0 OR estimated = 1),
  CHECK ((state = 'open') = (seq IS NULL)),
  CHECK ((seq IS NULL) = (hash IS NULL)),
  UNIQUE (time, request_id)
) STRICT;
CREATE INDEX audit_requests_by_time ON audit_requests (time);
CREATE INDEX audit_requests_by_team ON audit_requests (team, time);
CREATE INDEX audit_requests_refused ON audit_requests (time) WHERE decision = 'deny' OR decision = 'error';
CREATE TABLE audit_events (
  id     INTEGER NOT NULL PRIMARY KEY,
  seq    INTEGER NOT NULL UNIQUE,
  hash   TEXT    NOT NULL CHECK (length(hash) = 64),
  time   INTEGER NOT NULL,
  type   TEXT    NOT NULL,
  actor  TEXT    NOT NULL,
  detail TEXT    NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object')
) STRICT;
CREATE INDEX audit_events_by_time ON audit_events (time);
CREATE TABLE audit_chain (
  chain       TEXT    NOT NULL PRIMARY KEY CHECK (chain = 'requests' OR chain = 'events'),
  anchor_seq  INTEGER NOT NULL,
  anchor_hash TEXT    NOT NULL CHECK (length(anchor_hash) = 64),
  head_seq    INTEGER NOT NULL,
  head_hash   TEXT    NOT NULL CHECK (length(head_hash) = 64),
  CHECK (head_seq >= anchor_seq)
) STRICT;
INSERT INTO audit_chain (chain, anchor_seq, anchor_hash, head_seq, head_hash) VALUES
  ('requests', 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000'),
  ('events',   0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000');
`,
  },
  {
    // Spend ledger (src/ledger, src/store/sqlite-ledger.ts, docs/metering.md). One row per metered
    // request (reserved → settled | released); one counter per budget line (scope × window) holding
    // settled spend and in-flight reservations; threshold events recorded once per line and percent.
    version: 3,
    name: 'ledger',
    up: `
CREATE TABLE ledger_requests (
  id                  TEXT    NOT NULL PRIMARY KEY,
  state               TEXT    NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
  created_at          INTEGER NOT NULL,
  settled_at          INTEGER,
  principal_kind      TEXT    NOT NULL CHECK (principal_kind IN ('user', 'agent', 'anonymous')),
  subject             TEXT    NOT NULL,
  team                TEXT    NOT NULL,
  agent               TEXT,
  project             TEXT,
  provider            TEXT    NOT NULL,
  model               TEXT    NOT NULL,
  reserved_micros     INTEGER NOT NULL CHECK (reserved_micros >= 0),
  cost_micros         INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
  estimated           INTEGER NOT NULL DEFAULT 0 CHECK (estimated IN (0, 1)),
  input_tokens        INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  output_tokens       INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  cache_read_tokens   INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
  cache_write_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
  lines               TEXT    NOT NULL CHECK (json_valid(lines) AND json_type(lines) = 'array'),
  CHECK ((state = 'reserved') = (settled_at IS NULL))
) STRICT;
CREATE INDEX ledger_requests_open ON ledger_requests (created_at) WHERE state = 'reserved';
CREATE INDEX ledger_requests_by_time ON ledger_requests (created_at);
CREATE TABLE budget_counters (
  scope           TEXT    NOT NULL,
  window_key      TEXT    NOT NULL,
  spent_micros    INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
  reserved_micros INTEGER NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
  PRIMARY KEY (scope, window_key)
) STRICT, WITHOUT ROWID;
CREATE TABLE budget_thresholds (
  scope      TEXT    NOT NULL,
  window_key TEXT    NOT NULL,
  percent    INTEGER NOT NULL CHECK (percent > 0),
  at         INTEGER NOT NULL,
  PRIMARY KEY (scope, window_key, percent)
) STRICT, WITHOUT ROWID;
`,
  },
  {
    // SSO roles (src/identity/sso-login.ts, docs/identity.md): the roles a user held when the token
    // was issued by `tollgate login` (today only `admin`, from org.yaml admins.idp_groups).
    version: 4,
    name: 'token_roles',
    up: `
ALTER TABLE tokens ADD COLUMN roles TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(roles) AND json_type(roles) = 'array');
`,
  },
  {
    // Alert webhook deliveries (src/alerts, src/store/sqlite-alert-queue.ts, docs/metering.md): one
    // row per webhook and event (unique, so a threshold is posted once even across restarts),
    // pending → delivered | failed, with the attempt count and when the next attempt is due.
    version: 5,
    name: 'alert_deliveries',
    up: `
CREATE TABLE alert_deliveries (
  id              INTEGER NOT NULL PRIMARY KEY,
  webhook         TEXT    NOT NULL,
  event_key       TEXT    NOT NULL,
  payload         TEXT    NOT NULL CHECK (json_valid(payload)),
  state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_attempt_at INTEGER,
  done_at         INTEGER,
  last_status     INTEGER,
  last_error      TEXT,
  UNIQUE (webhook, event_key)
) STRICT;
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
`,
  },
  {
    // audit_requests_by_time repeated the leading column of the UNIQUE (time, request_id) index,
    // which serves every query by time as well; one index fewer to update on every row written.
    version: 6,
    name: 'drop_redundant_audit_time_index',
    up: `
DROP INDEX audit_requests_by_time;
`,
  },
  {
    // Admin sign-in sessions (src/store/sqlite-admin-sessions.ts): kept across restarts. The id is
    // stored only as its SHA-256; the CSRF token is bound to the session and useless without it.
    version: 7,
    name: 'admin_sessions',
    up: `
CREATE TABLE admin_sessions (
  id_hash    TEXT    NOT NULL PRIMARY KEY CHECK (length(id_hash) = 64),
  email      TEXT    NOT NULL,
  issuer     TEXT    NOT NULL,
  subject    TEXT    NOT NULL,
  groups     TEXT    NOT NULL CHECK (json_valid(groups) AND json_type(groups) = 'array'),
  csrf_token TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX admin_sessions_by_expiry ON admin_sessions (expires_at);
`,
  },
  {
    // Which identity provider account (iss, sub) holds each e-mail address
    // (src/store/sqlite-identity-bindings.ts): people are keyed on their account, not on the address
    // a token asserts.
    version: 8,
    name: 'sso_identities',
    up: `
CREATE TABLE sso_identities (
  issuer     TEXT    NOT NULL,
  subject    TEXT    NOT NULL,
  email      TEXT    NOT NULL UNIQUE,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (issuer, subject)
) STRICT, WITHOUT ROWID;
`,
  },
]);
