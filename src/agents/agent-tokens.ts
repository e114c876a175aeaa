// Owns: the managed agents' gateway tokens — issued through the token service when an agent first
// starts, reused while more than half their lifetime remains, rotated (new token, old one revoked)
// after that. Tokens earlier supervisor runs left active are revoked on the first issue.
import type { TokenService } from '../identity/token-service.ts';
import type { SupervisedAgent } from './agent-spec.ts';
import type { AgentTokenSource } from './supervisor.ts';

export const SUPERVISOR_ISSUER = 'tollgate-agents';

export function createAgentTokenSource(svc: TokenService, opts: { ttlMs?: number; now?: () => number } = {}): AgentTokenSource {
  const ttlMs = opts.ttlMs ?? 24 * 3_600_000;
  const now = opts.now ?? Date.now;
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
      // Rotation: the previous run has ended (runs of one agent never overlap), so its token goes.
      const stale = held
        ? [held.id]
        : (await svc.list({ kind: 'agent', subject: agent.key }))
          .filter((r) => r.issuedBy === SUPERVISOR_ISSUER && r.revokedAt === null && r.expiresAt > t && r.id !== issued.record.id)
          .map((r) => r.id);
      for (const id of stale) await svc.revoke({ id }, t);
      current.set(agent.key, { token: issued.token, id: issued.record.id, expiresAt: issued.record.expiresAt });
      return issued.token;
    },
  };
}
