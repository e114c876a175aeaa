// The pure audit core on the inputs its main tests leave out: rows without a principal or a
// decision, estimated usage, events without detail, the limits of canonical JSON, the event
// chain and its head, and the in-memory sink's failing status.
import t from 'tap';
import type { AuditEventRow } from '../../../src/audit/audit-record.ts';
import { buildAuditEvent, buildAuditRow } from '../../../src/audit/build-audit-row.ts';
import { canonicalJson } from '../../../src/audit/canonical-json.ts';
import { canonicalEventRecord, canonicalRecord, canonicalRequestRecord, canonicalValues, chainHash, GENESIS_HASH, nextLink, nextLinkValues, type ChainHead } from '../../../src/audit/hash-chain.ts';
import { createMemoryAuditSink } from '../../../src/audit/memory-audit-sink.ts';
import { AUDIT_EVENT_COLUMNS, AUDIT_REQUEST_COLUMNS } from '../../../src/audit/audit-record.ts';
import { verifyChain, type ChainedRecord } from '../../../src/audit/verify-chain.ts';
import { exchange, row, T0 } from './fixtures.ts';

t.test('buildAuditRow: who and why when the principal or the decision is missing', async (t) => {
  const decision = exchange().decision!;
  const cases: { why: string; ex: ReturnType<typeof exchange>; phase: 'decision' | 'complete'; want: Record<string, unknown> }[] = [
    {
      why: 'agent token without an agent name: the subject is the agent',
      ex: exchange({ principal: { kind: 'agent', id: '', subject: 'nightly', team: 'sre' } }),
      phase: 'decision',
      want: { agent: 'nightly', token_id: null, team: 'sre', reason: 'allowed' },
    },
    {
      why: 'no principal: team and project come from the decision',
      ex: exchange({ principal: undefined, decision: { ...decision, team: 'ops', project: 'infra' } }),
      phase: 'complete',
      want: { agent: null, team: 'ops', project: 'infra', principal_kind: null },
    },
    {
      why: 'no decision, decision phase: the snapshot says allowed',
      ex: exchange({ decision: undefined }),
      phase: 'decision',
      want: { reason: 'allowed', rule: null, decision: 'allow' },
    },
    {
      why: 'no decision and no outcome reason: no reason',
      ex: exchange({ decision: undefined, principal: undefined }),
      phase: 'complete',
      want: { reason: null, team: null, project: null },
    },
    {
      why: 'the outcome reason wins over the decision',
      ex: exchange({ outcome: { status: 502, reason: 'upstream_unavailable', error: undefined, bytesIn: 0, bytesOut: 0, upstreamMs: undefined } }),
      phase: 'complete',
      want: { reason: 'upstream_unavailable', status: 502, upstream_ms: null },
    },
    {
      why: 'byte counts that are not finite are recorded as 0',
      ex: exchange({ outcome: { status: 200, reason: undefined, error: undefined, bytesIn: Number.NaN, bytesOut: Number.POSITIVE_INFINITY, upstreamMs: 3 } }),
      phase: 'complete',
      want: { bytes_in: 0, bytes_out: 0, upstream_ms: 3 },
    },
  ];
  for (const c of cases) t.match(buildAuditRow(c.ex, { now: T0 + 5, phase: c.phase, admitted: true }), c.want, c.why);
});

t.test('buildAuditRow: estimated usage is 1, reported usage 0', async (t) => {
  const usage = { provider: 'openai', model: undefined, inputTokens: 1.4, outputTokens: -2, cacheReadTokens: 0, cacheWriteTokens: 0, costMicros: 9.6, estimated: true };
  const r = buildAuditRow(exchange({ usage }), { now: T0, phase: 'complete', admitted: true });
  t.match(r, { provider: 'openai', model: null, input_tokens: 1, output_tokens: 0, cost_micros: 10, estimated: 1 });
  t.equal(buildAuditRow(exchange({ usage: { ...usage, estimated: false } }), { now: T0, phase: 'complete', admitted: true }).estimated, 0);
  t.equal(buildAuditRow(exchange({ usage }), { now: T0, phase: 'decision', admitted: true }).estimated, null, 'the decision snapshot has no usage');
});

t.test('buildAuditEvent without detail records an empty object', async (t) => {
  t.same(buildAuditEvent({ type: 'audit_pruned', actor: 'gateway' }, T0 + 0.4), { time: T0, type: 'audit_pruned', actor: 'gateway', detail: '{}' });
});

t.test('canonicalJson: what it accepts and what it refuses', async (t) => {
  const ok: [string, unknown, string][] = [
    ['bigint as text', { n: 12345678901234567890n }, '{"n":"12345678901234567890"}'],
    ['undefined in an array is null', [1, undefined, 'x'], '[1,null,"x"]'],
    ['functions and undefined are dropped from objects', { b: 1, f: () => 1, u: undefined, a: null }, '{"a":null,"b":1}'],
    ['32 levels is fine', nest(32), `${'['.repeat(32)}0${']'.repeat(32)}`],
  ];
  for (const [why, v, want] of ok) t.equal(canonicalJson(v), want, why);
  const refused: [string, unknown, RegExp][] = [
    ['too deep', nest(33), /nested too deeply/],
    ['a symbol', { s: Symbol('x') }, /cannot serialise a symbol/],
    ['a function in an array', [() => 1], /cannot serialise a function/],
    ['Infinity', [Infinity], /finite/],
  ];
  for (const [why, v, message] of refused) t.throws(() => canonicalJson(v), { name: 'TypeError', message }, why);
});

function nest(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

t.test('the events chain: records and column values hash the same', async (t) => {
  const e: AuditEventRow = { time: T0, type: 'policy_reloaded', actor: 'gateway', detail: '{"generation":2}' };
  const canon = canonicalEventRecord(1, e);
  t.equal(canon, JSON.stringify(['tollgate-audit-v1', 'events', 1, T0, 'policy_reloaded', 'gateway', '{"generation":2}']));
  t.equal(canonicalRecord('events', 1, e), canon);
  t.equal(canonicalValues('events', 1, AUDIT_EVENT_COLUMNS.map((c) => e[c])), canon);
  const head: ChainHead = { seq: 0, hash: GENESIS_HASH };
  t.same(nextLinkValues('events', head, AUDIT_EVENT_COLUMNS.map((c) => e[c])), nextLink('events', head, e));
  t.same(nextLink('events', head, e), { seq: 1, hash: chainHash(GENESIS_HASH, canon) });
  const r = row();
  t.equal(canonicalValues('requests', 4, AUDIT_REQUEST_COLUMNS.map((c) => r[c] ?? null)), canonicalRequestRecord(4, r), 'requests too');
  // A row object missing a column (read back from an older store, or built by hand) hashes as the
  // writer hashes it: the missing value is null, never dropped from the array.
  const partial = { time: T0, type: 'login', actor: 'gateway' } as unknown as AuditEventRow;
  t.equal(canonicalEventRecord(2, partial), canonicalValues('events', 2, [T0, 'login', 'gateway', null]));
});

t.test('canonicalValues writes out the same text as the array it stands for; chainHash is SHA-256 of head, newline, text', async (t) => {
  // The writer builds the canonical text without spreading the values into a new array; every
  // chain ever written (tollgate-audit-v1) must still verify, so the text must be byte for byte
  // JSON.stringify([version, chain, seq, ...values]).
  const cases: Array<{ why: string; values: unknown[] }> = [
    { why: 'no values', values: [] },
    { why: 'one null', values: [null] },
    { why: 'strings that need escaping', values: ['a"b', 'line\nbreak', '\u2028', 'é✓'] },
    { why: 'numbers', values: [0, -0, 1.5, -2, 1e21, Number.MAX_SAFE_INTEGER] },
    { why: 'a request row', values: AUDIT_REQUEST_COLUMNS.map((c) => row()[c] ?? null) },
  ];
  for (const c of cases) {
    for (const chain of ['requests', 'events'] as const) {
      t.equal(canonicalValues(chain, 7, c.values), JSON.stringify(['tollgate-audit-v1', chain, 7, ...c.values]), `${c.why} (${chain})`);
    }
  }
  const { createHash } = await import('node:crypto');
  const text = canonicalValues('requests', 1, AUDIT_REQUEST_COLUMNS.map((c) => row()[c] ?? null));
  t.equal(chainHash(GENESIS_HASH, text), createHash('sha256').update(GENESIS_HASH).update('\n').update(text).digest('hex'), 'the hash of v1');
  t.equal(chainHash(GENESIS_HASH, 'é'), createHash('sha256').update(`${GENESIS_HASH}\né`, 'utf8').digest('hex'), 'text hashed as UTF-8');
});

t.test('verifyChain: the recorded head must be the last record', async (t) => {
  const e: AuditEventRow = { time: T0, type: 'audit_pruned', actor: 'gateway', detail: '{}' };
  const anchor: ChainHead = { seq: 0, hash: GENESIS_HASH };
  const records: ChainedRecord<AuditEventRow>[] = [];
  let head = anchor;
  for (let i = 0; i < 3; i++) {
    head = nextLink('events', head, { ...e, time: T0 + i });
    records.push({ seq: head.seq, hash: head.hash, label: `event #${i + 1}`, row: { ...e, time: T0 + i } });
  }
  const cases: [string, ChainHead, string | undefined][] = [
    ['the head matches', head, undefined],
    ['the head has another hash', { seq: 3, hash: 'f'.repeat(64) }, 'head_mismatch'],
    ['the head is behind the records', { seq: 2, hash: records[1]!.hash }, 'head_mismatch'],
    ['the head is ahead of the records', { seq: 5, hash: 'f'.repeat(64) }, 'truncated'],
  ];
  for (const [why, recorded, problem] of cases) {
    const v = verifyChain('events', anchor, records, recorded);
    t.equal(v.ok, problem === undefined, why);
    t.equal(v.firstBroken?.problem, problem, why);
    if (problem === 'head_mismatch') t.equal(v.firstBroken?.seq, 3, `${why}: named at the last record`);
  }
});

t.test('the memory sink: events are kept, and a failing sink says so in its status', async (t) => {
  const sink = createMemoryAuditSink();
  const e = buildAuditEvent({ type: 'login', actor: 'user:ann' }, T0);
  sink.event(e);
  sink.complete(row());
  sink.noteFailOpen();
  t.same(sink.events, [e]);
  t.match(sink.status(), { ok: true, detail: 'memory', committed: 2, failOpen: 1, failedDecisions: 0, lastError: undefined });
  sink.failing = 'SQLITE_FULL';
  await t.rejects(sink.commitDecision(row()), { code: 'SQLITE_FULL' });
  t.match(sink.status(), { ok: false, detail: 'failing: SQLITE_FULL', failedDecisions: 1, lastError: { code: 'SQLITE_FULL' } });
  sink.failing = undefined;
  await sink.commitDecision(row());
  await sink.flush();
  await sink.close();
  t.match(sink.status(), { ok: true, committed: 3 });
  // Tests drive the twin from plain JavaScript; a "failing" cleared with null instead of undefined
  // still reads as failing, and the status never throws.
  (sink as { failing: unknown }).failing = null;
  t.match(sink.status(), { ok: false, detail: 'failing: ' });
});
