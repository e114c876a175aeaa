// Security case 6.10 — budget window boundaries, on a real tollgate.db with the clock in the test's
// hands. docs/metering.md ("Windows"): spend is attributed to the window in which the request was
// ADMITTED (23:59:59.9 → 00:00:03 counts for the old day); a window is a counter keyed by its
// period, so a new period starts at 0, there is no reset job, no double reset and no negative
// remainder. The pure window arithmetic and the one-day late settlement of the ledger contract are
// tested elsewhere (budget.test.ts, ledger-contract.ts); here: UTC month ends of every length, spend
// past a limit, settlements, releases and crash recovery landing after the reset, two connections
// holding cached budget lines across midnight, a team's window switched from monthly to daily with
// spend carried, and the metering stage admitting at 23:59:59.9 and settling at 00:00:03.
import t from 'tap';
import { createLedgerBudgetProbe } from '../../../src/agents/ledger-budget-probe.ts';
import { readBudgets } from '../../../src/cli/budgets-command.ts';
import { loadPriceTable } from '../../../src/config/price-config.ts';
import { RequestRefusal } from '../../../src/errors.ts';
import { budgetStatus, type BudgetStatus } from '../../../src/ledger/budget-status.ts';
import type { Ledger, LedgerLineRef, ReservationRequest } from '../../../src/ledger/ledger.ts';
import { budgetLinesFor, budgetWindow, refusalMessage, type ChargePrincipal, type ThresholdEvent } from '../../../src/metering/budget.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import type { Budget, CompiledPolicySet, OrgConfig } from '../../../src/policy/types.ts';
import { newOutcome, type Exchange } from '../../../src/proxy/exchange.ts';
import { meterLlmStage, type MeteringNote } from '../../../src/stages/meter-llm.ts';
import { createSqliteLedger } from '../../../src/store/sqlite-ledger.ts';
import { tempDb } from '../../helpers/temp-db.ts';
import { ledgerDrift } from '../../helpers/ledger-drift.ts';

const b = (monthlyUsd?: number, dailyUsd?: number): Budget => ({ monthlyUsd, dailyUsd });
const ms = (iso: string) => {
  const v = Date.parse(iso);
  if (Number.isNaN(v)) throw new Error(`bad time ${iso}`);
  return v;
};
const iso = (at: number) => new Date(at).toISOString();

/** An organisation with one team `t` and its agent `bot`; only the budgets vary. */
function org(budgets: { org?: Budget; team?: Budget; agent?: Budget } = {}): OrgConfig {
  return {
    file: 'org.yaml', organization: 'Acme', budget: budgets.org, adminGroups: [], declaredSecrets: undefined, projects: new Map(),
    teams: new Map([['t', { key: 't', name: 'T', idpGroups: [], grants: new Map(), policyFile: 'p', budget: budgets.team, userBudget: undefined }]]),
    agents: new Map([['bot', { key: 'bot', name: 'Bot', team: 't', project: undefined, every: undefined, everySeconds: undefined, command: undefined, budget: budgets.agent }]]),
    users: new Map(),
  };
}
const bot: ChargePrincipal = { kind: 'agent', subject: 'bot', agent: 'bot', team: 't' };
const zero = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 };

/** A reservation made at `at` with the lines the organisation (as it is then) gives it. */
const reservation = (o: OrgConfig, id: string, amountMicros: number, at: number): ReservationRequest => ({
  id, at, amountMicros, lines: budgetLinesFor(o, bot, at), principal: bot, provider: 'anthropic', model: 'claude-haiku-4-5',
});
const settle = (l: Ledger, id: string, costMicros: number, at: number) => l.settle({ id, at, costMicros, estimated: false, tokens: zero });

async function line(l: Ledger, scope: string, windowKey: string) {
  const ref: LedgerLineRef = { scope, windowKey };
  return (await l.lineStates([ref])).get(`${scope}|${windowKey}`);
}

const rowOf = (rows: BudgetStatus[], scope: string, window: 'month' | 'day') => rows.find((r) => r.scope === scope && r.window === window);


t.test('admitted in the last 100 ms of a UTC month (or day), settled 3 s after midnight: charged to the window of admission', async (t) => {
  // The agent may spend $0.50 a month and $0.50 a day: the late request takes all of both.
  const O = org({ agent: b(0.5, 0.5) });
  const LIMIT = 500_000;
  const rows: Array<{ what: string; admitted: string; settled: string; oldDay: string; newDay: string; oldMonth: string; newMonth: string; dayResets: string; monthResets: string }> = [
    { what: '30-day month (Nov → Dec)', admitted: '2026-11-30T23:59:59.900Z', settled: '2026-12-01T00:00:03.000Z', oldDay: 'day:2026-11-30', newDay: 'day:2026-12-01', oldMonth: 'month:2026-11', newMonth: 'month:2026-12', dayResets: '2026-12-02T00:00:00.000Z', monthResets: '2027-01-01T00:00:00.000Z' },
    { what: '31-day month (Jan → Feb)', admitted: '2027-01-31T23:59:59.900Z', settled: '2027-02-01T00:00:03.000Z', oldDay: 'day:2027-01-31', newDay: 'day:2027-02-01', oldMonth: 'month:2027-01', newMonth: 'month:2027-02', dayResets: '2027-02-02T00:00:00.000Z', monthResets: '2027-03-01T00:00:00.000Z' },
    { what: 'year end (Dec 31 → Jan 1)', admitted: '2026-12-31T23:59:59.900Z', settled: '2027-01-01T00:00:03.000Z', oldDay: 'day:2026-12-31', newDay: 'day:2027-01-01', oldMonth: 'month:2026-12', newMonth: 'month:2027-01', dayResets: '2027-01-02T00:00:00.000Z', monthResets: '2027-02-01T00:00:00.000Z' },
    { what: 'February of a common year (Feb 28 → Mar 1)', admitted: '2027-02-28T23:59:59.900Z', settled: '2027-03-01T00:00:03.000Z', oldDay: 'day:2027-02-28', newDay: 'day:2027-03-01', oldMonth: 'month:2027-02', newMonth: 'month:2027-03', dayResets: '2027-03-02T00:00:00.000Z', monthResets: '2027-04-01T00:00:00.000Z' },
    { what: 'February of a leap year (Feb 29 → Mar 1)', admitted: '2028-02-29T23:59:59.900Z', settled: '2028-03-01T00:00:03.000Z', oldDay: 'day:2028-02-29', newDay: 'day:2028-03-01', oldMonth: 'month:2028-02', newMonth: 'month:2028-03', dayResets: '2028-03-02T00:00:00.000Z', monthResets: '2028-04-01T00:00:00.000Z' },
    { what: '2100 is not a leap year (Feb 28 → Mar 1)', admitted: '2100-02-28T23:59:59.900Z', settled: '2100-03-01T00:00:03.000Z', oldDay: 'day:2100-02-28', newDay: 'day:2100-03-01', oldMonth: 'month:2100-02', newMonth: 'month:2100-03', dayResets: '2100-03-02T00:00:00.000Z', monthResets: '2100-04-01T00:00:00.000Z' },
    // a day boundary inside a month: the day starts at 0, the month keeps its spend
    { what: 'the leap day, within the month (Feb 28 → Feb 29)', admitted: '2028-02-28T23:59:59.900Z', settled: '2028-02-29T00:00:03.000Z', oldDay: 'day:2028-02-28', newDay: 'day:2028-02-29', oldMonth: 'month:2028-02', newMonth: 'month:2028-02', dayResets: '2028-03-01T00:00:00.000Z', monthResets: '2028-03-01T00:00:00.000Z' },
  ];
  for (const r of rows) {
    await t.test(r.what, async (t) => {
      const { db } = tempDb(t);
      const l = createSqliteLedger(db);
      const admitted = ms(r.admitted);
      const settledAt = ms(r.settled);
      const midnight = settledAt - 3000;
      const monthRolls = r.oldMonth !== r.newMonth;

      t.same(await l.reserve(reservation(O, 'late', LIMIT, admitted)), { ok: true }, 'admitted at 23:59:59.9 with the whole budget');
      t.match(await l.reserve(reservation(O, 'same-window', 1, admitted + 50)), { ok: false, line: { scope: 'agent:bot' } }, 'at 23:59:59.95 the old windows are full');

      const fresh = await l.reserve(reservation(O, 'fresh', LIMIT, midnight));
      if (monthRolls) {
        t.same(fresh, { ok: true }, 'at 00:00:00.000 a new month and a new day: both start at 0 while the late request is still in flight');
      } else {
        t.match(fresh, { ok: false, line: { scope: 'agent:bot', window: { kind: 'month', key: r.oldMonth } }, state: { reservedMicros: LIMIT } }, 'a new day does not reset the month');
        t.same(await line(l, 'agent:bot', r.newDay), { spentMicros: 0, reservedMicros: 0 }, 'the new day starts at 0');
      }

      const s = await settle(l, 'late', 123_456, settledAt);
      t.equal(s.settled, true);
      t.same([...new Set(s.lines.map((x) => x.windowKey))].sort(), [r.oldDay, r.oldMonth].sort(), 'every line charged is a line of the admission windows');
      t.equal(s.lines.length, 6, 'org, team and agent, month and day');
      t.same(await line(l, 'agent:bot', r.oldDay), { spentMicros: 123_456, reservedMicros: 0 }, 'the old day is charged');
      t.same(await line(l, 'team:t', r.oldMonth), { spentMicros: 123_456, reservedMicros: 0 }, 'the old month is charged');
      t.same(await line(l, 'org', r.newDay), { spentMicros: 0, reservedMicros: monthRolls ? LIMIT : 0 }, 'the new day holds only what was admitted in it');
      if (monthRolls) t.same(await line(l, 'agent:bot', r.newMonth), { spentMicros: 0, reservedMicros: LIMIT }, 'the new month holds only what was admitted in it');

      const status = await budgetStatus(l, O, settledAt);
      t.match(rowOf(status, 'agent:bot', 'day'), {
        windowKey: r.newDay, spentMicros: 0, reservedMicros: monthRolls ? LIMIT : 0, remainingMicros: monthRolls ? 0 : LIMIT, resetsAt: r.dayResets,
      }, 'at 00:00:03 the status reads the new day');
      t.match(rowOf(status, 'agent:bot', 'month'), {
        windowKey: r.newMonth, spentMicros: monthRolls ? 0 : 123_456, reservedMicros: monthRolls ? LIMIT : 0, remainingMicros: monthRolls ? 0 : LIMIT - 123_456, resetsAt: r.monthResets,
      });
      t.ok(status.every((x) => x.remainingMicros >= 0), 'no negative remainder');

      const stored = db.prepare("SELECT created_at, settled_at, lines FROM ledger_requests WHERE id = 'late'").get() as { created_at: number; settled_at: number; lines: string };
      t.equal(stored.created_at, admitted, 'the row keeps the admission time');
      t.equal(stored.settled_at, settledAt, '… and the settlement time');
      t.ok((JSON.parse(stored.lines) as Array<[string, string]>).every(([, k]) => k === r.oldDay || k === r.oldMonth));
      t.same(ledgerDrift(db), []);
    });
  }
});

t.test('the boundary is half-open: 23:59:59.999 is the old window, 00:00:00.000 the new one', async (t) => {
  const { db } = tempDb(t);
  const l = createSqliteLedger(db);
  const O = org({ team: b(undefined, 1) });
  t.same(await l.reserve(reservation(O, 'last-ms', 1_000_000, ms('2027-12-31T23:59:59.999Z'))), { ok: true });
  t.match(await l.reserve(reservation(O, 'still-old', 1, ms('2027-12-31T23:59:59.999Z'))), { ok: false, line: { scope: 'team:t', window: { key: 'day:2027-12-31' } } });
  t.same(await l.reserve(reservation(O, 'first-ms', 1_000_000, ms('2028-01-01T00:00:00.000Z'))), { ok: true });
  t.same(await line(l, 'team:t', 'month:2027-12'), { spentMicros: 0, reservedMicros: 1_000_000 });
  t.same(await line(l, 'team:t', 'month:2028-01'), { spentMicros: 0, reservedMicros: 1_000_000 });
});

t.test('spend past a limit: the remainder is 0, never negative, and the next window starts at 0', async (t) => {
  const rows: Array<{ what: string; o: OrgConfig; scope: string; kind: 'month' | 'day'; at: string; last: string; next: string; nextResets: string }> = [
    { what: 'team monthly $1 over the year end', o: org({ team: b(1) }), scope: 'team:t', kind: 'month', at: '2026-12-31T18:00:00Z', last: '2026-12-31T23:59:59.999Z', next: '2027-01-01T00:00:00.000Z', nextResets: '2027-02-01T00:00:00.000Z' },
    { what: 'agent daily $1 over the end of February', o: org({ agent: b(undefined, 1) }), scope: 'agent:bot', kind: 'day', at: '2027-02-28T18:00:00Z', last: '2027-02-28T23:59:59.999Z', next: '2027-03-01T00:00:00.000Z', nextResets: '2027-03-02T00:00:00.000Z' },
    { what: 'organisation daily $1 on the leap day', o: org({ org: b(undefined, 1) }), scope: 'org', kind: 'day', at: '2028-02-29T18:00:00Z', last: '2028-02-29T23:59:59.999Z', next: '2028-03-01T00:00:00.000Z', nextResets: '2028-03-02T00:00:00.000Z' },
  ];
  for (const r of rows) {
    await t.test(r.what, async (t) => {
      const tdb = tempDb(t);
      const l = createSqliteLedger(tdb.db);
      const at = ms(r.at);
      const last = ms(r.last);
      const next = ms(r.next);
      const oldKey = budgetWindow(r.kind, at).key;
      // admitted on a small reservation, it costs three times the limit: the overshoot the docs allow
      t.same(await l.reserve(reservation(r.o, 'big', 10_000, at)), { ok: true });
      t.equal((await settle(l, 'big', 3_000_000, at + 1000)).settled, true);
      t.same(await line(l, r.scope, oldKey), { spentMicros: 3_000_000, reservedMicros: 0 }, 'spend is recorded as billed, not clamped');

      const before = rowOf(await budgetStatus(l, r.o, last), r.scope, r.kind);
      t.match(before, { windowKey: oldKey, limitMicros: 1_000_000, spentMicros: 3_000_000, remainingMicros: 0, exhausted: true }, 'remaining is 0, not -$2');
      const refused = await l.reserve(reservation(r.o, 'after', 1, last));
      t.match(refused, { ok: false, line: { scope: r.scope, window: { key: oldKey } } }, 'nothing more in the old window');
      if (!refused.ok) {
        const msg = refusalMessage(refused);
        t.match(msg, /\$3\.00 is spent, \$0\.00 remains/, msg);
        t.match(msg, `The budget resets at ${r.next}.`);
      }
      let clock = last;
      const probe = createLedgerBudgetProbe(l, () => r.o, () => clock);
      const exhausted = await probe.exhausted({ team: 't', agent: 'bot' });
      t.equal(exhausted.exhausted, true, 'the supervisor sees the scope exhausted at 23:59:59.999');
      t.match(exhausted.reason ?? '', `resets ${r.next}`);
      const cli = (await readBudgets(tdb.file, r.o, last)).find((x) => x.scope === r.scope && x.window === r.kind);
      t.match(cli, { spentMicros: 3_000_000, remainingMicros: 0 }, '`tollgate budgets` shows 0 remaining, not a negative amount');

      clock = next;
      t.same(await probe.exhausted({ team: 't', agent: 'bot' }), { exhausted: false }, 'at 00:00:00.000 the supervisor sees the new window');
      const after = rowOf(await budgetStatus(l, r.o, next), r.scope, r.kind);
      t.match(after, { windowKey: budgetWindow(r.kind, next).key, spentMicros: 0, reservedMicros: 0, remainingMicros: 1_000_000, exhausted: false, resetsAt: r.nextResets }, 'a new window starts at 0');
      t.match((await readBudgets(tdb.file, r.o, next)).find((x) => x.scope === r.scope && x.window === r.kind), { spentMicros: 0, remainingMicros: 1_000_000 }, '… for another reader too');
      t.same(await l.reserve(reservation(r.o, 'new', 1_000_000, next)), { ok: true }, 'the whole limit is available again');
      t.same(await line(l, r.scope, oldKey), { spentMicros: 3_000_000, reservedMicros: 0 }, 'the old window keeps its record');
      t.same(ledgerDrift(tdb.db), []);
    });
  }
});

t.test('after the reset, late settlements, releases and crash recovery charge the old window: no double reset, nothing negative', async (t) => {
  const tdb = tempDb(t);
  const l = createSqliteLedger(tdb.db);
  const O = org({ agent: b(undefined, 1), team: b(10) });
  const T = (s: string) => ms(`2026-04-30T${s}Z`);
  const N = (s: string) => ms(`2026-05-01T${s}Z`);
  const agentDay = (d: string) => line(l, 'agent:bot', `day:${d}`);

  t.same(await l.reserve(reservation(O, 'late', 400_000, T('23:59:59.900'))), { ok: true });
  t.same(await l.reserve(reservation(O, 'late-released', 300_000, T('23:59:59.950'))), { ok: true });
  t.same(await l.reserve(reservation(O, 'late-crashed', 200_000, T('23:59:59.990'))), { ok: true });
  // the new day's first requests, admitted while the three above are in flight
  t.same(await l.reserve(reservation(O, 'n1', 250_000, N('00:00:01.000'))), { ok: true });
  await settle(l, 'n1', 100_000, N('00:00:01.500'));
  t.same(await l.reserve(reservation(O, 'n2', 50_000, N('00:00:02.000'))), { ok: true });

  t.equal((await settle(l, 'late', 450_000, N('00:00:03.000'))).settled, true, 'charged above its reservation, after midnight');
  t.equal(await l.release('late-released', N('00:00:04.000')), true);
  t.equal((await settle(l, 'late', 450_000, N('00:00:05.000'))).settled, false, 'settled once');
  t.equal(await l.release('late-released', N('00:00:05.000')), false, 'released once');
  t.equal(await l.release('late', N('00:00:05.000')), false, 'a settled request cannot be released');
  await settle(l, 'n2', 40_000, N('00:00:06.000'));

  t.same(await agentDay('2026-04-30'), { spentMicros: 450_000, reservedMicros: 200_000 }, 'the old day: the late charge, and the one still open');
  t.same(await agentDay('2026-05-01'), { spentMicros: 140_000, reservedMicros: 0 }, 'the new day: only its own requests — not reset by the late settlement');

  // the gateway dies and restarts a few seconds after midnight: the open reservation is charged in full to its own day
  const restarted = createSqliteLedger(tdb.open());
  t.equal(await restarted.settleOpenReservations(N('00:00:10.000')), 1);
  t.same(await line(restarted, 'agent:bot', 'day:2026-04-30'), { spentMicros: 650_000, reservedMicros: 0 });
  t.same(await line(restarted, 'agent:bot', 'day:2026-05-01'), { spentMicros: 140_000, reservedMicros: 0 });
  t.same(await line(restarted, 'team:t', 'month:2026-04'), { spentMicros: 650_000, reservedMicros: 0 });
  t.same(await line(restarted, 'team:t', 'month:2026-05'), { spentMicros: 140_000, reservedMicros: 0 });

  // no second reset later in the day, and the next day's reset leaves the month alone
  t.match(rowOf(await budgetStatus(restarted, O, N('23:59:59.999')), 'agent:bot', 'day'), { windowKey: 'day:2026-05-01', spentMicros: 140_000, remainingMicros: 860_000 });
  const nextDay = await budgetStatus(restarted, O, ms('2026-05-02T00:00:00Z'));
  t.match(rowOf(nextDay, 'agent:bot', 'day'), { windowKey: 'day:2026-05-02', spentMicros: 0, remainingMicros: 1_000_000 });
  t.match(rowOf(nextDay, 'team:t', 'month'), { windowKey: 'month:2026-05', spentMicros: 140_000, remainingMicros: 9_860_000 });
  const min = tdb.db.prepare('SELECT min(spent_micros) AS spent, min(reserved_micros) AS reserved FROM budget_counters').get() as { spent: number; reserved: number };
  t.ok(min.spent >= 0 && min.reserved >= 0, 'no counter below 0');
  t.same(ledgerDrift(tdb.db), []);
});

t.test('a reset while two connections hold cached budget lines: each sees the other, and the new window, at once', async (t) => {
  const tdb = tempDb(t);
  const A = createSqliteLedger(tdb.db);
  const B = createSqliteLedger(tdb.open());
  const O = org({ agent: b(undefined, 1) });
  const T = (s: string) => ms(`2026-06-30T${s}Z`);
  const N = (s: string) => ms(`2026-07-01T${s}Z`);

  t.same(await A.reserve(reservation(O, 'a1', 600_000, T('23:59:58.000'))), { ok: true }, 'A reads and holds the old day');
  t.same(await B.reserve(reservation(O, 'b1', 400_000, T('23:59:59.900'))), { ok: true }, 'B reads A’s reservation: the old day is now full');
  t.match(await A.reserve(reservation(O, 'a2', 1, T('23:59:59.950'))), { ok: false, line: { scope: 'agent:bot', window: { key: 'day:2026-06-30' } }, state: { reservedMicros: 1_000_000 } }, 'A does not decide on its stale copy');

  t.same(await B.reserve(reservation(O, 'b2', 1_000_000, N('00:00:00.000'))), { ok: true }, 'B passes midnight: the new day starts at 0');
  // A's clock lags B's by a few ms: its admission is still in the old day, which is full
  t.match(await A.reserve(reservation(O, 'a3', 1, T('23:59:59.980'))), { ok: false, line: { window: { key: 'day:2026-06-30' } } }, 'a lagging clock admits into its own (old) window');
  t.match(await A.reserve(reservation(O, 'a4', 1, N('00:00:00.010'))), { ok: false, line: { window: { key: 'day:2026-07-01' } }, state: { spentMicros: 0, reservedMicros: 1_000_000 } }, 'A sees what B admitted in the new day');

  t.equal((await settle(A, 'a1', 500_000, N('00:00:02.000'))).settled, true);
  t.equal((await settle(B, 'b1', 350_000, N('00:00:03.000'))).settled, true);
  t.equal((await settle(A, 'b1', 350_000, N('00:00:04.000'))).settled, false, 'a reservation settled by one connection is not charged again by the other');

  for (const [name, l] of [['A', A], ['B', B]] as const) {
    t.same(await line(l, 'agent:bot', 'day:2026-06-30'), { spentMicros: 850_000, reservedMicros: 0 }, `${name}: the old day has both late charges`);
    t.same(await line(l, 'agent:bot', 'day:2026-07-01'), { spentMicros: 0, reservedMicros: 1_000_000 }, `${name}: the new day has only b2`);
    t.same(await line(l, 'agent:bot', 'month:2026-07'), { spentMicros: 0, reservedMicros: 1_000_000 }, `${name}: so has the new month`);
  }
  t.match((await readBudgets(tdb.file, O, N('00:00:04.000'))).find((x) => x.scope === 'agent:bot'), {
    window: 'day', windowKey: 'day:2026-07-01', spentMicros: 0, reservedMicros: 1_000_000, remainingMicros: 0, exhausted: true, resetsAt: '2026-07-02T00:00:00.000Z',
  }, 'a third reader (the CLI) sees the new day with B’s reservation');
  t.same(ledgerDrift(tdb.db), []);
});

t.test('the process-wide window cache serves callers whose clocks straddle midnight', async (t) => {
  const before = ms('2026-12-31T23:59:59.950Z');
  const after = ms('2027-01-01T00:00:00.010Z');
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    for (const at of i % 2 === 0 ? [before, after] : [after, before]) {
      seen.push(`${budgetWindow('month', at).key} ${budgetWindow('day', at).key}`);
      const lines = budgetLinesFor(org(), bot, at);
      t.ok(lines.every((x) => x.window.startsAt <= at && at < x.window.resetsAt), `lines at ${iso(at)} are windows containing it`);
    }
  }
  t.same([...new Set(seen)].sort(), ['month:2026-12 day:2026-12-31', 'month:2027-01 day:2027-01-01']);
});

t.test('a team switched from monthly to daily with spend carried, and back: the counters are never reset by the change', async (t) => {
  const tdb = tempDb(t);
  const l = createSqliteLedger(tdb.db);
  const monthly = org({ team: b(10) }); // $10 a month
  const daily = org({ team: b(undefined, 2) }); // $2 a day
  const tighter = org({ team: b(undefined, 1) }); // $1 a day
  const at = (s: string) => ms(`2026-11-${s}Z`);
  const teamRows = (rows: BudgetStatus[]) => rows.filter((r) => r.scope === 'team:t');

  t.same(await l.reserve(reservation(monthly, 'early', 3_000_000, at('10T12:00:00'))), { ok: true });
  await settle(l, 'early', 3_000_000, at('10T12:00:05'));
  t.same(await l.reserve(reservation(monthly, 'today', 1_500_000, at('26T09:00:00'))), { ok: true });
  await settle(l, 'today', 1_500_000, at('26T09:00:05'));
  t.same(await l.reserve(reservation(monthly, 'inflight', 500_000, at('26T10:00:00'))), { ok: true }, 'admitted under the monthly limit, still in flight at the switch');

  // the admin switches the team to a daily limit (hot reload): today's line already holds today's spend and the reservation
  const s1 = teamRows(await budgetStatus(l, daily, at('26T11:00:00')));
  t.same(s1.map((r) => r.window), ['day'], 'only the daily window is enforced now');
  t.match(s1[0], { windowKey: 'day:2026-11-26', limitMicros: 2_000_000, spentMicros: 1_500_000, reservedMicros: 500_000, remainingMicros: 0, exhausted: true, resetsAt: '2026-11-27T00:00:00.000Z' }, 'the carried month spend does not count against the day, today’s does');
  const refused = await l.reserve(reservation(daily, 'x', 10_000, at('26T11:00:00')));
  t.match(refused, { ok: false, line: { scope: 'team:t', window: { kind: 'day', key: 'day:2026-11-26' } } });
  if (!refused.ok) {
    t.equal(refusalMessage(refused), 'Budget exceeded for team t: the daily limit is $2.00, $1.50 is spent (plus $0.50 held by requests in flight), $0.00 remains and this request could cost up to $0.01. The budget resets at 2026-11-27T00:00:00.000Z.');
  }

  await settle(l, 'inflight', 300_000, at('26T11:30:00'));
  t.match(await l.reserve(reservation(daily, 'too-much', 200_001, at('26T11:31:00'))), { ok: false });
  t.same(await l.reserve(reservation(daily, 'exact', 200_000, at('26T11:31:00'))), { ok: true }, 'exactly the rest of the day');
  t.equal(await l.release('exact', at('26T11:32:00')), true);

  // the next day starts at 0 under the daily limit
  t.match(teamRows(await budgetStatus(l, daily, at('27T00:00:00')))[0], { windowKey: 'day:2026-11-27', spentMicros: 0, reservedMicros: 0, remainingMicros: 2_000_000 });
  t.same(await l.reserve(reservation(daily, 'next-day', 2_000_000, at('27T00:00:00'))), { ok: true });
  await settle(l, 'next-day', 2_000_000, at('27T00:10:00'));

  // lowered below what is already spent today: 0 remains, not -$1
  t.match(teamRows(await budgetStatus(l, tighter, at('27T01:00:00')))[0], { limitMicros: 1_000_000, spentMicros: 2_000_000, remainingMicros: 0, exhausted: true });

  // and back to monthly: the month line carried everything through both switches
  const s2 = teamRows(await budgetStatus(l, monthly, at('27T12:00:00')));
  t.same(s2.map((r) => r.window), ['month']);
  t.match(s2[0], { windowKey: 'month:2026-11', spentMicros: 6_800_000, reservedMicros: 0, remainingMicros: 3_200_000, exhausted: false }, '3 + 1.5 + 0.3 + 2: no reset by the switches');
  t.match(await l.reserve(reservation(monthly, 'over', 3_200_001, at('27T12:00:00'))), { ok: false, line: { scope: 'team:t', window: { kind: 'month' } } });
  t.match(teamRows(await budgetStatus(l, monthly, ms('2026-12-01T00:00:00Z')))[0], { windowKey: 'month:2026-12', spentMicros: 0, remainingMicros: 10_000_000 }, 'December starts at 0');
  t.same(ledgerDrift(tdb.db), []);
});

// ---- the metering stage, on the SQLite ledger, with its clock injected

function exchange(id: string): Exchange {
  const body = Buffer.from(JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }));
  return {
    id, startedAt: 0, kind: 'request', via: 'intercepted', tunnel: undefined, clientAddress: '127.0.0.1',
    method: 'POST', scheme: 'https', host: 'api.anthropic.com', hostKind: 'dns', port: 443, path: '/v1/messages', query: '',
    proxyAuthorization: [], headers: [['content-type', 'application/json']],
    principal: { kind: 'agent', id: 'tok1', subject: 'bot', team: 't', agent: 'bot' },
    decision: undefined, target: undefined, outcome: newOutcome(),
    body: { present: true, buffered: undefined, buffer: async () => body } as unknown as Exchange['body'],
    usage: undefined, drainOnClientAbort: undefined, settlements: [], admissionChecks: [], onClientEnd: [], responseObservers: [], notes: {},
  };
}

/** Sends an Anthropic JSON response (1,000 input and 200 output tokens: $0.002 on claude-haiku-4-5) through the observers. */
function respond(ex: Exchange): void {
  const body = Buffer.from(JSON.stringify({
    id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-haiku-4-5', content: [{ type: 'text', text: 'hello' }],
    stop_reason: 'end_turn', usage: { input_tokens: 1000, output_tokens: 200 },
  }));
  for (const o of ex.responseObservers) {
    o.onRequestSent?.();
    o.onResponseStart(200, { 'content-type': 'application/json' });
    o.onChunk(body);
    o.onEnd({ complete: true });
  }
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('the metering stage: admitted at 23:59:59.9 on the last day of a month, answered at 00:00:03, charged to that month', async (t) => {
  const { db } = tempDb(t);
  const ledger = createSqliteLedger(db);
  const O = org({ team: b(0.002) }); // $0.002 a month: the request below uses all of it
  let clock = ms('2026-11-30T23:59:59.900Z');
  const events: ThresholdEvent[] = [];
  const stage = meterLlmStage({
    ledger, prices: loadPriceTable('prices.yaml').table, current: () => ({ org: O }) as unknown as CompiledPolicySet,
    config: { unknownModel: 'refuse', fallbackPrice: undefined, openaiCompatible: [], drainMs: 1000, drainBytes: 1 << 20, providerSideInputTokens: 200_000, unmeteredEndpoints: 'refuse', maxRequestBytes: 1 << 20, thresholds: [50, 80, 100] },
    logger: createLogger({ level: 'error', write: () => undefined }), now: () => clock, onThreshold: (e) => events.push(e),
  });
  const admissions = (ex: Exchange) => Promise.all(ex.admissionChecks).then(() => undefined, (e: unknown) => e);

  const late = exchange('late');
  await stage(late);
  t.equal(await admissions(late), undefined, 'admitted at 23:59:59.9');
  const reserved = (late.notes['metering'] as MeteringNote).reservedMicros;
  t.same(await line(ledger, 'team:t', 'month:2026-11'), { spentMicros: 0, reservedMicros: reserved });

  clock = ms('2026-12-01T00:00:03.000Z');
  respond(late);
  await (late.notes['metering'] as MeteringNote).settled;
  t.equal(late.usage?.costMicros, 2000);
  await until(async () => (await line(ledger, 'team:t', 'month:2026-11'))?.spentMicros === 2000, 'the settlement');
  t.same(await line(ledger, 'team:t', 'month:2026-11'), { spentMicros: 2000, reservedMicros: 0 }, 'charged to November, the month of admission');
  t.same(await line(ledger, 'team:t', 'day:2026-11-30'), { spentMicros: 2000, reservedMicros: 0 }, '… and to Nov 30');
  t.same(await line(ledger, 'team:t', 'month:2026-12'), { spentMicros: 0, reservedMicros: 0 }, 'December starts at 0');
  t.same(await line(ledger, 'org', 'day:2026-12-01'), { spentMicros: 0, reservedMicros: 0 });

  await until(() => events.length >= 3, 'the threshold events');
  t.same(events.map((e) => [e.scope, e.windowKey, e.percent, e.resetsAt]), [
    ['team:t', 'month:2026-11', 50, '2026-12-01T00:00:00.000Z'],
    ['team:t', 'month:2026-11', 80, '2026-12-01T00:00:00.000Z'],
    ['team:t', 'month:2026-11', 100, '2026-12-01T00:00:00.000Z'],
  ], 'the thresholds crossed are those of the window of admission, with its own reset time');
  t.equal(events[0]?.at, '2026-12-01T00:00:03.000Z', 'and are raised when the spend is known');

  clock = ms('2026-12-01T00:00:04.000Z');
  const next = exchange('next');
  await stage(next);
  t.equal(await admissions(next), undefined, 'November is exhausted, December is not: admitted');
  t.same(await line(ledger, 'team:t', 'month:2026-12'), { spentMicros: 0, reservedMicros: (next.notes['metering'] as MeteringNote).reservedMicros });

  // a worker whose clock still reads November admits into November, which is exhausted
  clock = ms('2026-11-30T23:59:59.999Z');
  const lagging = exchange('lagging');
  await stage(lagging);
  const refusal = await admissions(lagging);
  t.ok(refusal instanceof RequestRefusal && refusal.reason === 'budget_exceeded', 'refused: 402 budget_exceeded');
  t.match(refusal instanceof Error ? refusal.message : '', /the monthly limit is \$0\.002, \$0\.002 is spent, \$0\.00 remains .*resets at 2026-12-01T00:00:00\.000Z/);
  t.same(ledgerDrift(db), []);
});
