// runPolicyTests, diffDecisions and parseRequestLine on the rows a policy test file can get wrong:
// requests the proxy would refuse, and each expectation (effect, rule, reason, credentials) that
// can fail. Also parseScope for a team with no grants.
import path from 'node:path';
import t from 'tap';
import { loadOrgAndPolicies, loadPolicyTests } from '../../../src/config/policy-source.ts';
import { diffDecisions, formatTestReport, parseRequestLine, runPolicyTests } from '../../../src/policy/run-policy-tests.ts';
import { parseScope } from '../../../src/policy/scope.ts';

t.test('parseRequestLine refusals', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['CONNECT', 'api.example.com', /^"api\.example\.com": .*needs a port/],
    ['GET', 'ftp://files.example/x', /^"ftp:\/\/files\.example\/x": /],
    ['GET', 'wss://a.example/socket', /^"wss:\/\/a\.example\/socket": use http:\/\/ or https:\/\/$/],
    ['get', 'https://a.example/', /upper-case token/],
  ];
  for (const [method, target, message] of cases) {
    const r = parseRequestLine(method, target);
    t.equal(r.ok, false, `${method} ${target}`);
    if (!r.ok) t.match(r.message, message, `${method} ${target}`);
  }
});

t.test('a failing test case names every expectation it missed', async (t) => {
  const dir = t.testdir({
    'org.yaml': 'organization: X\nsecrets: [k]\nteams:\n  a: { name: A, idp_groups: [a] }\n',
    policies: {
      'a.yaml': 'team: a\nrules:\n  - { host: ok.test, action: allow }\n  - { host: "*", action: deny }\ncredentials:\n  - { host: ok.test, bearer: { secret: k } }\n',
      tests: {
        'a.yaml': [
          'tests:',
          '  - { team: a, request: "GET https://ok.test/", expect: allow, credentials: [k] }',
          '  - { team: a, request: "GET https://ok.test/", expect: deny, rule: "policies/a.yaml:4", reason: host_not_allowed, credentials: [] }',
          '  - { team: a, request: "CONNECT ok.test", expect: allow }',
          '  - { team: a, request: "GET ftp://ok.test/", expect: allow, name: not http }',
          '  - { team: b, request: "GET https://ok.test/", expect: deny }',
          '  - { team: b, request: "GET https://ok.test/", expect: allow, rule: "policies/a.yaml:3" }',
          '',
        ].join('\n'),
      },
    },
  });
  const orgFile = path.join(dir, 'org.yaml');
  const set = loadOrgAndPolicies({ orgFile });
  const tests = loadPolicyTests({ orgFile });
  if (!set.ok || !tests.ok) throw new Error('load');
  const report = runPolicyTests(set.bundle, tests.files);
  t.same(report.results.map((r) => [r.where, r.passed]), [
    ['policies/tests/a.yaml:2', true], ['policies/tests/a.yaml:3', false], ['policies/tests/a.yaml:4', false], ['policies/tests/a.yaml:5', false], ['policies/tests/a.yaml:6', true],
    ['policies/tests/a.yaml:7', false],
  ]);
  t.match(report.results[5]!.failures, [/^expected allow, got deny \(principal_unknown, rule none\): /, 'expected rule policies/a.yaml:3, got none']);
  t.match(report.results[1]!.failures, [
    /^expected deny, got allow \(allowed, rule policies\/a\.yaml:3\): /,
    'expected rule policies/a.yaml:4, got policies/a.yaml:3',
    'expected reason host_not_allowed, got allowed',
    'expected credentials [], got [k]',
  ]);
  t.equal(report.results[2]!.decision, null, 'an unparseable request is never decided');
  t.match(report.results[2]!.failures, [/^"ok\.test": .*port/]);
  t.equal(report.results[3]!.name, 'not http');
  t.match(report.results[4]!.decision, { reason: 'principal_unknown', rule: null });
  t.same(report.uncovered, ['policies/a.yaml:4'], 'a failing case exercises nothing it did not decide');
  t.match(formatTestReport(report), /^FAIL policies\/tests\/a\.yaml:3: GET https:\/\/ok\.test\/\n {2}expected deny, got allow/);

  // Unparseable requests are skipped by diff; a change of effect is reported with both rules.
  const changes = diffDecisions(set.bundle, set.bundle, tests.files);
  t.same(changes, [], 'the same policy changes nothing');
});

t.test('a decision that goes from a matched rule to none', async (t) => {
  const root = t.testdir({
    old: { 'org.yaml': 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n', policies: { 'a.yaml': 'team: a\nrules:\n  - { host: ok.test, action: allow }\n' } },
    new: { 'org.yaml': 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n', policies: { 'a.yaml': 'team: a\nrules:\n  - { host: other.test, action: allow }\n' } },
  });
  const before = loadOrgAndPolicies({ orgFile: path.join(root, 'old/org.yaml') });
  const after = loadOrgAndPolicies({ orgFile: path.join(root, 'new/org.yaml') });
  if (!before.ok || !after.ok) throw new Error('load');
  const files = [{ file: 'policies/tests/a.yaml', source: { file: 'policies/tests/a.yaml', value: null, positionOf: () => ({ file: 'policies/tests/a.yaml', line: 7, col: 5 }) }, cases: [
    { team: 'a', request: 'CONNECT ok.test', expect: 'allow' as const },
    { team: 'a', request: 'GET https://ok.test/x', expect: 'allow' as const },
  ] }];
  t.same(diffDecisions(before.bundle, after.bundle, files), [{
    where: 'policies/tests/a.yaml:7', request: 'GET https://ok.test/x', team: 'a',
    before: { effect: 'allow', reason: 'allowed', rule: 'policies/a.yaml:3' },
    after: { effect: 'deny', reason: 'host_not_allowed', rule: null },
  }]);
});

t.test('parseScope: a team with no grants names none', async (t) => {
  const root = t.testdir({ 'org.yaml': 'organization: X\nprojects:\n  p: { name: P, connections: [] }\nteams:\n  a: { name: A, idp_groups: [a] }\n', policies: { 'a.yaml': 'team: a\nrules:\n  - { host: ok.test, action: allow }\n' } });
  const set = loadOrgAndPolicies({ orgFile: path.join(root, 'org.yaml') });
  if (!set.ok) throw new Error('load');
  t.same(parseScope(set.bundle, 'a.p'), { ok: false, message: 'team a has no grant on project "p"' });
});
