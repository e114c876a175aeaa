// Every matcher explains itself in words; tests pin the text (it feeds deny bodies and audit).
import t from 'tap';
import { explainDecision } from '../../../src/policy/explain.ts';
import { explainHostPattern, parseHostPattern } from '../../../src/policy/match/host-pattern.ts';
import { explainRequest } from '../../../src/policy/run-policy-tests.ts';
import { decideLine, loadBase } from '../../fixtures/policies/load-fixture.ts';

const set = loadBase();

t.test('host patterns', async (t) => {
  const rows: Array<[string, string]> = [
    ['api.github.com', 'api.github.com'],
    ['*.amazonaws.com', 'any host ending in .amazonaws.com'],
    ['*', 'every host'],
    ['169.254.169.254', 'the address 169.254.169.254'],
    ['10.1.0.0/16', 'addresses in 10.1.0.0/16'],
  ];
  for (const [text, words] of rows) {
    const p = parseHostPattern(text);
    if (!p.ok) throw new Error(p.message);
    t.equal(explainHostPattern(p.pattern), words, text);
  }
});

t.test('compiled rules carry their explanation', async (t) => {
  const alpha = set.teams.get('alpha')!;
  const rules = alpha.table.rules.map((r) => r.explanation);
  t.equal(rules[0], 'allow api.github.com on ports 80, 443, intercepted, subject to 3 HTTP rules');
  t.equal(alpha.table.rules[0]!.http![0]!.explanation, 'deny any method on /admin/** or /repos/*/*/actions/secrets/**');
  t.equal(alpha.table.rules[0]!.http![2]!.explanation, 'allow GET, POST, PATCH on /repos/** or /user');
  t.ok(rules.includes('allow any host ending in .cdn.example.net on ports 80, 443 as a direct tunnel (not inspected, no credentials)'));
  t.ok(rules.includes('allow addresses in 10.1.0.0/16 on ports 443, 8443, intercepted, any method and path'));
  t.equal(rules[rules.length - 1], 'deny every host on every port');
  t.equal(set.guardrails.rules[0]!.explanation, 'org guardrail: deny the address 169.254.169.254 on every port');
  t.equal(alpha.bindings[1]!.explanation, 'inject x-api-key: <ant-key> for api.anthropic.com');
  t.equal(alpha.bindings[3]!.explanation, 'inject AWS SigV4 signature with the keys in <aws-prod> for any host ending in .eu-west-1.amazonaws.com (when acting for project prod)');
});

t.test('explainDecision: allow with credentials, never a value', async (t) => {
  const r = explainRequest(set, { team: 'alpha', method: 'GET', url: 'https://api.github.com/repos/acme/api' });
  if (!r.ok) throw new Error(r.message);
  t.equal(r.text, [
    'ALLOW GET https://api.github.com/repos/acme/api',
    '  team:      alpha',
    '  rule:      policies/alpha.yaml:8',
    '  reason:    allowed',
    '  why:       Allowed: GET https://api.github.com/repos/acme/api, by the HTTP rule at policies/alpha.yaml:8 (under policies/alpha.yaml:3) of the alpha policy (allow GET, POST, PATCH on /repos/** or /user).',
    '  intercept: yes (TLS terminated; HTTP rules, credentials and metering apply)',
    '  matched:   policies/alpha.yaml:3, policies/alpha.yaml:8, policies/alpha.yaml:46',
    '  credentials injected:',
    '    - gh-token (policies/alpha.yaml:46): Authorization: Bearer from secret gh-token',
    '',
  ].join('\n'));
});

t.test('explainDecision: deny', async (t) => {
  const d = decideLine(set, { team: 'beta' }, 'CONNECT evil2.test:443');
  t.equal(explainDecision(d), [
    'DENY',
    '  team:      beta',
    '  rule:      (no rule matched)',
    '  reason:    host_not_allowed',
    '  why:       Denied: CONNECT evil2.test:443. No rule in policies/beta.yaml (team beta) allows evil2.test; hosts that no rule names are denied.',
    '',
  ].join('\n'));
});

t.test('explainRequest refuses what the proxy would refuse', async (t) => {
  const bad = explainRequest(set, { team: 'alpha', method: 'GET', url: 'https://api.github.com/a/%2f/b' });
  t.equal(bad.ok, false);
  const userinfo = explainRequest(set, { team: 'alpha', method: 'GET', url: 'http://api.github.com@evil.test/' });
  t.equal(userinfo.ok, false);
  const lower = explainRequest(set, { team: 'alpha', method: 'get', url: 'https://api.github.com/user' });
  t.equal(lower.ok, false);
});
