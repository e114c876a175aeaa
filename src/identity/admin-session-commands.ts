// Owns: `tollgate sessions list|end` as library calls — the admin dashboard's sign-in sessions in
// tollgate.db, listed (never their ids) and ended by user or all at once (incident response,
// offboarding), each end recorded as an `admin_sessions_ended` event in the same transaction.
import { cliActor, createEventAppender } from '../audit/audit-commands.ts';
import { TollgateError } from '../errors.ts';
import { inImmediateTransaction, openDatabase, type Database } from '../store/database.ts';
import { endAdminSessions, listAdminSessions } from '../store/sqlite-admin-sessions.ts';
import { auditUnavailable, storeFailure } from './token-commands.ts';

/** The event names at most this many users (`sessions` counts them all). */
const MAX_EMAILS_IN_EVENT = 100;

export interface SessionListRow { email: string; issuer: string; subject: string; groups: string[]; createdAt: string; expiresAt: string }

function withDb<T>(dbFile: string, busyTimeoutMs: number | undefined, fn: (db: Database) => T): T {
  const db = openDatabase(dbFile, busyTimeoutMs === undefined ? {} : { busyTimeoutMs });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Live sessions (not expired by their stored expiry), newest first; `email` narrows to one user. */
export function sessionsList(opts: { dbFile: string; email?: string; now?: number; busyTimeoutMs?: number }): SessionListRow[] {
  const now = opts.now ?? Date.now();
  return withDb(opts.dbFile, opts.busyTimeoutMs, (db) => listAdminSessions(db, now, opts.email)).map((s) => ({
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
export function sessionsEnd(opts: SessionsEndOptions): string[] {
  if ((opts.email !== undefined) === (opts.all === true)) {
    throw new TollgateError('TOLLGATE_ERR_USAGE', 'sessions end: give --email EMAIL or --all (exactly one)');
  }
  const target = opts.email !== undefined ? { email: opts.email } : 'all' as const;
  const now = opts.now ?? Date.now();
  const actor = opts.actor ?? cliActor();
  const event = (emails: string[]) => ({
    type: 'admin_sessions_ended', actor,
    detail: { by: 'cli', target: target === 'all' ? 'all' : { email: target.email }, sessions: emails.length, emails: [...new Set(emails)].slice(0, MAX_EMAILS_IN_EVENT) },
  });
  try {
    return withDb(opts.dbFile, opts.busyTimeoutMs, (db) => {
      const append = createEventAppender(db, () => now);
      let auditError: unknown;
      try {
        return inImmediateTransaction(db, () => {
          const emails = endAdminSessions(db, target, now);
          try {
            append([event(emails)]);
          } catch (err) {
            auditError = err;
            throw err;
          }
          return emails;
        });
      } catch (err) {
        if (auditError === undefined) throw err;
      }
      const emails = inImmediateTransaction(db, () => endAdminSessions(db, target, now));
      const why = storeFailure(auditError) ?? (auditError as Error).message;
      throw auditUnavailable(opts.dbFile, why, `ended ${emails.length} admin session(s) without an admin_sessions_ended event`, auditError);
    });
  } catch (err) {
    if (err instanceof TollgateError) throw err;
    const why = storeFailure(err);
    throw why === undefined ? err : auditUnavailable(opts.dbFile, why, 'no session was ended', err);
  }
}
