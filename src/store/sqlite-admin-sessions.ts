// Owns: the admin listener's sign-in sessions on tollgate.db (table `admin_sessions`, migration 7),
// so a restart or a deploy signs no one out. Keyed by the SHA-256 of the session id (the cookie is
// never stored); expired rows are swept when a session is created (createAdminSessions refuses and
// removes them when read); at most
// `max` sessions are kept (those expiring soonest go first). Writes happen only at sign-in and
// sign-out (on the proxy's loop, like token touches: rare). Prepared once per table.
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

/** The database must have been opened with openDatabase (migration 7 applied). */
export function sqliteSessionTable(db: Database): SessionTable {
  const insert = db.prepare<unknown[]>(
    'INSERT INTO admin_sessions (id_hash, email, issuer, subject, groups, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const sweep = db.prepare<[number]>('DELETE FROM admin_sessions WHERE expires_at <= ?');
  const count = db.prepare<[], number>('SELECT count(*) FROM admin_sessions').pluck(true);
  // over the bound: those that expire soonest go (through the expiry index, no sort of the table)
  const trim = db.prepare<[number]>('DELETE FROM admin_sessions WHERE id_hash IN (SELECT id_hash FROM admin_sessions ORDER BY expires_at LIMIT ?)');
  const select = db.prepare<[string], SessionRow>('SELECT email, issuer, subject, groups, csrf_token, created_at, expires_at FROM admin_sessions WHERE id_hash = ?');
  const remove = db.prepare<[string]>('DELETE FROM admin_sessions WHERE id_hash = ?');
  return {
    put(idHash, s, max) {
      inImmediateTransaction(db, () => {
        sweep.run(s.createdAt);
        const over = (count.get() as number) + 1 - max;
        if (over > 0) trim.run(over);
        insert.run(idHash, s.email, s.issuer, s.subject, JSON.stringify(s.groups), s.csrfToken, s.createdAt, s.expiresAt);
      });
    },
    get(idHash) {
      const r = select.get(idHash);
      if (r === undefined) return undefined;
      const s = toSession(r);
      if (s === undefined) {
        // a row that cannot be read is no session
        try {
          remove.run(idHash);
        } catch {
          // the store is busy: refused anyway
        }
      }
      return s;
    },
    delete: (idHash) => remove.run(idHash).changes > 0,
  };
}
