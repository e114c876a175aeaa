// Owns: the rule that keys people on their identity provider account — (iss, sub) — rather than on
// the e-mail address a token carries. The first account to sign in with an address holds it; another
// account (a second IdP, or the same IdP after the user was deleted and created again) that asserts
// the same address is refused until an administrator releases it (`tollgate identities unbind`),
// unless the holder's issuer is no longer configured (an IdP migration: the old accounts cannot sign
// in any more, so the new ones take their addresses over). An account whose address changed at its
// IdP moves to the new address when no one else holds it. PURE.

export interface BoundIdentity {
  /** The ID token's `iss` (the issuer URL). */
  issuer: string;
  /** The ID token's `sub`. */
  subject: string;
  /** Lower-cased e-mail address: what tokens, budgets and audit rows name. */
  email: string;
}

export type BindingDecision =
  | { ok: true; account: 'touch' | 'insert' | 'change-email'; release: BoundIdentity | undefined }
  | { ok: false; holder: BoundIdentity };

const sameAccount = (a: BoundIdentity, b: BoundIdentity) => a.issuer === b.issuer && a.subject === b.subject;

/**
 * What to do with a sign-in of `req`, given the binding of its account (`byAccount`) and the binding
 * that holds its e-mail (`byEmail`), with the `iss` values of the issuers configured now.
 * `release`: a binding of an issuer no longer configured that gives the e-mail up first.
 */
export function decideBinding(
  req: BoundIdentity,
  byAccount: BoundIdentity | undefined,
  byEmail: BoundIdentity | undefined,
  configuredIssuers: ReadonlySet<string>,
): BindingDecision {
  let release: BoundIdentity | undefined;
  if (byEmail && !sameAccount(byEmail, req)) {
    if (configuredIssuers.has(byEmail.issuer)) return { ok: false, holder: byEmail };
    release = byEmail;
  }
  const account = !byAccount ? 'insert' : byAccount.email === req.email ? 'touch' : 'change-email';
  return { ok: true, account, release };
}
