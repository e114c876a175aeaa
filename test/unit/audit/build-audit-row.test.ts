// The pure builder: Exchange → audit row (decision snapshot and completed row), events, scrubbing.
import t from 'tap';
import { auditDecisionOf, buildAuditEvent, buildAuditRow, scrubText } from '../../../src/audit/build-audit-row.ts';
import { AUDIT_REQUEST_COLUMNS } from '../../../src/audit/audit-record.ts';
import { exchange, T0 } from './fixtures.ts';

t.test('a completed, forwarded request: every named column, no query, no headers', async (t) => {
  const ex = exchange();
  Object.assign(ex.outcome, { status: 201, bytesIn: 120, bytesOut: 3400, upstreamMs: 41.6 });
  ex.usage = { provider: 'anthropic', model: 'claude-x', inputTokens: 10, outputTokens: 20, cacheReadTokens: 3, cacheWriteTokens: 4, costMicros: 1234, estimated: false };
  const r = buildAuditRow(ex, { now: T0 + 57, phase: 'complete', admitted: true });
  t.same(Object.keys(r).sort(), [...AUDIT_REQUEST_COLUMNS].sort(), 'exactly the named columns');
  t.match(r, {
    request_id: 'req-1', time: T0, ended_at: T0 + 57, principal_kind: 'user', subject: 'ann@acme.example', token_id: 'tok_abc',
    agent: null, team: 'sre', project: 'production', kind: 'request', via: 'intercepted', method: 'POST', scheme: 'https',
    host: 'api.github.com', port: 443, path: '/repos/acme/x/issues', decision: 'allow', rule: 'policies/sre.yaml:12', reason: 'allowed',
    status: 201, duration_ms: 57, upstream_ms: 42, bytes_in: 120, bytes_out: 3400, address: '140.82.112.5', error: null,
    provider: 'anthropic', model: 'claude-x', input_tokens: 10, output_tokens: 20, cache_read_tokens: 3, cache_write_tokens: 4, cost_micros: 1234, estimated: 0,
  });
  const text = JSON.stringify(r);
  for (const secret of ['SECRETQUERY', 'SECRETHEADER', 'YWxwaGE6', 'access_token']) t.notOk(text.includes(secret), `no ${secret}`);
});

t.test('the decision snapshot has no outcome yet', async (t) => {
  const ex = exchange();
  ex.outcome.status = 200;
  const r = buildAuditRow(ex, { now: T0 + 3, phase: 'decision', admitted: true });
  t.match(r, { ended_at: null, status: null, duration_ms: null, bytes_in: 0, bytes_out: 0, decision: 'allow', reason: 'allowed', address: '140.82.112.5', provider: null });
});

t.test('decision column: admitted, denied by policy, refused by the gateway', async (t) => {
  const cases: Array<[string, Parameters<typeof auditDecisionOf>[0], boolean, string]> = [
    ['admitted intercepted', { decision: exchange().decision, outcome: { ...exchange().outcome, status: 502, reason: 'upstream_unavailable' } }, true, 'allow'],
    ['admitted, then denied by the policy (a form body\'s _method)', { decision: { ...exchange().decision!, effect: 'deny', reason: 'method_not_allowed' }, outcome: { ...exchange().outcome, status: 403, reason: 'method_not_allowed' } }, true, 'deny'],
    ['admitted direct tunnel', { decision: { ...exchange().decision!, effect: 'direct' }, outcome: exchange().outcome }, true, 'direct'],
    ['policy deny', { decision: { ...exchange().decision!, effect: 'deny', reason: 'host_not_allowed' }, outcome: { ...exchange().outcome, status: 403, reason: 'host_not_allowed' } }, false, 'deny'],
    ['no credentials', { decision: undefined, outcome: { ...exchange().outcome, status: 407, reason: 'auth_required' } }, false, 'deny'],
    ['budget', { decision: exchange().decision, outcome: { ...exchange().outcome, status: 402, reason: 'budget_exceeded' } }, false, 'deny'],
    ['audit store down', { decision: exchange().decision, outcome: { ...exchange().outcome, status: 503, reason: 'audit_unavailable' } }, false, 'error'],
    ['reason without status', { decision: undefined, outcome: { ...exchange().outcome, reason: 'internal_error' } }, false, 'error'],
    ['nothing known', { decision: undefined, outcome: exchange().outcome }, false, 'error'],
  ];
  for (const [name, ex, admitted, want] of cases) t.equal(auditDecisionOf(ex, admitted), want, name);
});

t.test('tunnels: CONNECT, no path; agents: agent column; anonymous: nulls', async (t) => {
  const tunnel = buildAuditRow(exchange({ kind: 'tunnel', via: 'connect', method: 'CONNECT', path: undefined, principal: { kind: 'agent', id: 'tok_b', subject: 'sre-monitor', team: 'sre', agent: 'sre-monitor' } }), { now: T0 + 1000, phase: 'complete', admitted: true });
  t.match(tunnel, { kind: 'tunnel', method: 'CONNECT', path: null, principal_kind: 'agent', agent: 'sre-monitor', subject: 'sre-monitor' });
  const anon = buildAuditRow(exchange({ principal: undefined, decision: undefined, host: '', port: 0, target: undefined }), { now: T0, phase: 'complete', admitted: false });
  t.match(anon, { principal_kind: null, subject: null, token_id: null, team: null, host: '', port: null, address: null, rule: null, decision: 'error' });
});

t.test('free text: tokens and Authorization values are scrubbed, long text cut', async (t) => {
  const token = `tg_${'A'.repeat(43)}`;
  t.equal(scrubText(`bad ${token} and Bearer abcdefghijkl`), 'bad tg_[REDACTED] and Bearer [REDACTED]');
  t.equal(scrubText('key=hunter22', (s) => s.replace('hunter22', '[REDACTED]')), 'key=[REDACTED]');
  const ex = exchange({ path: `/x/${token}` });
  ex.outcome.error = `failed ${'x'.repeat(5000)}`;
  const r = buildAuditRow(ex, { now: T0, phase: 'complete', admitted: true });
  t.equal(r.path, '/x/tg_[REDACTED]');
  t.equal(r.error?.length, 1000);
});

t.test('events: canonical detail, snake_case type, scrubbed', async (t) => {
  const e = buildAuditEvent({ type: 'token_issued', actor: 'cli:root', detail: { z: 1, a: { y: 2, b: [1, 'x'] }, token: `tg_${'B'.repeat(43)}`, skip: undefined } }, T0);
  t.same(e, { time: T0, type: 'token_issued', actor: 'cli:root', detail: '{"a":{"b":[1,"x"],"y":2},"token":"tg_[REDACTED]","z":1}' });
  t.throws(() => buildAuditEvent({ type: 'Token Issued', actor: 'x' }, T0), /snake_case/);
  t.throws(() => buildAuditEvent({ type: 'x', actor: '' }, T0), /actor/);
  t.throws(() => buildAuditEvent({ type: 'x', actor: 'a', detail: { n: Number.NaN } }, T0), /finite/);
});
