// Owns: the one canonical, redacted log event written per exchange (named fields only: never
// headers, bodies, tokens or query strings).
import { auditDecisionOf } from '../audit/build-audit-row.ts';
import type { Exchange } from '../proxy/exchange.ts';
import { AUDIT_NOTE } from '../stages/audit-decision.ts';
import type { Logger } from './logger.ts';

export function exchangeLogFields(ex: Exchange): Record<string, unknown> {
  return {
    request_id: ex.id,
    kind: ex.kind,
    via: ex.via,
    client: ex.clientAddress,
    principal: ex.principal ? `${ex.principal.kind}:${ex.principal.subject}` : undefined,
    team: ex.principal?.team,
    project: ex.principal?.project,
    method: ex.method,
    scheme: ex.scheme,
    host: ex.host,
    port: ex.port,
    path: ex.path,
    // as on the audit row: a request the policy allowed but a later stage refused (a reflected
    // credential, a budget, a rate limit) is a deny, not an allow
    decision: auditDecisionOf(ex, ex.notes[AUDIT_NOTE] !== undefined),
    rule: ex.decision?.rule ?? undefined,
    reason: ex.outcome.reason ?? ex.decision?.reason,
    status: ex.outcome.status,
    address: ex.target?.address,
    bytes_in: ex.outcome.bytesIn,
    bytes_out: ex.outcome.bytesOut,
    duration_ms: Date.now() - ex.startedAt,
    upstream_ms: ex.outcome.upstreamMs === undefined ? undefined : Math.round(ex.outcome.upstreamMs * 10) / 10,
    error: ex.outcome.error,
  };
}

export function logExchange(logger: Logger, ex: Exchange): void {
  logger.info('exchange', exchangeLogFields(ex));
}
