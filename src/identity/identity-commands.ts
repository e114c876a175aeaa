// Owns: `tollgate identities list|unbind` as library calls — which identity provider account holds
// each e-mail address (tollgate.db, table sso_identities), and releasing an address so that another
// account can take it at its next sign-in (a user deleted and created again at the IdP, two IdPs
// during a migration). A release and its `identity_unbound` event commit together, or neither does.
import { auditUnavailable, cliActor, createEventAppender, storeFailure } from '../audit/audit-commands.ts';
import { TollgateError } from '../errors.ts';
import { inImmediateTransaction, openDatabase, withDatabase } from '../store/database.ts';
import { listIdentityBindings, unbindIdentity } from '../store/sqlite-identity-bindings.ts';
import type { BoundIdentity } from './identity-binding.ts';

export interface IdentityListRow { email: string; issuer: string; subject: string; firstSeen: string; lastSeen: string }

export function identitiesList(opts: { dbFile: string; email?: string; busyTimeoutMs?: number }): IdentityListRow[] {
  const rows = withDatabase(opts.dbFile, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }, (db) => listIdentityBindings(db, opts.email));
  return rows.map((r) => ({ email: r.email, issuer: r.issuer, subject: r.subject, firstSeen: new Date(r.firstSeen).toISOString(), lastSeen: new Date(r.lastSeen).toISOString() }));
}

/**
 * Releases `email`; returns the binding removed, or undefined when no account held it. Throws
 * TOLLGATE_ERR_AUDIT (nothing released) when the store cannot write the release or its event.
 */
export function identitiesUnbind(opts: { dbFile: string; email: string; actor?: string; now?: number; busyTimeoutMs?: number }): BoundIdentity | undefined {
  if (opts.email.trim() === '') throw new TollgateError('TOLLGATE_ERR_USAGE', 'identities unbind: give --email EMAIL');
  const now = opts.now ?? Date.now();
  const actor = opts.actor ?? cliActor();
  try {
    const db = openDatabase(opts.dbFile, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs });
    try {
      const append = createEventAppender(db, () => now);
      return inImmediateTransaction(db, () => {
        const removed = unbindIdentity(db, opts.email);
        if (removed) append([{ type: 'identity_unbound', actor, detail: { email: removed.email, issuer: removed.issuer, subject: removed.subject } }]);
        return removed;
      });
    } finally {
      db.close();
    }
  } catch (err) {
    const why = storeFailure(err);
    throw why === undefined ? err : auditUnavailable(opts.dbFile, why, 'no address was released', err);
  }
}
