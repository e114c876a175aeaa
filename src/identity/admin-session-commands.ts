// Owns: `tollgate sessions list|end` as library calls — the admin dashboard's sign-in sessions in
// tollgate.db, listed (never their ids) and ended by user or all at once (incident response,
// offboarding), each end recorded as an `admin_sessions_ended` event in the same transaction.
import { auditUnavailable, cliActor, removeAccessWithEvent, storeFailure } from '../audit/audit-commands.ts';
import { TollgateError } from '../errors.ts';
import { openDatabase, withDatabase } from '../store/database.ts';
import { endAdminSessions, listAdminSessions } from '../store/sqlite-admin-sessions.ts';

/** The event names at most this many users (`sessions` counts them all). */
const MAX_EMAILS_IN_EVENT = 100;

export interface SessionListRow { email: string; issuer: string; subject: string; groups: string[]; createdAt: string; expiresAt: string }

/**
 * Live sessions, newest first: not expired, and within `ttlMs` (the configured session_ttl) as the
 * gateway counts them; `email` narrows to one user. Sessions of an issuer removed from the config
 * are listed until they expire (the gateway refuses them).
 */
export function sessionsList(opts: { dbFile: string; email?: string; ttlMs?: number; now?: number; busyTimeoutMs?: number }): SessionListRow[] {
  const now = opts.now ?? Date.now();
  return withDatabase(opts.dbFile, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }, (db) => listAdminSessions(db, now, opts.email, opts.ttlMs)).map((s) => ({
    email: s.email, issuer: s.issuer, subject: s.subject, groups: s.groups,
    createdAt: new Date(s.createdAt).toISOString(), expiresAt: new Date(s.expiresAt).toISOString(),
  }));
}

export interface SessionsEndOptions {
  dbFile: string;
  /** End this user's sessions (case-insensitive). */
  email?: string;
  /** End every session. */
  all?: boolean;
  actor?: string;
  now?: number;
  busyTimeoutMs?: number;
}

/**
 * Ends sessions and returns the e-mail of each one ended. The deletion and its
 * `admin_sessions_ended` event commit together; when only the event cannot be written, the sessions
 * are ended anyway (like a token revocation, it only takes access away) and the verb fails naming
 * what it ended without an event.
 */
export async function sessionsEnd(opts: SessionsEndOptions): Promise<string[]> {
  if ((opts.email !== undefined) === (opts.all === true)) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', 'sessions end: give --email EMAIL or --all (exactly one)');
  }
  const target = opts.email !== undefined ? { email: opts.email } : 'all' as const;
  const now = opts.now ?? Date.now();
  const actor = opts.actor ?? cliActor();
  const db = (() => {
    try {
      return openDatabase(opts.dbFile, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs });
    } catch (err) {
      throw nothingEnded(opts.dbFile, err);
    }
  })();
  try {
    return await removeAccessWithEvent(db, opts.dbFile, {
      change: async () => endAdminSessions(db, target, now),
      event: (emails) => ({
        type: 'admin_sessions_ended', actor,
        detail: { by: 'cli', target: target === 'all' ? 'all' : { email: target.email }, sessions: emails.length, emails: [...new Set(emails)].slice(0, MAX_EMAILS_IN_EVENT) },
      }),
      doneWithoutEvent: (emails) => `ended ${emails.length} admin session(s) without an admin_sessions_ended event`,
      now,
    });
  } catch (err) {
    throw nothingEnded(opts.dbFile, err);
  } finally {
    db.close();
  }
}

/** A store failure before anything was ended: TOLLGATE_ERR_AUDIT saying so (other errors as they are). */
function nothingEnded(dbFile: string, err: unknown): unknown {
  const why = storeFailure(err);
  return why === undefined ? err : auditUnavailable(dbFile, why, 'no session was ended', err);
}
