// Owns: the pipeline stage that turns Proxy-Authorization into a principal (user or agent, team,
// project) — on every request, also inside open tunnels, so a revocation takes effect on the next
// request. The checks themselves live in identity/authenticate-proxy-request.ts.
import { authenticateProxyRequest } from '../identity/authenticate-proxy-request.ts';
import { expiryNow } from '../identity/expiry-clock.ts';
import type { AuthFailureLimiter } from '../identity/auth-failure-limiter.ts';
import type { TokenService } from '../identity/token-service.ts';
import { RequestRefusal } from '../errors.ts';
import type { Stage } from '../proxy/exchange.ts';

export function authenticateStage(deps: { tokens: TokenService; limiter: AuthFailureLimiter; now?: () => number }): Stage {
  const now = deps.now ?? expiryNow;
  return async (ex) => {
    const r = await authenticateProxyRequest(deps, { proxyAuthorization: ex.proxyAuthorization, sourceAddress: ex.clientAddress, now: now() });
    if (!r.ok) {
      throw new RequestRefusal(r.reason, r.message, { detail: `${r.detail}${r.tokenId ? ` (token ${r.tokenId})` : ''}`, ...(r.retryAfterMs === undefined ? {} : { retryAfterMs: r.retryAfterMs }) });
    }
    const p = r.principal;
    ex.principal = {
      kind: p.kind, id: p.id, subject: p.subject, team: p.team,
      ...(p.project === undefined ? {} : { project: p.project }),
      ...(p.agent === undefined ? {} : { agent: p.agent }),
    };
    if (ex.tunnel && !ex.tunnel.principal) ex.tunnel.principal = ex.principal;
  };
}
