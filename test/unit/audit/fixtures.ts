// Test-only: exchanges and audit rows with fixed times, for the pure audit tests.
import type { AuditRequestRow } from '../../../src/audit/audit-record.ts';
import { newOutcome, NO_BODY, type Exchange } from '../../../src/proxy/exchange.ts';

export const T0 = Date.UTC(2026, 4, 1, 12, 0, 0);

export function exchange(over: Partial<Exchange> = {}): Exchange {
  return {
    id: 'req-1', startedAt: T0, kind: 'request', via: 'intercepted', tunnel: undefined, clientAddress: '127.0.0.1',
    method: 'POST', scheme: 'https', host: 'api.github.com', hostKind: 'dns', port: 443, path: '/repos/acme/x/issues', query: 'access_token=SECRETQUERY',
    proxyAuthorization: ['Basic YWxwaGE6dGdfc2VjcmV0'], headers: [['authorization', 'Bearer SECRETHEADER']],
    principal: { kind: 'user', id: 'tok_abc', subject: 'ann@acme.example', team: 'sre', project: 'production' },
    decision: { effect: 'allow', reason: 'allowed', rule: 'policies/sre.yaml:12', explanation: 'allowed by rule', intercept: true },
    target: { address: '140.82.112.5', port: 443, source: 'dns' },
    outcome: newOutcome(), body: NO_BODY, usage: undefined, drainOnClientAbort: undefined, settlements: [], admissionChecks: [], onClientEnd: [], responseObservers: [], notes: {},
    ...over,
  };
}

export function row(over: Partial<AuditRequestRow> = {}): AuditRequestRow {
  return {
    request_id: 'r-1', time: T0, ended_at: T0 + 20, principal_kind: 'user', subject: 'ann@acme.example', token_id: 'tok_abc',
    agent: null, team: 'sre', project: null, kind: 'request', via: 'intercepted', method: 'GET', scheme: 'https',
    host: 'api.github.com', port: 443, path: '/user', decision: 'allow', rule: 'policies/sre.yaml:3', reason: 'allowed',
    status: 200, duration_ms: 20, upstream_ms: 15, bytes_in: 0, bytes_out: 512, address: '140.82.112.5', error: null,
    provider: null, model: null, input_tokens: null, output_tokens: null, cache_read_tokens: null, cache_write_tokens: null,
    cost_micros: null, estimated: null,
    ...over,
  };
}
