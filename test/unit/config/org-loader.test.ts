// loadOrgAndPolicies: the shell around the pure checks (files, names relative to org.yaml).
import t from 'tap';
import path from 'node:path';
import { loadOrgAndPolicies, loadPolicyTests } from '../../../src/config/policy-source.ts';
import { formatProblem } from '../../../src/errors.ts';

const org = 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n';
const policy = 'team: a\nrules:\n  - { host: "*", action: deny }\n';

t.test('org.yaml missing', async (t) => {
  const dir = t.testdir({});
  const r = loadOrgAndPolicies({ orgFile: path.join(dir, 'org.yaml') });
  t.equal(r.ok, false);
  if (!r.ok) t.equal(formatProblem(r.problems[0]!), 'org.yaml:1:1: file not found');
});

t.test('_org.yaml is optional; an unused policy file is a warning', async (t) => {
  const dir = t.testdir({ 'org.yaml': org, policies: { 'a.yaml': policy, 'old-team.yaml': policy } });
  const r = loadOrgAndPolicies({ orgFile: path.join(dir, 'org.yaml') });
  t.equal(r.ok, true);
  t.same(r.warnings.map(formatProblem), ['policies/old-team.yaml:1:1: warning: no team in org.yaml uses this policy file']);
  if (r.ok) t.equal(r.bundle.guardrails.rules.length, 0);
});

t.test('policy: path relative to org.yaml; policiesDir for _org and defaults', async (t) => {
  const dir = t.testdir({
    conf: { 'org.yaml': 'organization: X\nteams:\n  a: { name: A, idp_groups: [a], policy: team-rules/a.yaml }\n  b: { name: B, idp_groups: [b] }\n', 'team-rules': { 'a.yaml': policy } },
    pol: { 'b.yaml': 'team: b\nrules: []\n', '_org.yaml': 'rules:\n  - { host: evil.test, action: deny }\n' },
  });
  const r = loadOrgAndPolicies({ orgFile: path.join(dir, 'conf', 'org.yaml'), policiesDir: path.join(dir, 'pol') });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  t.equal(r.bundle.teams.get('a')!.file, 'team-rules/a.yaml');
  t.equal(r.bundle.teams.get('b')!.file, path.join(dir, 'pol', 'b.yaml'), 'outside the org dir: absolute');
  t.equal(r.bundle.guardrails.rules.length, 1);
  t.match(r.warnings.map(formatProblem).join('\n'), /team b has no rules, so every request is denied/);
});

t.test('test files are validated too', async (t) => {
  const dir = t.testdir({ 'org.yaml': org, policies: { 'a.yaml': policy, tests: { 't.yaml': 'tests:\n  - { team: a, request: "get https://x.test/", expect: allow }\n' } } });
  const r = loadPolicyTests({ orgFile: path.join(dir, 'org.yaml') });
  t.equal(r.ok, false);
  if (!r.ok) t.match(formatProblem(r.problems[0]!), /^policies\/tests\/t\.yaml:2:25: tests\[0\]\.request/);
});
