// Owns: the audit events of gateway tokens issued and revoked outside a sign-in — `tollgate token
// issue|revoke` (break-glass, automation), the agent supervisor's agent tokens, and revocations
// through the admin API and by a sign-out — as event descriptions (type, actor, detail). PURE.
// Never the token, never its hash.
import type { AuditEventInput } from '../audit/build-audit-row.ts';
import type { RevokeTarget, TokenRecord } from '../store/token-store.ts';

/** Who issued or revoked: the `tollgate token` CLI or the agent supervisor (`tollgate agents`). */
export type TokenEventSource = 'cli' | 'supervisor';

/**
 * Who revoked: as TokenEventSource, a sign-out revoking its own token (`tollgate logout`), or an
 * admin through the admin API, signed in `via` a session or a gateway token.
 */
export type TokenRevocationSource = TokenEventSource | 'logout' | { by: 'admin_api'; via: 'session' | 'token' };

export function tokenIssuedEvent(r: TokenRecord, actor: string, by: TokenEventSource): Required<AuditEventInput> {
  return {
    type: 'token_issued', actor,
    detail: {
      by, token_id: r.id, kind: r.kind, subject: r.subject, teams: [...r.teams],
      projects: r.projects === undefined ? null : [...r.projects], roles: [...(r.roles ?? [])],
      issued_by: r.issuedBy, ttl_ms: r.expiresAt - r.createdAt, expires_at: r.expiresAt,
    },
  };
}

/** One detail shape for every revocation (`target` as the request named it; `via` from the admin API only). */
export function tokenRevokedEvent(target: RevokeTarget, revoked: readonly TokenRecord[], actor: string, source: TokenRevocationSource): Required<AuditEventInput> {
  return {
    type: 'token_revoked', actor,
    detail: {
      ...(typeof source === 'string' ? { by: source } : { by: source.by, via: source.via }),
      target: 'id' in target ? { id: target.id } : { [target.kind]: target.subject },
      token_ids: revoked.map((r) => r.id), subjects: [...new Set(revoked.map((r) => r.subject))],
    },
  };
}
