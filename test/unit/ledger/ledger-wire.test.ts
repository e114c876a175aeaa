// The compact form of ledger calls between the proxy thread and the audit writer thread: what goes
// in comes out, a refusal comes back as the request's own line object, malformed input is refused.
import t from 'tap';
import {
  packLineAdmission, packReservation, packSettleOutcome, packSettlement,
  unpackReservation, unpackReserveOutcome, unpackSettleOutcome, unpackSettlement,
} from '../../../src/ledger/ledger-wire.ts';
import { AT, req } from './ledger-contract.ts';

t.test('a reservation keeps its head and, of each line, scope, window and limit', async (t) => {
  const agent = req('r1', 1234);
  const user = req('r2', 5, { principal: { kind: 'user', subject: 'ann@acme.example', team: 'a' } });
  for (const r of [agent, user]) {
    // through a structured clone, as over the MessagePort
    const { head, lines } = unpackReservation(structuredClone(packReservation(r)));
    const { lines: _full, ...want } = r;
    t.same(head, want);
    t.same(lines, r.lines.map((l) => ({ scope: l.scope, windowKey: l.window.key, limitMicros: l.limitMicros })));
  }
  t.equal(unpackReservation(packReservation(agent)).lines.find((l) => l.scope === 'agent:bot' && l.windowKey.startsWith('day:'))?.limitMicros, 500_000);
  t.equal(unpackReservation(packReservation(agent)).lines.find((l) => l.scope === 'agent:bot' && l.windowKey.startsWith('month:'))?.limitMicros, undefined, 'no limit stays no limit');
  t.notOk('agent' in unpackReservation(packReservation(user)).head.principal, 'an absent agent stays absent');
});

t.test('an admission: ok, or the refused line by index, answered with the request\'s own line', async (t) => {
  const r = req('r1', 1234);
  t.same(unpackReserveOutcome(structuredClone(packLineAdmission({ ok: true })), r), { ok: true });
  const out = unpackReserveOutcome(structuredClone(packLineAdmission({ ok: false, index: 2, state: { spentMicros: 7, reservedMicros: 9 } })), r);
  t.same(out, { ok: false, line: r.lines[2], state: { spentMicros: 7, reservedMicros: 9 }, amountMicros: 1234 });
  t.equal(out.ok ? undefined : out.line, r.lines[2], 'the very object (its label and reset time make the refusal message)');
  t.throws(() => unpackReserveOutcome([r.lines.length, 0, 0], r), /line 6 of a reservation of 6 lines/);
  t.throws(() => unpackReserveOutcome(false, r), /reservation outcome is not an array/);
});

t.test('a settlement and its line changes', async (t) => {
  const s = { id: 'r1', at: AT, costMicros: 42, estimated: true, tokens: { inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, cacheWriteTokens: 4, cacheWrite1hTokens: 1 } };
  t.same(unpackSettlement(structuredClone(packSettlement(s))), s);
  t.same(unpackSettlement(packSettlement({ ...s, model: 'claude-haiku-4-5-20251001' })).model, 'claude-haiku-4-5-20251001');
  const o = { settled: true, lines: [{ scope: 'org', windowKey: 'month:2026-11', spentBeforeMicros: 1, spentAfterMicros: 43 }, { scope: 'team:a', windowKey: 'day:2026-11-26', spentBeforeMicros: 0, spentAfterMicros: 42 }] };
  t.same(unpackSettleOutcome(structuredClone(packSettleOutcome(o))), o);
  t.same(unpackSettleOutcome(packSettleOutcome({ settled: false, lines: [] })), { settled: false, lines: [] });
});

t.test('malformed messages are refused with what is wrong', async (t) => {
  const good = packReservation(req('r1', 1234));
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an array', { id: 'r1' }, /reservation is not an array/],
    ['too short', good.slice(0, 9), /a reservation of 9 values/],
    ['a cut line', good.slice(0, good.length - 1), /a reservation of \d+ values/],
    ['principal kind', Object.assign([...good], { 5: 'robot' }), /principal kind/],
    ['id', Object.assign([...good], { 0: 7 }), /id is not a string/],
    ['amount', Object.assign([...good], { 2: '5' }), /amountMicros is not a number/],
    ['agent', Object.assign([...good], { 8: 3 }), /agent is not a string/],
    ['limit', Object.assign([...good], { 12: 'x' }), /limit is not a number/],
  ];
  for (const [what, v, re] of cases) t.throws(() => unpackReservation(v), re, what);
  const s = packSettlement({ id: 'r1', at: AT, costMicros: 1, estimated: false, tokens: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 } });
  t.throws(() => unpackSettlement(s.slice(1)), /a settlement of 9 values/);
  t.throws(() => unpackSettlement(Object.assign([...s], { 3: 0 })), /estimated is not a boolean/);
  t.throws(() => unpackSettlement(Object.assign([...s], { 9: 1 })), /model is not a string/);
  t.throws(() => unpackSettleOutcome([true, 'org']), /settlement outcome/);
  t.throws(() => unpackSettleOutcome(['yes']), /settlement outcome/);
  t.throws(() => unpackSettleOutcome([true, 'org', 'month:2026-11', 'a', 1]), /spent before is not a number/);
});
