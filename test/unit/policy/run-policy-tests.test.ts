// The shipped Acme example passes its own tests and every rule is exercised; failures and
// uncovered rules are reported with file:line.
import t from 'tap';
import path from 'node:path';
import { policyCheck, policyExplain, policyTest } from '../../../src/config/policy-tools.ts';
import { REPO } from '../../fixtures/policies/load-fixture.ts';

const orgFile = path.join(REPO, 'org.yaml');

t.test('policy check on the example', async (t) => {
  const r = policyCheck({ orgFile });
  t.equal(r.exitCode, 0, r.text);
  t.same(r.problems, []);
  t.same(r.warnings, []);
  t.equal(r.text, 'policy OK: 5 team policies\n');
});

t.test('policy test on the example: all pass, no rule unexercised', async (t) => {
  const r = policyTest({ orgFile });
  t.equal(r.exitCode, 0, r.text);
  t.ok(r.report);
  t.equal(r.report!.failed, 0);
  t.ok(r.report!.passed > 80);
  t.same(r.report!.uncovered, [], 'every rule and binding is exercised by a test');
});

t.test('policy test reports failures and uncovered rules', async (t) => {
  const dir = t.testdir({
    'org.yaml': 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n',
    policies: {
      'a.yaml': 'team: a\nrules:\n  - { host: ok.test, action: allow }\n  - { host: never.test, action: allow }\n  - { host: "*", action: deny }\n',
      tests: { 'a.yaml': 'tests:\n  - { team: a, request: "GET https://ok.test/", expect: allow }\n  - { team: a, request: "GET https://nope.test/", expect: allow, rule: "policies/a.yaml:5" }\n' },
    },
  });
  const r = policyTest({ orgFile: path.join(dir, 'org.yaml') });
  t.equal(r.exitCode, 1);
  t.equal(r.report!.failed, 1);
  t.same(r.report!.uncovered, ['policies/a.yaml:4']);
  t.match(r.text, /FAIL policies\/tests\/a\.yaml:3: GET https:\/\/nope\.test\//);
  t.match(r.text, /expected allow, got deny \(host_not_allowed, rule policies\/a\.yaml:5\)/);
  t.match(r.text, /1 rule\(s\) no test exercises:\n  policies\/a\.yaml:4/);
});

t.test('policy check exit code and file:line:col on a broken policy', async (t) => {
  const dir = t.testdir({
    'org.yaml': 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n',
    policies: { 'a.yaml': 'team: a\nrules:\n  - { host: "api.*.x.com", action: allow }\n' },
  });
  const r = policyCheck({ orgFile: path.join(dir, 'org.yaml') });
  t.equal(r.exitCode, 1);
  t.match(r.text, /^policies\/a\.yaml:3:13: "api\.\*\.x\.com"/);
  t.match(r.text, /policy invalid: 1 error\(s\)\n$/);
});

t.test('policy explain on the example', async (t) => {
  const r = policyExplain({ orgFile }, { team: 'support-operations', method: 'DELETE', url: 'https://acme.zendesk.com/api/v2/tickets/7' });
  t.equal(r.exitCode, 0);
  t.match(r.text, /^DENY DELETE https:\/\/acme\.zendesk\.com\/api\/v2\/tickets\/7\n/);
  t.match(r.text, /rule: {6}policies\/support-operations\.yaml:15/);
  const a = policyExplain({ orgFile }, { team: 'sre', method: 'POST', url: 'https://api.anthropic.com/v1/messages' });
  t.match(a.text, /anthropic-api-key \(policies\/sre\.yaml:\d+\): x-api-key from secret anthropic-api-key/);
  const bad = policyExplain({ orgFile }, { team: 'sre', method: 'GET', url: 'https://api.github.com/%2e%2e/%2e%2e/x' });
  t.equal(bad.exitCode, 2);
});

t.test('diffDecisions: which test requests change decision', async (t) => {
  const { loadOrgAndPolicies, loadPolicyTests } = await import('../../../src/config/policy-source.ts');
  const { diffDecisions } = await import('../../../src/policy/run-policy-tests.ts');
  const mk = (rules: string) => ({
    'org.yaml': 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n',
    policies: { 'a.yaml': `team: a\nrules:\n${rules}`, tests: { 'a.yaml': 'tests:\n  - { team: a, request: "GET https://echo.test/", expect: allow }\n  - { team: a, request: "GET https://other.test/", expect: deny }\n' } },
  });
  const root = t.testdir({ old: mk('  - { host: echo.test, action: allow }\n  - { host: "*", action: deny }\n'), new: mk('  - { host: "*", action: deny }\n') });
  const oldDir = path.join(root, 'old');
  const newDir = path.join(root, 'new');
  const o = loadOrgAndPolicies({ orgFile: path.join(oldDir, 'org.yaml') });
  const n = loadOrgAndPolicies({ orgFile: path.join(newDir, 'org.yaml') });
  const tests = loadPolicyTests({ orgFile: path.join(oldDir, 'org.yaml') });
  if (!o.ok || !n.ok || !tests.ok) throw new Error('load');
  const changes = diffDecisions(o.bundle, n.bundle, tests.files);
  // The allow became a deny. The other request stays denied, only by another rule (line): a rule
  // that merely moved is not a change of decision.
  t.equal(changes.length, 1, 'only the allow that became a deny');
  t.same(changes[0]!.before, { effect: 'allow', reason: 'allowed', rule: 'policies/a.yaml:3' });
  t.same(changes[0]!.after, { effect: 'deny', reason: 'host_not_allowed', rule: 'policies/a.yaml:3' });
});

t.test('parseScope: <team> or <team>.<project>', async (t) => {
  const { parseScope } = await import('../../../src/policy/scope.ts');
  const { loadOrgAndPolicies } = await import('../../../src/config/policy-source.ts');
  const r = loadOrgAndPolicies({ orgFile });
  if (!r.ok) throw new Error('load');
  t.same(parseScope(r.bundle, 'sre'), { ok: true, team: 'sre', project: undefined });
  t.same(parseScope(r.bundle, 'backend-engineering.staging'), { ok: true, team: 'backend-engineering', project: 'staging' });
  t.match(parseScope(r.bundle, 'frontend-engineering.production'), { ok: false, message: /no grant on project "production"; use frontend-engineering\.staging/ });
  t.match(parseScope(r.bundle, 'nobody'), { ok: false, message: /"nobody" is not a team/ });
});
