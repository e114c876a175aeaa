// The export formats of audit records: JSONL lines with ISO times, RFC 4180 CSV with formula
// neutralising, and the short table row of `tollgate audit`.
import t from 'tap';
import type { StoredAuditEvent, StoredAuditRequest } from '../../../src/audit/audit-record.ts';
import {
  csvCell, csvLine, eventCsvHeader, eventCsvLine, eventJsonLine, EXPORT_EVENT_COLUMNS, EXPORT_REQUEST_COLUMNS,
  requestCsvHeader, requestCsvLine, requestJsonLine, tableRow,
} from '../../../src/audit/export-format.ts';
import { row, T0 } from './fixtures.ts';

const stored = (over: Partial<StoredAuditRequest> = {}): StoredAuditRequest => ({ ...row(), id: 7, state: 'complete', seq: 3, hash: 'ab'.repeat(32), ...over });
const event = (over: Partial<StoredAuditEvent> = {}): StoredAuditEvent => ({ id: 1, seq: 9, hash: 'cd'.repeat(32), time: T0, type: 'token_revoked', actor: 'user:ann@acme.example', detail: '{"by":"ann"}', ...over });
const ISO0 = new Date(T0).toISOString();

t.test('csvCell: quoting and formula neutralising', async (t) => {
  const cases: [unknown, string][] = [
    [null, ''],
    [undefined, ''],
    ['plain', 'plain'],
    [42, '42'],
    [-5, '-5'], // numbers are never prefixed: only text can be a formula
    ['=SUM(A1)', "'=SUM(A1)"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@cmd', "'@cmd"],
    ['\tx', "'\tx"],
    ['\rx', `"'\rx"`],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=a,b', `"'=a,b"`],
  ];
  for (const [v, want] of cases) t.equal(csvCell(v), want, JSON.stringify(v) ?? 'undefined');
  t.equal(csvLine(['a', null, 'b,c', 1]), 'a,,"b,c",1');
});

t.test('request lines: JSONL and CSV carry every export column, times as ISO', async (t) => {
  const r = stored({ path: '/a,b', error: '=HYPERLINK("x")' });
  const json = JSON.parse(requestJsonLine(r)) as Record<string, unknown>;
  t.same(Object.keys(json), ['record', ...EXPORT_REQUEST_COLUMNS]);
  t.match(json, { record: 'request', time: ISO0, ended_at: new Date(T0 + 20).toISOString(), seq: 3, state: 'complete', path: '/a,b', status: 200 });
  t.equal(JSON.parse(requestJsonLine(stored({ ended_at: null, state: 'open', seq: null, hash: null }))).ended_at, null, 'an open row has no end');
  t.equal(requestCsvHeader(), EXPORT_REQUEST_COLUMNS.join(','));
  const cells = requestCsvLine(r);
  t.ok(cells.startsWith(`r-1,${ISO0},${new Date(T0 + 20).toISOString()},user,`), cells);
  t.match(cells, /,"\/a,b",/);
  t.match(cells, /,"'=HYPERLINK\(""x""\)",/);
  t.ok(cells.endsWith(`,complete,3,${'ab'.repeat(32)}`));
});

t.test('event lines: detail parsed when it is JSON, kept as text otherwise', async (t) => {
  t.same(JSON.parse(eventJsonLine(event())), { record: 'event', time: ISO0, type: 'token_revoked', actor: 'user:ann@acme.example', detail: { by: 'ann' }, seq: 9, hash: 'cd'.repeat(32) });
  t.equal(JSON.parse(eventJsonLine(event({ detail: 'not json' }))).detail, 'not json');
  t.equal(eventCsvHeader(), EXPORT_EVENT_COLUMNS.join(','));
  t.equal(eventCsvLine(event()), `${ISO0},token_revoked,user:ann@acme.example,"{""by"":""ann""}",9,${'cd'.repeat(32)}`);
});

t.test('tableRow: who, target, status and dashes for what is missing', async (t) => {
  const cases: { why: string; r: StoredAuditRequest; want: Record<string, string | number> }[] = [
    {
      why: 'a user request',
      r: stored(),
      want: { time: '2026-05-01 12:00:00Z', who: 'ann@acme.example', team: 'sre', method: 'GET', target: 'api.github.com/user', decision: 'allow', status: 200, ms: 20, rule: 'policies/sre.yaml:3', reason: 'allowed' },
    },
    {
      why: 'an agent tunnel',
      r: stored({ kind: 'tunnel', method: 'CONNECT', path: null, agent: 'sre-monitor', subject: 'sre-monitor', port: 443 }),
      want: { who: 'sre-monitor', target: 'api.github.com:443' },
    },
    {
      why: 'an anonymous refusal with nothing else known',
      r: stored({ subject: null, agent: null, team: null, kind: 'tunnel', port: null, status: null, duration_ms: null, rule: null, reason: null, state: 'complete' }),
      want: { who: '-', team: '-', target: 'api.github.com:', status: '-', ms: '-', rule: '-', reason: '-' },
    },
    { why: 'an open row', r: stored({ status: null, state: 'open', path: null }), want: { status: 'open', target: 'api.github.com' } },
    { why: 'a long target is cut to 60 characters', r: stored({ path: `/${'p'.repeat(100)}` }), want: { target: `api.github.com/${'p'.repeat(44)}…` } },
  ];
  for (const c of cases) t.match(tableRow(c.r), c.want, c.why);
  t.equal(String(tableRow(cases[4]!.r).target).length, 60);
});
