// Owns: the pipeline stage that turns Proxy-Authorization into a principal (user or agent, team,
// project) — every request, also inside open tunnels, so a revocation takes effect on the next
// request — with failed attempts rate-limited per source address.
import type { AuthFailureLimiter } from '../identity/auth-failure-limiter.ts';
import { parseProxyAuthorization } from '../identity/parse-proxy-authorization.ts';
import { resolvePrincipal } from '../identity/resolve-principal.ts';
import type { TokenService } from '../identity/token-service.ts';
import { RequestRefusal } from '../errors.ts';
import type { Stage } from '../proxy/exchange.ts';

export function authenticateStage(deps: { tokens: TokenService; limiter: AuthFailureLimiter; now?: () => number }): Stage {
  const now = deps.now ?? Date.now;
  return async (ex) => {
    const t = now();
    const gate = deps.limiter.check(ex.clientAddress, t);
    if (!gate.allowed) {
      throw new RequestRefusal('rate_limited', `Too many failed proxy authentications from this address; try again in ${Math.ceil(gate.retryAfterMs / 1000)} s.`);
    }
    const fail = (reason: 'auth_required' | 'auth_invalid' | 'malformed_request', message: string, detail?: string): never => {
      if (reason !== 'auth_required') deps.limiter.recordFailure(ex.clientAddress, t);
      throw new RequestRefusal(reason, message, detail === undefined ? {} : { detail });
    };
    const parsed = parseProxyAuthorization(ex.proxyAuthorization);
    if (!parsed.ok) return fail(parsed.reason, parsed.message);
    const verified = await deps.tokens.verifyToken(parsed.token, t);
    if (!verified.ok) return fail('auth_invalid', verified.message, `token ${verified.rejection}${verified.tokenId ? ` (${verified.tokenId})` : ''}`);
    const resolved = resolvePrincipal(verified.record, parsed.scope);
    if (!resolved.ok) return fail('auth_invalid', resolved.message);
    const p = resolved.principal;
    ex.principal = {
      kind: p.kind, id: p.id, subject: p.subject, team: p.team,
      ...(p.project === undefined ? {} : { project: p.project }),
      ...(p.agent === undefined ? {} : { agent: p.agent }),
    };
    if (ex.tunnel && !ex.tunnel.principal) ex.tunnel.principal = ex.principal;
  };
}
