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
]);
