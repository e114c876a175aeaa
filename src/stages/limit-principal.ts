// Owns: the pipeline stage that holds each user and agent to its fairness limits (open tunnels,
// requests in flight, request rate; src/limits/principal-limits.ts) right after authentication,
// and gives the slot back when the exchange ends. A refusal is a 429 with Retry-After.
import { RequestRefusal } from '../errors.ts';
import type { PrincipalLimits } from '../limits/principal-limits.ts';
import { whenClientEnds, type Stage } from '../proxy/exchange.ts';

export function limitPrincipalStage(deps: { limits: PrincipalLimits; now?: () => number }): Stage {
  const now = deps.now ?? Date.now;
  return (ex) => {
    const p = ex.principal;
    if (!p) return;
    const key = `${p.kind}:${p.subject}`;
    const who = `${p.kind === 'agent' ? 'Agent' : 'User'} ${p.subject}`;
    // CONNECT tunnels and upgraded WebSockets hold a connection for long: they count as tunnels.
    const v = ex.kind === 'request' ? deps.limits.admitRequest(key, who, now()) : deps.limits.admitTunnel(key, who, now());
    if (!v.ok) {
      throw new RequestRefusal(v.limit === 'max_tunnels' ? 'tunnel_limit' : 'rate_limited', v.message, { retryAfterMs: v.retryAfterMs, detail: `${v.limit} (${key})` });
    }
    whenClientEnds(ex, v.release);
  };
}
