// Owns: the TokenStore on tollgate.db (table `tokens`, migration 1). Prepared once per store.
import type { Database } from './database.ts';
import { inImmediateTransaction } from './database.ts';
import type { RevokeTarget, TokenKind, TokenRecord, TokenRole, TokenStore } from './token-store.ts';

interface TokenRow {
  id: string;
  token_hash: string;
  kind: string;
  subject: string;
  teams: string;
  projects: string | null;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  issued_by: string;
  roles: string;
}

function parseStringArray(json: string, column: string, id: string): string[] {
  const v: unknown = JSON.parse(json);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new Error(`tokens.${column} of ${id} is not a JSON array of strings`);
  }
  return v;
}

function rolesOf(row: TokenRow): { roles?: readonly TokenRole[] } {
  const roles = parseStringArray(row.roles, 'roles', row.id);
  if (!roles.every((r): r is TokenRole => r === 'admin')) throw new Error(`tokens.roles of ${row.id} holds an unknown role`);
  return roles.length === 0 ? {} : { roles: Object.freeze(roles) };
}

function toRecord(row: TokenRow): TokenRecord {
  if (row.kind !== 'user' && row.kind !== 'agent') throw new Error(`tokens.kind of ${row.id} is ${row.kind}`);
  return Object.freeze({
    id: row.id,
    hash: row.token_hash,
    kind: row.kind as TokenKind,
    subject: row.subject,
    teams: Object.freeze(parseStringArray(row.teams, 'teams', row.id)),
    projects: row.projects === null ? undefined : Object.freeze(parseStringArray(row.projects, 'projects', row.id)),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    issuedBy: row.issued_by,
    ...rolesOf(row),
  });
}

const COLUMNS = 'id, token_hash, kind, subject, teams, projects, created_at, expires_at, revoked_at, last_used_at, issued_by, roles';

/** The database must have been opened with openDatabase (migrations 1 and 4 applied). */
/**
 * `beforeWrite` runs before every write (a file-identity check: guardConnectionFile's `check`, which
 * makes the connection read-only when the file was deleted or replaced, so the write fails rather
 * than vanish into an unlinked file).
 */
export function createSqliteTokenStore(db: Database, opts: { beforeWrite?: () => void } = {}): TokenStore {
  const beforeWrite = opts.beforeWrite ?? (() => {});
  const insert = db.prepare(
    `INSERT INTO tokens (${COLUMNS}) VALUES (@id, @token_hash, @kind, @subject, @teams, @projects, @created_at, @expires_at, @revoked_at, @last_used_at, @issued_by, @roles)`,
  );
  const byHash = db.prepare<[string], TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE token_hash = ?`);
  const byId = db.prepare<[string], TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE id = ?`);
  const listAll = db.prepare<[], TokenRow>(`SELECT ${COLUMNS} FROM tokens ORDER BY created_at DESC, id`);
  const listKind = db.prepare<[string], TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE kind = ? ORDER BY created_at DESC, id`);
  const listSubject = db.prepare<[string, string], TokenRow>(
    `SELECT ${COLUMNS} FROM tokens WHERE kind = ? AND subject = ? ORDER BY created_at DESC, id`,
  );
  const listSubjectAnyKind = db.prepare<[string], TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE subject = ? ORDER BY created_at DESC, id`);
  const activeById = db.prepare<[string], TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE id = ? AND revoked_at IS NULL`);
  const activeBySubject = db.prepare<[string, string], TokenRow>(
    `SELECT ${COLUMNS} FROM tokens WHERE kind = ? AND subject = ? AND revoked_at IS NULL ORDER BY created_at DESC, id`,
  );
  const setRevoked = db.prepare<[number, string]>('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const touch = db.prepare<[number, string, number, number]>(
    'UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ? OR last_used_at > ?)',
  );
  const prune = db.prepare<[number, number]>('DELETE FROM tokens WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?)');

  return {
    async insert(r) {
      beforeWrite();
      insert.run({
        id: r.id,
        token_hash: r.hash,
        kind: r.kind,
        subject: r.subject,
        teams: JSON.stringify(r.teams),
        projects: r.projects === undefined ? null : JSON.stringify(r.projects),
        created_at: r.createdAt,
        expires_at: r.expiresAt,
        revoked_at: r.revokedAt,
        last_used_at: r.lastUsedAt,
        issued_by: r.issuedBy,
        roles: JSON.stringify(r.roles ?? []),
      });
    },
    async findByHash(hash) {
      const row = byHash.get(hash);
      return row === undefined ? undefined : toRecord(row);
    },
    async findById(id) {
      const row = byId.get(id);
      return row === undefined ? undefined : toRecord(row);
    },
    async list(filter = {}) {
      const rows =
        filter.kind !== undefined && filter.subject !== undefined ? listSubject.all(filter.kind, filter.subject)
        : filter.kind !== undefined ? listKind.all(filter.kind)
        : filter.subject !== undefined ? listSubjectAnyKind.all(filter.subject)
        : listAll.all();
      return rows.map(toRecord);
    },
    async revoke(target: RevokeTarget, now) {
      beforeWrite();
      return inImmediateTransaction(db, () => {
        const rows = 'id' in target
          ? [activeById.get(target.id)].filter((r): r is TokenRow => r !== undefined)
          : activeBySubject.all(target.kind, target.subject);
        for (const row of rows) setRevoked.run(now, row.id);
        return rows.map((row) => toRecord({ ...row, revoked_at: now }));
      });
    },
    async touch(id, now, minIntervalMs) {
      // One conditional UPDATE is atomic on its own; a clock that went backwards also rewrites.
      beforeWrite();
      return touch.run(now, id, now - minIntervalMs, now).changes > 0;
    },
    async prune(before) {
      beforeWrite();
      return prune.run(before, before).changes;
    },
  };
}
