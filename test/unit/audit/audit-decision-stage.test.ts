// The audit stage against the in-memory sink: commit before forwarding, fail closed, fail open
// only for non-metered hosts (counted), intercepted tunnels commit nothing, completion on end.
import t from 'tap';
import { createMemoryAuditSink } from '../../../src/audit/memory-audit-sink.ts';
import { RequestRefusal } from '../../../src/errors.ts';
import { AUDIT_NOTE, auditDecisionStage, auditExchangeEnd } from '../../../src/stages/audit-decision.ts';
import { addAdmissionCheck, admissionChecksPassed } from '../../../src/proxy/exchange.ts';
import { exchange, T0 } from './fixtures.ts';

const now = () => T0 + 5;
const refusalOf = (p: void | Promise<void>): Promise<unknown> => Promise.resolve(p).then(() => undefined, (e: unknown) => e);

t.test('a forwarded request: the decision row is committed, then completed on end', async (t) => {
  const sink = createMemoryAuditSink();
  const ex = exchange();
  await auditDecisionStage({ sink, now })(ex);
  t.equal(sink.decisions.length, 1);
  t.match(sink.decisions[0], { request_id: 'req-1', decision: 'allow', status: null });
  t.match(ex.notes[AUDIT_NOTE], { admitted: true, committed: true });
  ex.outcome.status = 200;
  auditExchangeEnd({ sink, now: () => T0 + 30 })(ex);
  t.match(sink.completions[0], { request_id: 'req-1', decision: 'allow', status: 200, duration_ms: 30 });
});

t.test('the store cannot write: 503 audit_unavailable (fail closed), and the end row says so', async (t) => {
  const sink = createMemoryAuditSink();
  sink.failing = 'SQLITE_FULL';
  const ex = exchange();
  const err = await auditDecisionStage({ sink, now })(ex)?.then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof RequestRefusal);
  t.match(err, { reason: 'audit_unavailable', status: 503, detail: /SQLITE_FULL/ });
  Object.assign(ex.outcome, { status: 503, reason: 'audit_unavailable' });
  auditExchangeEnd({ sink, now })(ex);
  t.match(sink.completions[0], { decision: 'error', reason: 'audit_unavailable', status: 503 });
  t.equal(sink.status().failedDecisions, 1);
});

t.test('fail-open applies to non-metered hosts only, and is counted', async (t) => {
  const sink = createMemoryAuditSink();
  sink.failing = 'SQLITE_BUSY';
  const stage = auditDecisionStage({ sink, now, failOpenNonMetered: true });
  const plain = exchange();
  await stage(plain);
  t.match(plain.notes[AUDIT_NOTE], { admitted: true, committed: false, failOpen: true });
  t.equal(sink.status().failOpen, 1);
  const llm = exchange({ host: 'api.anthropic.com' });
  t.match(await refusalOf(stage(llm)), { reason: 'audit_unavailable' }, 'a metered host fails closed');
  const marked = exchange({ drainOnClientAbort: { maxMs: 1, maxBytes: 1 } });
  t.match(await refusalOf(stage(marked)), { reason: 'audit_unavailable' }, 'metering marks its requests');
  t.equal(sink.status().failOpen, 1);
});

t.test('an intercepted tunnel forwards nothing itself: no decision row; a direct tunnel commits one', async (t) => {
  const sink = createMemoryAuditSink();
  sink.failing = 'SQLITE_FULL';
  const intercepted = exchange({ kind: 'tunnel', via: 'connect', path: undefined });
  await auditDecisionStage({ sink, now })(intercepted);
  t.equal(sink.decisions.length, 0);
  t.match(intercepted.notes[AUDIT_NOTE], { admitted: true, committed: false });
  const direct = exchange({ kind: 'tunnel', via: 'connect', path: undefined, decision: { ...exchange().decision!, effect: 'direct' } });
  t.match(await refusalOf(auditDecisionStage({ sink, now })(direct)), { reason: 'audit_unavailable' });
  sink.failing = undefined;
  await auditDecisionStage({ sink, now })(direct);
  t.match(sink.decisions[0], { kind: 'tunnel', method: 'CONNECT', decision: 'direct' });
});

t.test('admission checks of earlier stages (the budget reservation) are awaited with the decision row', async (t) => {
  const budget = new RequestRefusal('budget_exceeded', 'Budget exceeded for team sre');
  const cases: Array<{ why: string; check: () => Promise<void>; failing?: string; want: string | undefined }> = [
    { why: 'a passing check: admitted', check: () => Promise.resolve(), want: undefined },
    { why: 'a refusing check: its refusal, though the row was committed', check: () => Promise.reject(budget), want: 'budget_exceeded' },
    { why: 'a slow refusing check still decides', check: () => new Promise((_, rej) => setTimeout(() => rej(budget), 20)), want: 'budget_exceeded' },
    { why: 'the store cannot write and the check passes: audit_unavailable', check: () => Promise.resolve(), failing: 'SQLITE_FULL', want: 'audit_unavailable' },
    { why: 'both fail: the check (the client can act on it) wins', check: () => Promise.reject(budget), failing: 'SQLITE_FULL', want: 'budget_exceeded' },
  ];
  for (const c of cases) {
    const sink = createMemoryAuditSink();
    if (c.failing) sink.failing = c.failing;
    const ex = exchange({ host: 'api.anthropic.com' });
    addAdmissionCheck(ex, c.check());
    const err = await refusalOf(auditDecisionStage({ sink, now })(ex));
    if (c.want === undefined) {
      t.equal(err, undefined, c.why);
      t.match(ex.notes[AUDIT_NOTE], { admitted: true, committed: true }, `${c.why}: admitted`);
    } else {
      t.match(err, { reason: c.want }, c.why);
      t.equal(ex.notes[AUDIT_NOTE], undefined, `${c.why}: not admitted, so its end row is not an allow`);
    }
    if (!c.failing) t.equal(sink.decisions.length, 1, `${c.why}: the decision row went to the store alongside the check`);
  }
});

t.test('a check that rejects before anyone awaits it is never an unhandled rejection', async (t) => {
  let unhandled = 0;
  const onUnhandled = () => { unhandled++; };
  process.on('unhandledRejection', onUnhandled);
  const ex = exchange();
  addAdmissionCheck(ex, Promise.reject(new RequestRefusal('budget_exceeded', 'x')));
  await new Promise((r) => setTimeout(r, 10));
  process.off('unhandledRejection', onUnhandled);
  t.equal(unhandled, 0);
  t.match(await refusalOf(admissionChecksPassed(ex)), { reason: 'budget_exceeded' }, 'and the pipeline still sees it');
});
