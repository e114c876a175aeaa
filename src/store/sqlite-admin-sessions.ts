// Owns: the admin listener's sign-in sessions on tollgate.db (table `admin_sessions`, migration 7),
// so a restart or a deploy signs no one out. Keyed by the SHA-256 of the session id (the cookie is
// never stored); expired rows are swept when a session is created (createAdminSessions refuses them
// when read, without a write); at most `max` sessions are kept (those expiring soonest go first;
// expiries are capped at start to the current session_ttl, so a shortened ttl counts). Writes happen
// only at start, sign-in and sign-out (on the proxy's loop, like token touches: rare). Prepared
// once per table.
import type { AdminSession, SessionTable } from '../admin/admin-sessions.ts';
import { inImmediateTransaction, type Database } from './database.ts';

interface SessionRow { email: string; issuer: string; subject: string; groups: string; csrf_token: string; created_at: number; expires_at: number }

function toSession(r: SessionRow): AdminSession | undefined {
  let groups: unknown;
  try {
    groups = JSON.parse(r.groups);
  } catch {
    return undefined;
  }
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) return undefined;
  return Object.freeze({
    email: r.email, issuer: r.issuer, subject: r.subject, groups: Object.freeze(groups as string[]),
    csrfToken: r.csrf_token, createdAt: r.created_at, expiresAt: r.expires_at,
  });
}

/**
 * The database must have been opened with openDatabase (migration 7 applied). `beforeWrite` runs
 * before each sign-in's write (the file-identity check: see createSqliteTokenStore).
 */
export function sqliteSessionTable(db: Database, opts: { beforeWrite?: () => void } = {}): SessionTable {
  const beforeWrite = opts.beforeWrite ?? (() => {});
  const insert = db.prepare<unknown[]>(
    'INSERT INTO admin_sessions (id_hash, email, issuer, subject, groups, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const sweep = db.prepare<[number]>('DELETE FROM admin_sessions WHERE expires_at <= ?');
  const count = db.prepare<[], number>('SELECT count(*) FROM admin_sessions').pluck(true);
  // over the bound: those that expire soonest go (through the expiry index, no sort of the table)
  const trim = db.prepare<[number]>('DELETE FROM admin_sessions WHERE id_hash IN (SELECT id_hash FROM admin_sessions ORDER BY expires_at LIMIT ?)');
  const select = db.prepare<[string], SessionRow>('SELECT email, issuer, subject, groups, csrf_token, created_at, expires_at FROM admin_sessions WHERE id_hash = ?');
  const remove = db.prepare<[string]>('DELETE FROM admin_sessions WHERE id_hash = ?');
  const cap = db.prepare<[number, number]>('UPDATE admin_sessions SET expires_at = created_at + ? WHERE expires_at > created_at + ?');
  // a cap the store could not take at start (busy, read-only) is applied with the next sign-in
  let pendingCap: number | undefined;
  return {
    capExpiry(ttlMs) {
      try {
        cap.run(ttlMs, ttlMs);
        pendingCap = undefined;
      } catch {
        pendingCap = ttlMs;
      }
    },
    put(idHash, s, max) {
      beforeWrite();
      const capFirst = pendingCap;
      inImmediateTransaction(db, () => {
        if (capFirst !== undefined) cap.run(capFirst, capFirst);
        sweep.run(s.createdAt);
        const over = (count.get() as number) + 1 - max;
        if (over > 0) trim.run(over);
        insert.run(idHash, s.email, s.issuer, s.subject, JSON.stringify(s.groups), s.csrfToken, s.createdAt, s.expiresAt);
      });
      if (capFirst !== undefined && pendingCap === capFirst) pendingCap = undefined;
    },
    get(idHash) {
      const r = select.get(idHash);
      // a row that cannot be read is no session (reads never write: it expires and is swept)
      return r === undefined ? undefined : toSession(r);
    },
    delete: (idHash) => remove.run(idHash).changes > 0,
  };
}

/** A stored admin session as `tollgate sessions list` shows it (never the id or its hash). */
export interface StoredAdminSession { email: string; issuer: string; subject: string; groups: string[]; createdAt: number; expiresAt: number }

/**
 * Sessions not yet expired by `now`, newest first: by their stored expiry and, given `ttlMs` (the
 * configured session_ttl), within it as the gateway counts them; `email` narrows to one user
 * (compared lower-cased: SSO stores e-mails lower-cased, and SQLite's NOCASE folds ASCII only).
 */
export function listAdminSessions(db: Database, now: number, email?: string, ttlMs?: number): StoredAdminSession[] {
  const ttl = ttlMs ?? Number.MAX_SAFE_INTEGER;
  const rows = db.prepare<[{ ttl: number; now: number; email: string | null }], SessionRow>(
    `SELECT email, issuer, subject, groups, csrf_token, created_at, min(expires_at, created_at + @ttl) AS expires_at FROM admin_sessions
     WHERE min(expires_at, created_at + @ttl) > @now AND (@email IS NULL OR email = @email) ORDER BY created_at DESC`,
  ).all({ ttl, now, email: email?.toLowerCase() ?? null });
  const out: StoredAdminSession[] = [];
  for (const r of rows) {
    const s = toSession(r);
    if (s !== undefined) out.push({ email: s.email, issuer: s.issuer, subject: s.subject, groups: [...s.groups], createdAt: s.createdAt, expiresAt: s.expiresAt });
  }
  return out;
}

/**
 * Ends admin sessions: every session of `email` (lower-cased, as in listAdminSessions), or all of them. Returns the
 * e-mail of each session ended (expired rows are removed too, and not counted). A running gateway
 * refuses the cookies at their next request: it reads sessions from this table.
 */
export function endAdminSessions(db: Database, target: { email: string } | 'all', now: number): string[] {
  const email = target === 'all' ? null : target.email.toLowerCase();
  const rows = db.prepare<[string | null, string | null], { email: string; expires_at: number }>(
    'DELETE FROM admin_sessions WHERE ? IS NULL OR email = ? RETURNING email, expires_at',
  ).all(email, email);
  return rows.filter((r) => r.expires_at > now).map((r) => r.email).sort();
}
