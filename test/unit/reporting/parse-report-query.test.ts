// Query strings of the admin API's read routes: accepted forms, and refusals (400) for unknown,
// repeated, non-numeric, negative, non-finite and out-of-range values (security cases 6.14, 9.04).
import t from 'tap';
import {
  parseAuditQuery, parseCostsQuery, parseExportQuery, parseNoQuery, parseSummaryQuery, parseTime, parseTrendQuery,
} from '../../../src/reporting/parse-report-query.ts';

const NOW = Date.UTC(2026, 4, 10, 12, 0, 0);
const q = (s: string) => new URLSearchParams(s);

t.test('parseTime', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['2026-05-01', Date.UTC(2026, 4, 1)],
    ['2026-05-01T12:00:00Z', Date.UTC(2026, 4, 1, 12)],
    ['1777000000000', 1777000000000],
    ['24h', NOW - 86_400_000],
    ['7d', NOW - 7 * 86_400_000],
    ['90m', NOW - 90 * 60_000],
    ['-1h', undefined], ['0h', undefined], ['1e999', undefined], ['Infinity', undefined], ['NaN', undefined],
    ['1.5h', undefined], ['99999999d', undefined], ['12', undefined], ['1999-12-31', undefined], ['2026-13-45', undefined],
    ['99999999999999999999', undefined], ['', undefined],
  ];
  for (const [text, want] of cases) t.equal(parseTime(text, NOW), want, JSON.stringify(text));
});

t.test('audit search', async (t) => {
  const ok = parseAuditQuery(q('since=24h&user=ann@acme.example&agent=bot&team=alpha&project=p&host=API.example&decision=deny&status=5XX&limit=50&cursor=1777000000000.42'), NOW);
  t.same(ok, { ok: true, value: { since: NOW - 86_400_000, user: 'ann@acme.example', agent: 'bot', team: 'alpha', project: 'p', host: 'API.example', decision: 'deny', status: '5xx', limit: 50, cursor: '1777000000000.42' } });
  t.same(parseAuditQuery(q(''), NOW), { ok: true, value: {} });
  t.same(parseAuditQuery(q('user='), NOW), { ok: true, value: {} }, 'an empty filter is no filter');
  const bad: Array<[string, RegExp]> = [
    ['limit=1e999', /limit must be a whole number/], ['limit=-1', /limit/], ['limit=0', /limit/], ['limit=NaN', /limit/],
    ['limit=1.5', /limit/], ['limit=%20100', /limit/], ['limit=1001', /limit/], ['limit=Infinity', /limit/], ['limit=0x10', /limit/],
    ['decision=maybe', /decision must be one of/], ['status=600', /status/], ['status=4x', /status/],
    ['cursor=abc', /cursor/], ['since=yesterday', /since=.*is not a time/], ['since=2026-05-02&until=2026-05-01', /since must be before until/],
    ['teem=alpha', /Unknown parameter "teem"/], ['team=a&team=b', /more than once/], ['__proto__=x', /Unknown parameter/],
    ['user=a%00b', /control character/], [`host=${'x'.repeat(400)}`, /longer than/],
  ];
  for (const [s, re] of bad) {
    const r = parseAuditQuery(q(s), NOW);
    t.equal(r.ok, false, s.slice(0, 60));
    if (!r.ok) t.match(r.message, re);
  }
});

t.test('summary window', async (t) => {
  t.same(parseSummaryQuery(q(''), NOW), { ok: true, value: { since: NOW - 86_400_000 } }, 'default 24h');
  t.same(parseSummaryQuery(q('window=7d'), NOW), { ok: true, value: { since: NOW - 7 * 86_400_000 } });
  t.same(parseSummaryQuery(q('since=2026-05-01&until=2026-05-02'), NOW), { ok: true, value: { since: Date.UTC(2026, 4, 1), until: Date.UTC(2026, 4, 2) } });
  for (const s of ['window=-1h', 'window=1e999h', 'window=0d', 'window=abc', 'window=24h&since=1h', 'window=1y']) t.equal(parseSummaryQuery(q(s), NOW).ok, false, s);
});

t.test('costs', async (t) => {
  t.same(parseCostsQuery(q('by=model'), NOW), { ok: true, value: { by: 'model', since: NOW - 30 * 86_400_000, until: NOW } });
  t.same(parseCostsQuery(q('by=day&since=2026-05-01&until=2026-05-03'), NOW), { ok: true, value: { by: 'day', since: Date.UTC(2026, 4, 1), until: Date.UTC(2026, 4, 3) } });
  for (const s of ['', 'by=', 'by=Team', 'by=host', 'by=team&by=team', 'by=team&since=1e999', 'by=team&limit=5']) t.equal(parseCostsQuery(q(s), NOW).ok, false, JSON.stringify(s));
});

t.test('trend', async (t) => {
  t.same(parseTrendQuery(q('')), { ok: true, value: { by: 'team', days: 30 } });
  t.same(parseTrendQuery(q('by=model&days=14')), { ok: true, value: { by: 'model', days: 14 } });
  for (const s of ['by=day', 'days=0', 'days=367', 'days=-5', 'days=1e3', 'days=ten']) t.equal(parseTrendQuery(q(s)).ok, false, s);
});

t.test('export', async (t) => {
  t.same(parseExportQuery(q('format=csv'), NOW), { ok: true, value: { format: 'csv', records: 'requests' } });
  t.same(parseExportQuery(q('format=jsonl&records=events&since=1h'), NOW), { ok: true, value: { format: 'jsonl', records: 'events', since: NOW - 3_600_000 } });
  for (const s of ['', 'format=xml', 'format=csv&records=all']) t.equal(parseExportQuery(q(s), NOW).ok, false, s);
});

t.test('routes without parameters refuse any', async (t) => {
  t.same(parseNoQuery(q('')), { ok: true, value: {} });
  t.match(parseNoQuery(q('x=1')), { ok: false, message: /no parameters/ });
});
