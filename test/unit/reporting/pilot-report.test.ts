// buildPilotReport: table tests over fixed audit rows and token records — attribution, outcomes,
// actions, denial groups, refusals, anomalies, token holders, agents, and the verdict.
import t from 'tap';
import { buildPilotReport, type PilotAuditRow, type PilotInput, type PilotTokenRecord } from '../../../src/reporting/pilot-report.ts';

const T0 = Date.parse('2026-05-01T00:00:00Z');
const H = 3_600_000;
const WINDOW = { since: T0, until: T0 + 7 * 24 * H };
const at = (h: number) => new Date(T0 + h * H).toISOString();

let seq = 0;
function row(over: Partial<PilotAuditRow> = {}): PilotAuditRow {
  seq++;
  return {
    request_id: `req-${seq}`, time: T0 + seq * 1000, principal_kind: 'user', subject: 'ann@acme.example', agent: null, team: 'sre',
    kind: 'request', method: 'GET', host: 'api.github.com', path: '/zen', decision: 'allow', rule: 'policies/sre.yaml:30', reason: 'allowed', status: 200,
    ...over,
  };
}
const ann = (over: Partial<PilotAuditRow> = {}) => row({ subject: 'ann@acme.example', ...over });
const bob = (over: Partial<PilotAuditRow> = {}) => row({ subject: 'bob@acme.example', ...over });
const bot = (over: Partial<PilotAuditRow> = {}) => row({ principal_kind: 'agent', subject: 'sre-monitor', agent: 'sre-monitor', ...over });
const denied = (over: Partial<PilotAuditRow> = {}) => ({ decision: 'deny' as const, reason: 'host_not_allowed', rule: 'policies/sre.yaml:50', status: 403, host: 'evil.test', path: '/x', ...over });

function token(over: Partial<PilotTokenRecord> = {}): PilotTokenRecord {
  return { kind: 'user', subject: 'ann@acme.example', teams: ['sre'], createdAt: at(-1), expiresAt: at(11), revokedAt: null, lastUsedAt: null, ...over };
}

function report(rows: PilotAuditRow[], over: Partial<PilotInput> = {}) {
  return buildPilotReport({
    team: { key: 'sre', name: 'SRE', idpGroups: ['sre', 'sre-oncall'] },
    agents: [{ key: 'sre-monitor', name: 'SRE Monitor', team: 'sre' }, { key: 'sre-janitor', name: 'Janitor', team: 'sre' }, { key: 'triage', name: 'Triage', team: 'support' }],
    tokens: [],
    rows,
    window: WINDOW,
    ...over,
  });
}

const checks = (r: ReturnType<typeof report>) => Object.fromEntries(r.verdict.checks.map((c) => [c.code, c.ok]));

t.test('outcomes: allowed, denied by policy, refused otherwise', async (t) => {
  const cases: Array<{ name: string; over: Partial<PilotAuditRow>; outcome: 'allowed' | 'denied' | 'refused' }> = [
    { name: 'allow', over: {}, outcome: 'allowed' },
    { name: 'direct tunnel', over: { decision: 'direct', kind: 'tunnel', method: 'CONNECT', path: null }, outcome: 'allowed' },
    { name: 'deny by a rule', over: denied(), outcome: 'denied' },
    { name: 'default deny (no rule matched)', over: denied({ rule: null }), outcome: 'denied' },
    { name: 'deny: project not granted', over: denied({ rule: null, reason: 'project_not_granted' }), outcome: 'denied' },
    { name: 'deny without a reason, with a rule', over: denied({ reason: null }), outcome: 'denied' },
    { name: 'deny without a reason or a rule', over: denied({ reason: null, rule: null }), outcome: 'refused' },
    { name: 'budget exceeded (an allow rule had decided)', over: denied({ reason: 'budget_exceeded', status: 402 }), outcome: 'refused' },
    { name: 'malformed request', over: denied({ reason: 'malformed_request', rule: null, status: 400 }), outcome: 'refused' },
    { name: 'gateway error', over: { decision: 'error', reason: 'audit_unavailable', status: 503 }, outcome: 'refused' },
    { name: 'denied CONNECT counts as an action', over: denied({ kind: 'tunnel', method: 'CONNECT', path: null }), outcome: 'denied' },
  ];
  for (const c of cases) {
    const r = report([ann(c.over)]);
    const m = r.members[0];
    t.match(m, { user: 'ann@acme.example', requests: 1, [c.outcome]: 1 }, c.name);
    t.equal(m?.actions[0]?.[c.outcome], 1, `${c.name}: counted on its action`);
    t.equal(r.denials.length, c.outcome === 'denied' ? 1 : 0, `${c.name}: denial groups`);
    t.equal(r.refusals.length, c.outcome === 'refused' ? 1 : 0, `${c.name}: refusals`);
    t.equal(r.anomaly_count, 0, `${c.name}: not an anomaly`);
    t.equal(r.verdict.pass, true, `${c.name}: PASS`);
  }
});

t.test('attribution: users, agents (by agent or subject), and unattributed rows', async (t) => {
  const cases: Array<{ name: string; row: PilotAuditRow; members: number; agents: string[]; unattributed: boolean }> = [
    { name: 'user', row: ann(), members: 1, agents: [], unattributed: false },
    { name: 'agent by its agent column', row: bot(), members: 0, agents: ['sre-monitor'], unattributed: false },
    { name: 'agent by its subject', row: bot({ agent: null, subject: 'sre-janitor' }), members: 0, agents: ['sre-janitor'], unattributed: false },
    { name: 'agent without a name', row: bot({ agent: null, subject: null }), members: 0, agents: [], unattributed: true },
    { name: 'user without a subject', row: ann({ subject: null }), members: 0, agents: [], unattributed: true },
    { name: 'anonymous', row: row({ principal_kind: 'anonymous', subject: null }), members: 0, agents: [], unattributed: true },
    { name: 'no principal', row: row({ principal_kind: null, subject: null }), members: 0, agents: [], unattributed: true },
  ];
  for (const c of cases) {
    const r = report([c.row]);
    t.equal(r.members.length, c.members, `${c.name}: members`);
    t.same(r.agents.map((a) => a.agent), c.agents, `${c.name}: agents`);
    t.equal(r.anomaly_count, c.unattributed ? 1 : 0, `${c.name}: anomalies`);
    if (c.unattributed) t.match(r.anomalies[0], { kind: 'unattributed', who: null, request_id: c.row.request_id, host: 'api.github.com', decision: 'allow' });
    t.equal(checks(r)['policy_accounted'], !c.unattributed, `${c.name}: policy_accounted`);
  }
});

t.test('two members, an agent, denials and a refusal: PASS with everything counted', async (t) => {
  const rows = [
    ann(), ann(), ann({ method: 'POST', path: '/repos/acme/x' }), ann(denied()), ann(denied()), ann(denied()), ann(denied()),
    // the intercepted CONNECT that carried them: seen, not an action
    ann({ kind: 'tunnel', method: 'CONNECT', path: null, time: T0 + 99 * H }),
    bob({ host: 'api.pagerduty.com' }), bob(), bob(denied()), bob(denied({ host: 'api.github.com', method: 'DELETE', rule: 'policies/sre.yaml:33', reason: 'method_not_allowed' })),
    bob(denied({ reason: 'budget_exceeded', status: 402, host: 'api.anthropic.com', rule: 'policies/sre.yaml:40' })),
    bot({ host: 'hooks.slack.com', method: 'POST' }), bot(denied()),
    row({ team: 'support', subject: 'sue@acme.example' }), // another team's row is not counted
  ];
  const r = report(rows, { examples: 2 });
  t.match(r, { team: 'sre', team_name: 'SRE', since: '2026-05-01T00:00:00.000Z', until: '2026-05-08T00:00:00.000Z', requests: 15 });
  t.same(r.members.map((m) => [m.user, m.requests, m.allowed, m.denied, m.refused]), [
    ['ann@acme.example', 7, 3, 4, 0],
    ['bob@acme.example', 5, 2, 2, 1],
  ]);
  t.equal(r.members[0]?.last_seen, at(99), 'the tunnel counts as a sighting');
  t.same(r.members[0]?.actions.map((a) => [a.method, a.host, a.requests]), [['GET', 'evil.test', 4], ['GET', 'api.github.com', 2], ['POST', 'api.github.com', 1]]);
  t.same(r.members[1]?.actions.map((a) => `${a.method} ${a.host}`), ['GET api.anthropic.com', 'DELETE api.github.com', 'GET api.github.com', 'GET api.pagerduty.com', 'GET evil.test'], 'ties: by host, then method');
  t.match(r.agents, [{ agent: 'sre-monitor', declared: true, requests: 2, allowed: 1, denied: 1 }]);
  t.same(r.agents_not_seen, ['sre-janitor']);
  t.same(r.denials.map((d) => [d.host, d.method, d.rule, d.reason, d.requests, d.subjects, d.examples.length]), [
    ['evil.test', 'GET', 'policies/sre.yaml:50', 'host_not_allowed', 6, 3, 2],
    ['api.github.com', 'DELETE', 'policies/sre.yaml:33', 'method_not_allowed', 1, 1, 1],
  ]);
  t.match(r.denials[0]?.examples[0], { who: 'ann@acme.example', path: '/x', status: 403, request_id: /^req-/, time: /^2026-05-01T/ });
  t.same(r.refusals, [{ reason: 'budget_exceeded', status: 402, requests: 1 }]);
  t.equal(r.anomaly_count, 0);
  t.same(r.verdict, {
    pass: true,
    checks: [
      { code: 'member_seen', ok: true, detail: '2 member(s) seen with 12 attributed request(s)' },
      { code: 'policy_accounted', ok: true, detail: 'every one of the 15 request(s) was attributed and either allowed by a rule or refused' },
    ],
  });
});

t.test('no member seen: FAIL (no rows; only agents; only an intercepted tunnel)', async (t) => {
  for (const [name, rows] of [['no rows', []], ['only the agent', [bot()]], ['only a tunnel', [ann({ kind: 'tunnel', method: 'CONNECT', path: null })]]] as const) {
    const r = report([...rows]);
    t.equal(r.verdict.pass, false, name);
    t.same(checks(r), { member_seen: false, policy_accounted: true }, name);
    t.match(r.verdict.checks[0]?.detail, /no member of team sre/);
  }
  const r = report([ann({ kind: 'tunnel', method: 'CONNECT', path: null })]);
  t.match(r.members, [{ user: 'ann@acme.example', requests: 0 }], 'the member is listed, with no actions');
});

t.test('forwarded without a rule: an anomaly naming who; anomalies are capped but all counted', async (t) => {
  const rows = [ann({ rule: null }), bob({ decision: 'direct', kind: 'tunnel', method: 'CONNECT', rule: null }), row({ principal_kind: null, subject: null, rule: null }), ann({ rule: null, kind: 'tunnel', method: 'CONNECT' })];
  const r = report(rows, { maxAnomalies: 3 });
  t.equal(r.anomaly_count, 5, 'the unattributed row forwarded without a rule is two anomalies');
  t.same(r.anomalies.map((a) => [a.kind, a.who]), [['forwarded_without_rule', 'ann@acme.example'], ['forwarded_without_rule', 'bob@acme.example'], ['unattributed', null]]);
  t.same(checks(r), { member_seen: true, policy_accounted: false });
  t.match(r.verdict.checks[1]?.detail, /^5 request\(s\)/);
  t.equal(report(Array.from({ length: 60 }, () => ann({ rule: null }))).anomalies.length, 50, 'default cap');
});

t.test('denials of unattributed rows, grouping and ordering of ties', async (t) => {
  const rows = [
    row({ principal_kind: null, subject: null, ...denied() }),
    ann(denied({ host: 'a.test', rule: null })), ann(denied({ host: 'a.test' })),
    ann(denied({ host: 'b.test', reason: null })),
    ann(denied({ reason: 'budget_exceeded', status: 402 })), ann({ decision: 'error', reason: null, status: null }),
  ];
  const r = report(rows);
  t.same(r.denials.map((d) => [d.host, d.rule, d.subjects]), [
    ['a.test', null, 1], ['a.test', 'policies/sre.yaml:50', 1], ['b.test', 'policies/sre.yaml:50', 1], ['evil.test', 'policies/sre.yaml:50', 0],
  ]);
  t.same(r.denials[3]?.examples[0]?.who, null);
  t.same(r.refusals, [{ reason: null, status: null, requests: 1 }, { reason: 'budget_exceeded', status: 402, requests: 1 }], 'ties: a null reason first');
  t.equal(report(Array.from({ length: 5 }, () => ann(denied())).concat([])).denials[0]?.examples.length, 3, 'default: three examples');
});

t.test('members and agents ordered by requests, then name; undeclared agents flagged', async (t) => {
  const r = report([bob(), ann(), bot({ agent: 'stray', subject: 'stray' }), bot()]);
  t.same(r.members.map((m) => m.user), ['ann@acme.example', 'bob@acme.example']);
  t.same(r.agents.map((a) => [a.agent, a.declared]), [['sre-monitor', true], ['stray', false]]);
  t.same(r.agents_not_seen, ['sre-janitor'], "another team's agent is not expected");
});

t.test('token holders: users with a token for the team usable during the window', async (t) => {
  const cases: Array<{ name: string; tokens: PilotTokenRecord[]; want: Array<[string, string | null]>; holders: number }> = [
    { name: 'a holder not seen', tokens: [token({ subject: 'cat@acme.example' })], want: [['cat@acme.example', null]], holders: 1 },
    { name: 'a holder seen is not listed', tokens: [token()], want: [], holders: 1 },
    { name: 'agent tokens are not members', tokens: [token({ kind: 'agent', subject: 'sre-janitor' })], want: [], holders: 0 },
    { name: 'another team', tokens: [token({ subject: 'cat@acme.example', teams: ['support'] })], want: [], holders: 0 },
    { name: 'several teams, this one among them', tokens: [token({ subject: 'cat@acme.example', teams: ['support', 'sre'] })], want: [['cat@acme.example', null]], holders: 1 },
    { name: 'issued after the window', tokens: [token({ subject: 'cat@acme.example', createdAt: at(7 * 24), expiresAt: at(8 * 24) })], want: [], holders: 0 },
    { name: 'expired before the window', tokens: [token({ subject: 'cat@acme.example', createdAt: at(-20), expiresAt: at(-8) })], want: [], holders: 0 },
    { name: 'revoked before the window', tokens: [token({ subject: 'cat@acme.example', createdAt: at(-20), revokedAt: at(-10) })], want: [], holders: 0 },
    { name: 'revoked during the window', tokens: [token({ subject: 'cat@acme.example', revokedAt: at(2), lastUsedAt: at(1) })], want: [['cat@acme.example', at(1)]], holders: 1 },
    {
      name: 'several tokens: the latest use wins, a never-used token does not erase it',
      tokens: [
        token({ subject: 'cat@acme.example', lastUsedAt: null }), token({ subject: 'cat@acme.example', lastUsedAt: at(3) }),
        token({ subject: 'cat@acme.example', lastUsedAt: null }), token({ subject: 'cat@acme.example', lastUsedAt: at(5) }),
        token({ subject: 'cat@acme.example', lastUsedAt: at(4) }), token({ subject: 'abe@acme.example' }),
      ],
      want: [['abe@acme.example', null], ['cat@acme.example', at(5)]], holders: 2,
    },
  ];
  for (const c of cases) {
    const r = report([ann()], { tokens: c.tokens });
    t.same(r.members_not_seen.map((m) => [m.user, m.last_token_use]), c.want, c.name);
    t.equal(r.membership.token_holders, c.holders, `${c.name}: holders`);
  }
});

t.test('membership is IdP-derived and says so', async (t) => {
  const r = report([]);
  t.match(r.membership, { source: 'idp_groups', idp_groups: ['sre', 'sre-oncall'], note: /the group\(s\) sre, sre-oncall/ });
  const none = report([], { team: { key: 'sre', name: 'SRE', idpGroups: [] } });
  t.match(none.membership, { idp_groups: [], note: /puts in its groups/ });
});

t.test('rows are consumed once, as an iterable', async (t) => {
  let pulled = 0;
  function* rows() { for (let i = 0; i < 3; i++) { pulled++; yield ann(); } }
  const r = report([], { rows: rows() });
  t.equal(pulled, 3);
  t.equal(r.members[0]?.requests, 3);
});
