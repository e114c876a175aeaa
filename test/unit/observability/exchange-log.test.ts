// The exchange log line's `decision` is the audit row's: a request the policy allowed but a later
// stage refused is logged as a deny, so a log search for refusals finds what the audit shows.
import t from 'tap';
import { exchangeLogFields } from '../../../src/observability/exchange-log.ts';
import type { Exchange } from '../../../src/proxy/exchange.ts';
import { AUDIT_NOTE } from '../../../src/stages/audit-decision.ts';

function exchange(o: { effect?: 'allow' | 'deny' | 'direct'; reason?: string; status?: number; admitted: boolean }): Exchange {
  return {
    id: 'req-1', kind: 'request', via: 'intercepted', clientAddress: '127.0.0.1', method: 'GET', scheme: 'https', host: 'api.example', port: 443, path: '/x',
    startedAt: Date.now(),
    decision: o.effect ? { effect: o.effect, rule: 'policies/t.yaml:3', reason: 'allowed' } : undefined,
    outcome: { status: o.status, reason: o.reason, bytesIn: 0, bytesOut: 0 },
    notes: o.admitted ? { [AUDIT_NOTE]: { admitted: true, committed: true, failOpen: false } } : {},
  } as unknown as Exchange;
}

const cases: Array<[string, Parameters<typeof exchange>[0], string]> = [
  ['allowed and forwarded', { effect: 'allow', status: 200, admitted: true }, 'allow'],
  ['allowed, forwarded, upstream failed', { effect: 'allow', reason: 'upstream_unreachable', status: 502, admitted: true }, 'allow'],
  ['direct tunnel', { effect: 'direct', status: 200, admitted: true }, 'direct'],
  ['allowed by policy, refused later (reflected credential)', { effect: 'allow', reason: 'credential_reflected', status: 403, admitted: false }, 'deny'],
  ['allowed by policy, refused later (budget)', { effect: 'allow', reason: 'budget_exceeded', status: 402, admitted: false }, 'deny'],
  ['allowed by policy, audit store down', { effect: 'allow', reason: 'audit_unavailable', status: 503, admitted: false }, 'error'],
  ['denied by policy', { effect: 'deny', reason: 'host_not_allowed', status: 403, admitted: false }, 'deny'],
  ['malformed, no decision', { reason: 'malformed_request', status: 400, admitted: false }, 'deny'],
];
for (const [name, o, want] of cases) t.equal(exchangeLogFields(exchange(o))['decision'], want, name);
