// Owns: the managed agents' gateway tokens — issued through the token service when an agent first
// starts, reused while more than half their lifetime remains, rotated (new token, old one revoked)
// after that. Tokens earlier supervisor runs left active are revoked on the first issue. Each issue
// and revocation is recorded (`token_issued`, `token_revoked`, by `supervisor`).
import type { BestEffortAudit } from '../audit/audit-commands.ts';
import { tokenIssuedEvent, tokenRevokedEvent } from '../identity/token-events.ts';
import type { TokenService } from '../identity/token-service.ts';
import type { SupervisedAgent } from './agent-spec.ts';
import type { AgentTokenSource } from './supervisor.ts';

export const SUPERVISOR_ISSUER = 'tollgate-agents';

export interface AgentTokenSourceOptions {
  ttlMs?: number;
  now?: () => number;
  /**
   * Records the token events. Called unguarded: a BestEffortAudit never throws (bestEffortAuditor
   * hands a failed write to its error callback; `tollgate agents` logs it). Unlike `tollgate token
   * issue`, an agent token is not held back when its event cannot be written: it is never shown to
   * anyone, and every request made with it is audited by the gateway, which fails closed when it
   * cannot write.
   */
  audit?: BestEffortAudit;
  /** Actor of those events (`cli:<os user>` of whoever runs the supervisor). Default `supervisor`. */
  actor?: string;
}

export function createAgentTokenSource(svc: TokenService, opts: AgentTokenSourceOptions = {}): AgentTokenSource {
  const ttlMs = opts.ttlMs ?? 24 * 3_600_000;
  const now = opts.now ?? Date.now;
  const actor = opts.actor ?? 'supervisor';
  const current = new Map<string, { token: string; id: string; expiresAt: number }>();
  return {
    async tokenFor(agent: SupervisedAgent): Promise<string> {
      const t = now();
      const held = current.get(agent.key);
      if (held && held.expiresAt - t > ttlMs / 2) return held.token;
      const issued = await svc.issueToken({
        kind: 'agent', subject: agent.key, teams: [agent.team],
        ...(agent.project ? { projects: [agent.project] } : {}),
        ttlMs, issuedBy: SUPERVISOR_ISSUER, now: t,
      });
      opts.audit?.(tokenIssuedEvent(issued.record, actor, 'supervisor'));
      // Rotation: the previous run has ended (runs of one agent never overlap), so its token goes.
      const stale = held
        ? [held.id]
        : (await svc.list({ kind: 'agent', subject: agent.key }))
          .filter((r) => r.issuedBy === SUPERVISOR_ISSUER && r.revokedAt === null && r.expiresAt > t && r.id !== issued.record.id)
          .map((r) => r.id);
      for (const id of stale) {
        const target = { id };
        const revoked = await svc.revoke(target, t);
        if (revoked.length > 0) opts.audit?.(tokenRevokedEvent(target, revoked, actor, 'supervisor'));
      }
      current.set(agent.key, { token: issued.token, id: issued.record.id, expiresAt: issued.record.expiresAt });
      return issued.token;
    },
  };
}
