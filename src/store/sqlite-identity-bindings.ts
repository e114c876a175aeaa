// Owns: the identity bindings on tollgate.db (table `sso_identities`, migration 8): which identity
// provider account — (iss, sub) — holds each e-mail address, applied with the rule of
// src/identity/identity-binding.ts in one BEGIN IMMEDIATE transaction per sign-in (so two gateways
// on one file, or two sign-ins at once, can never both take an address). Writes only at sign-in
// (on the proxy's loop, like admin sessions: rare). Also the listing and release behind
// `tollgate identities`.
import { decideBinding, type BoundIdentity } from '../identity/identity-binding.ts';
import { inImmediateTransaction, type Database } from './database.ts';

export type BindResult = { ok: true; released: BoundIdentity | undefined } | { ok: false; holder: BoundIdentity };

export interface IdentityBindings {
  /** Binds the account to its e-mail (see decideBinding), or says which account holds the address. */
  bind(identity: BoundIdentity, at: number, configuredIssuers: ReadonlySet<string>): BindResult;
}

interface Row { issuer: string; subject: string; email: string }

/** The database must have been opened with openDatabase (migration 8 applied); `beforeWrite` as sqliteSessionTable's. */
export function sqliteIdentityBindings(db: Database, opts: { beforeWrite?: () => void } = {}): IdentityBindings {
  const byAccount = db.prepare<[string, string], Row>('SELECT issuer, subject, email FROM sso_identities WHERE issuer = ? AND subject = ?');
  const byEmail = db.prepare<[string], Row>('SELECT issuer, subject, email FROM sso_identities WHERE email = ?');
  const remove = db.prepare<[string, string]>('DELETE FROM sso_identities WHERE issuer = ? AND subject = ?');
  const insert = db.prepare<[string, string, string, number, number]>('INSERT INTO sso_identities (issuer, subject, email, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)');
  const update = db.prepare<[string, number, string, string]>('UPDATE sso_identities SET email = ?, last_seen = ? WHERE issuer = ? AND subject = ?');
  return {
    bind(identity, at, configuredIssuers) {
      opts.beforeWrite?.();
      return inImmediateTransaction(db, (): BindResult => {
        const d = decideBinding(identity, byAccount.get(identity.issuer, identity.subject), byEmail.get(identity.email), configuredIssuers);
        if (!d.ok) return d;
        if (d.release) remove.run(d.release.issuer, d.release.subject);
        if (d.account === 'insert') insert.run(identity.issuer, identity.subject, identity.email, at, at);
        else update.run(identity.email, at, identity.issuer, identity.subject);
        return { ok: true, released: d.release };
      });
    },
  };
}

export interface StoredIdentity extends BoundIdentity { firstSeen: number; lastSeen: number }

/** Every binding (or the one of `email`, lower-cased), by e-mail. */
export function listIdentityBindings(db: Database, email?: string): StoredIdentity[] {
  return db.prepare<[string | null, string | null], StoredIdentity>(
    'SELECT issuer, subject, email, first_seen AS firstSeen, last_seen AS lastSeen FROM sso_identities WHERE ? IS NULL OR email = ? ORDER BY email',
  ).all(email?.toLowerCase() ?? null, email?.toLowerCase() ?? null);
}

/** Releases the address `email` (lower-cased): the next account that signs in with it takes it. Returns the binding removed. */
export function unbindIdentity(db: Database, email: string): BoundIdentity | undefined {
  return db.prepare<[string], Row>('DELETE FROM sso_identities WHERE email = ? RETURNING issuer, subject, email').get(email.toLowerCase());
}
