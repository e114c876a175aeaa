// Owns: the audit events of tokens issued and revoked outside the gateway process — `tollgate
// token issue|revoke` (break-glass, automation) and the agent supervisor's agent tokens — as
// event descriptions (type, actor, detail). PURE. Never the token, never its hash.
import type { AuditEventInput } from '../audit/build-audit-row.ts';
import type { RevokeTarget, TokenRecord } from '../store/token-store.ts';

/** Who issued or revoked: the `tollgate token` CLI or the agent supervisor (`tollgate agents`). */
export type TokenEventSource = 'cli' | 'supervisor';

export function tokenIssuedEvent(r: TokenRecord, actor: string, by: TokenEventSource): AuditEventInput {
  return {
    type: 'token_issued', actor,
    detail: {
      by, token_id: r.id, kind: r.kind, subject: r.subject, teams: [...r.teams],
      projects: r.projects === undefined ? null : [...r.projects], roles: [...(r.roles ?? [])],
      issued_by: r.issuedBy, ttl_ms: r.expiresAt - r.createdAt, expires_at: r.expiresAt,
    },
  };
}

/** The same detail keys as the admin API's revocation (`target` as the request named it). */
export function tokenRevokedEvent(target: RevokeTarget, revoked: readonly TokenRecord[], actor: string, by: TokenEventSource): AuditEventInput {
  return {
    type: 'token_revoked', actor,
    detail: {
      by, target: 'id' in target ? { id: target.id } : { [target.kind]: target.subject },
      token_ids: revoked.map((r) => r.id), subjects: [...new Set(revoked.map((r) => r.subject))],
    },
  };
}
