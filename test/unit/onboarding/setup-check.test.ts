// The verdicts of `tollgate setup --check` (pure): what each probe outcome, audit lookup and
// Claude Code settings file makes of each check line, the exit status they imply, and where a
// proxy URL sends the probe.
import t from 'tap';
import type { AuditLookup } from '../../../src/onboarding/find-audit-row.ts';
import type { ProbeResult } from '../../../src/onboarding/gateway-probe.ts';
import { evaluateAudit, evaluateClaudeSettings, evaluateProbe, formatChecks, proxyEndpoint } from '../../../src/onboarding/setup-check.ts';

const ctx = { proxy: '127.0.0.1:3128', caFile: '/home/u/.config/tollgate/ca-bundle.pem', probeHost: 'tollgate-setup-check.invalid' };
const none: ProbeResult = { unreachable: undefined, connect: undefined, tls: undefined, inner: undefined, error: undefined };
const answer = (status: number, requestId?: string, reason?: string) => ({ status, requestId, reason });

t.test('probe outcomes → proxy / token / CA lines and the request id to look up', async (t) => {
  const table: Array<[string, ProbeResult, string[], string | undefined]> = [
    ['proxy down', { ...none, unreachable: 'ECONNREFUSED' }, ['fail', 'skip', 'skip'], undefined],
    ['no answer to CONNECT', { ...none, error: 'the gateway closed the connection without an answer' }, ['ok', 'fail', 'skip'], undefined],
    ['token refused', { ...none, connect: answer(407, 'r407', 'auth_invalid') }, ['ok', 'fail', 'skip'], 'r407'],
    ['tunnel refused outright', { ...none, connect: answer(403, 'r403', 'host_not_allowed') }, ['ok', 'ok', 'skip'], 'r403'],
    ['CA not trusted', { ...none, connect: answer(200), tls: { ok: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } }, ['ok', 'ok', 'fail'], undefined],
    ['all good', { ...none, connect: answer(200), tls: { ok: true }, inner: answer(403, 'rin', 'host_not_allowed') }, ['ok', 'ok', 'ok'], 'rin'],
  ];
  for (const [name, probe, statuses, requestId] of table) {
    const v = evaluateProbe(probe, ctx);
    t.same(v.lines.map((l) => l.status), statuses, name);
    t.equal(v.requestId, requestId, `${name}: request id`);
    for (const l of v.lines) if (l.status === 'fail') t.ok(l.hint, `${name}: a failure has a hint`);
  }
  t.match(evaluateProbe({ ...none, connect: answer(407) }, ctx).lines[1]?.hint, /tollgate login/);
  t.match(evaluateProbe({ ...none, connect: answer(200), tls: { ok: false, error: 'X' } }, ctx).lines[2]?.hint, /tollgate ca export/);
});

t.test('audit lookups → the audited line', async (t) => {
  const row = { request_id: 'r1', decision: 'deny', principal_kind: 'user', subject: 'alice@acme.example', team: 'sre', project: null, host: 'h', reason: 'host_not_allowed' };
  const table: Array<[string, string | undefined, AuditLookup | undefined, string, RegExp]> = [
    ['found', 'r1', { found: true, row, source: 'tollgate.db' }, 'ok', /r1 \(deny host_not_allowed\) by user alice@acme\.example, team sre in tollgate\.db/],
    ['found without a team', 'r1', { found: true, row: { ...row, team: null }, source: 'db' }, 'fail', /without a team/],
    ['found without a subject', 'r1', { found: true, row: { ...row, subject: null }, source: 'db' }, 'fail', /without a user/],
    ['not in a readable store', 'r1', { found: false, readable: true, source: 'db' }, 'fail', /not in the audit trail of db/],
    ['nothing readable', 'r1', { found: false, readable: false, why: 'needs an admin' }, 'skip', /not checked: needs an admin/],
    ['no request id on the answer', undefined, { found: false, readable: false, why: 'x' }, 'fail', /no X-Request-Id/],
    ['no request made', undefined, undefined, 'skip', /not checked/],
  ];
  for (const [name, id, lookup, status, text] of table) {
    const l = evaluateAudit(id, lookup, 'tollgate-setup-check.invalid');
    t.equal(l.status, status, name);
    t.match(l.text, text, name);
  }
});

t.test('Claude Code settings → the settings line and what the probe uses', async (t) => {
  const gw = { host: '127.0.0.1', port: 3128 };
  const exists = (f: string) => f === '/ca.pem';
  const env = (e: Record<string, unknown>) => ({ model: 'opus', env: e });
  const good = { HTTPS_PROXY: 'http://sre:tok@127.0.0.1:3128', NODE_EXTRA_CA_CERTS: '/ca.pem' };
  const table: Array<[string, unknown, string, RegExp]> = [
    ['good', env(good), 'ok', /sends Claude Code through 127\.0\.0\.1:3128 and trusts \/ca\.pem/],
    ['no file', undefined, 'fail', /does not exist/],
    ['not an object', 'not json', 'fail', /not a JSON object/],
    ['no env', { model: 'opus' }, 'fail', /no "env" block/],
    ['no proxy', env({ NODE_EXTRA_CA_CERTS: '/ca.pem' }), 'fail', /no env\.HTTPS_PROXY/],
    ['another proxy', env({ ...good, HTTPS_PROXY: 'http://sre:tok@old-gw:3128' }), 'fail', /points at old-gw:3128, not at the gateway 127\.0\.0\.1:3128/],
    ['no CA', env({ HTTPS_PROXY: good.HTTPS_PROXY }), 'fail', /NODE_EXTRA_CA_CERTS/],
    ['CA file gone', env({ ...good, NODE_EXTRA_CA_CERTS: '/gone.pem' }), 'fail', /does not exist/],
  ];
  for (const [name, settings, status, text] of table) {
    const v = evaluateClaudeSettings('/home/u/.claude/settings.json', settings, gw, exists);
    t.equal(v.line.status, status, name);
    t.match(v.line.text, text, name);
    if (status === 'ok') t.same([v.proxyUrl, v.caFile], [good.HTTPS_PROXY, '/ca.pem'], 'the probe uses the settings');
    else t.match(v.line.hint, /tollgate setup claude-code/, name);
  }
  t.notMatch(evaluateClaudeSettings('/s.json', env(good), gw, exists).line.text, 'tok', 'the token is not shown');
});

t.test('formatting: one line per check, hints under failures, a verdict', async (t) => {
  const text = formatChecks([{ status: 'ok', text: 'a' }, { status: 'fail', text: 'b', hint: 'do c' }, { status: 'skip', text: 'd', hint: 'maybe e' }]);
  t.equal(text, 'ok    a\nFAIL  b\n      hint: do c\nskip  d\n      hint: maybe e\n1 check(s) FAILED.\n');
  t.equal(formatChecks([{ status: 'ok', text: 'a' }, { status: 'skip', text: 'b' }]), 'ok    a\nskip  b\n1 check(s) passed, 1 skipped.\n');
});

t.test('a proxy URL without a port: 443 for https, 80 for http', async (t) => {
  const table: Array<[string, string, number]> = [
    ['https://a:b@gw.example', 'gw.example', 443],
    ['http://a:b@gw.example', 'gw.example', 80],
    ['https://gw.example:3128', 'gw.example', 3128],
    ['http://[::1]:3128', '::1', 3128],
  ];
  for (const [url, host, port] of table) t.same(proxyEndpoint(new URL(url)), { host, port }, url);
});
