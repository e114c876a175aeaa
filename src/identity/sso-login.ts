// Owns: turning a verified sign-in into Tollgate's own credentials. `signIn` verifies an ID token
// with its issuer and maps it to { email, groups, teams, admin }; `exchange` (the CLI's
// `tollgate login`) additionally checks the gateway nonce, refuses an ID token seen before,
// issues a gateway token bound to the teams and admin role of this moment, and writes one
// `sso_login` log event per outcome. Group changes therefore apply at the next login. People are
// keyed on (iss, sub): the first account to sign in with an address holds it (identity_conflict
// for any other, see src/identity/identity-binding.ts).
import { createHash } from 'node:crypto';
import { isAdminGroup, teamsForGroups } from '../config/org-config.ts';
import type { Logger } from '../observability/logger.ts';
import type { OrgConfig } from '../policy/types.ts';
import type { TokenRecord } from '../store/token-store.ts';
import { identityFromClaims, type SsoIdentity } from './oidc/issuer-presets.ts';
import type { LoginNonces } from './oidc/login-nonce.ts';
import type { IssuerRegistry } from './oidc/oidc-issuer.ts';
import { OidcError } from './oidc/oidc-error.ts';
import type { TokenService } from './token-service.ts';
import { expiryNow } from './expiry-clock.ts';

export interface SignedInUser extends SsoIdentity {
  issuerName: string;
  teams: string[];
  admin: boolean;
}

export interface ExchangeRequest {
  issuer: string;
  idToken: string;
  /** The gateway nonce the CLI put in its authorization request (device flow: optional). */
  nonce: string | undefined;
  flow: 'code' | 'device';
  /** Client address, for the log event. */
  source: string;
}

export interface ExchangeResult {
  token: string;
  record: TokenRecord;
  user: SignedInUser;
}

export interface SsoLogin {
  /** Verifies and maps (teams may be empty); throws OidcError. Binds nothing: see bindIdentity. */
  signIn(issuerName: string, idToken: string, nonce: string | undefined, now: number, opts?: { allowMissingNonce?: boolean }): Promise<SignedInUser>;
  /**
   * Binds the user's account (iss, sub) to their e-mail address — called once a sign-in is about to
   * yield a token or a session, never for a refused one. Throws OidcError identity_conflict when
   * another account holds the address, store_unavailable when the store cannot answer.
   */
  bindIdentity(user: SignedInUser, at: number): void;
  exchange(req: ExchangeRequest): Promise<ExchangeResult>;
}

export type SsoAuditHook = (e: { type: string; actor: string; detail: Record<string, unknown> }) => void;

/** Binds a signed-in account (iss, sub) to its e-mail address (src/store/sqlite-identity-bindings.ts). */
export interface SsoIdentityBinder {
  bind(identity: { issuer: string; subject: string; email: string }, at: number): { ok: true; released?: { issuer: string; subject: string } | undefined } | { ok: false; holder: { issuer: string } };
}

export interface SsoLoginDeps {
  /** Also records each outcome in the audit trail (type sso_token_issued / sso_token_refused). */
  audit?: SsoAuditHook;
  issuers: IssuerRegistry;
  /**
   * Keys people on (iss, sub): a sign-in whose e-mail another account holds is refused
   * (identity_conflict). Without it (unit tests) addresses are not bound.
   */
  identities?: SsoIdentityBinder;
  tokens: TokenService;
  org: () => OrgConfig;
  nonces: LoginNonces;
  logger: Logger;
  /** Lifetime of issued gateway tokens. Default 12 h. */
  tokenTtlMs?: number;
  now?: () => number;
  /** ID tokens remembered against replay. Default 10 000. */
  replayMemory?: number;
}

function listShort(items: readonly string[], max = 8): string {
  return items.length === 0 ? 'none' : items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

export function createSsoLogin(deps: SsoLoginDeps): SsoLogin {
  const now = deps.now ?? expiryNow;
  const audit: SsoAuditHook = (e) => {
    try {
      deps.audit?.(e);
    } catch (err) {
      deps.logger.error('cannot write the sign-in audit event', { type: e.type, error: String(err) });
    }
  };
  const seen = new Map<string, number>(); // sha256(id token) → its exp (ms)
  const maxSeen = deps.replayMemory ?? 10_000;

  const remember = (idToken: string, expMs: number, at: number): boolean => {
    const key = createHash('sha256').update(idToken).digest('hex');
    const prior = seen.get(key);
    if (prior !== undefined && prior > at) return false;
    if (seen.size >= maxSeen) {
      for (const [k, exp] of seen) if (exp <= at) seen.delete(k);
      while (seen.size >= maxSeen) {
        const oldest = seen.keys().next();
        if (oldest.done === true) break;
        seen.delete(oldest.value);
      }
    }
    seen.set(key, expMs);
    return true;
  };

  const signIn = async (issuerName: string, idToken: string, nonce: string | undefined, at: number, opts: { allowMissingNonce?: boolean } = {}): Promise<SignedInUser> => {
    const issuer = deps.issuers.get(issuerName);
    if (!issuer) {
      const names = deps.issuers.list().map((i) => i.settings.name);
      throw new OidcError('bad_request', `Unknown issuer ${JSON.stringify(issuerName)}; this gateway signs in with: ${listShort(names)}.`);
    }
    const claims = await issuer.verify(idToken, { nonce, now: at, allowMissingNonce: opts.allowMissingNonce === true });
    const identity = identityFromClaims(claims, issuer.settings);
    const org = deps.org();
    const teams = teamsForGroups(org, identity.groups);
    const admin = isAdminGroup(org, identity.groups);
    return { ...identity, issuerName, teams, admin };
  };

  const bindIdentity = (user: SignedInUser, at: number): void => {
    if (!deps.identities) return;
    let bound: ReturnType<SsoIdentityBinder['bind']>;
    try {
      bound = deps.identities.bind(user, at);
    } catch (err) {
      throw new OidcError('store_unavailable', 'The sign-in could not be recorded just now; try again.', { detail: String(err), cause: err });
    }
    if (!bound.ok) {
      const holderIss = bound.holder.issuer;
      const holder = deps.issuers.list().find((i) => i.settings.issuer === holderIss)?.settings.name ?? holderIss;
      throw new OidcError(
        'identity_conflict',
        `${user.email} already belongs to another account${holder === user.issuerName ? ` of ${user.issuerName}` : ` (signed in through ${holder})`}, so this one cannot use it. If this account should take the address over, ask your Tollgate administrator to run \`tollgate identities unbind --email ${user.email}\`.`,
        { detail: `${user.email}: held by ${holderIss}, refused for ${user.issuer} ${user.subject}` },
      );
    }
    if (bound.released) {
      // the address was held by an account of an issuer no longer configured (an IdP migration)
      deps.logger.warn('an e-mail address moved to a new identity provider account', { email: user.email, from_issuer: bound.released.issuer, issuer: user.issuer });
      audit({ type: 'identity_unbound', actor: 'gateway', detail: { email: user.email, issuer: bound.released.issuer, subject: bound.released.subject, by: 'sign-in', taken_by: { issuer: user.issuer, subject: user.subject } } });
    }
  };

  return {
    signIn,
    bindIdentity,
    async exchange(req) {
      const at = now();
      const base = { issuer: req.issuer, flow: req.flow, source: req.source };
      try {
        if (req.flow === 'code' && req.nonce === undefined) throw new OidcError('bad_request', 'The sign-in request has no nonce; update the tollgate CLI.');
        if (req.nonce !== undefined && !deps.nonces.check(req.nonce, at)) {
          throw new OidcError('bad_request', 'The sign-in took too long or did not start at this gateway; run `tollgate login` again.', { detail: 'nonce not minted here or expired' });
        }
        const user = await signIn(req.issuer, req.idToken, req.nonce, at, { allowMissingNonce: req.flow === 'device' });
        if (user.teams.length === 0) {
          throw new OidcError(
            'no_team',
            `You are signed in as ${user.email}, but none of your groups (${listShort(user.groups)}) belongs to a team of ${deps.org().organization}, so there is no policy to send your traffic under. Ask your Tollgate administrator to add one of them to a team's idp_groups in org.yaml.`,
            { detail: `${user.email} groups ${JSON.stringify(user.groups)}` },
          );
        }
        const expMs = (JSON.parse(Buffer.from(req.idToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number }).exp * 1000;
        if (!remember(req.idToken, expMs, at)) {
          throw new OidcError('id_token_replayed', 'This sign-in was already used; run `tollgate login` again.');
        }
        bindIdentity(user, at);
        const issued = await deps.tokens.issueToken({
          kind: 'user', subject: user.email, teams: user.teams, ...(user.admin ? { roles: ['admin'] as const } : {}),
          ttlMs: deps.tokenTtlMs ?? 12 * 3_600_000, issuedBy: `oidc:${user.issuer}`, now: at,
        });
        deps.logger.info('sso_login', {
          event: 'token_issued', outcome: 'issued', ...base, subject: user.subject, email: user.email, teams: user.teams, admin: user.admin,
          token_id: issued.record.id, expires_at: new Date(issued.record.expiresAt).toISOString(),
        });
        audit({
          type: 'sso_token_issued', actor: user.email,
          detail: { ...base, subject: user.subject, teams: user.teams, admin: user.admin, token_id: issued.record.id, expires_at: issued.record.expiresAt },
        });
        return { token: issued.token, record: issued.record, user };
      } catch (err) {
        const e = err instanceof OidcError ? err : new OidcError('idp_unavailable', 'The sign-in failed inside the gateway.', { detail: String(err), cause: err });
        deps.logger.warn('sso_login', { event: 'token_refused', outcome: 'refused', ...base, code: e.code, detail: e.detail ?? e.message });
        audit({ type: 'sso_token_refused', actor: 'anonymous', detail: { ...base, code: e.code } });
        throw e;
      }
    },
  };
}
