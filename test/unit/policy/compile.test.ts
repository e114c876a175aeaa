// Broken configs (issue 3 "Bad input"; security cases 2.06, 3.06, 7.05): each is refused with a
// file:line:col message that says what to fix. Fixtures: test/fixtures/policies/broken/<case>/,
// overlaid on the valid base fixture and loaded through the real loader.
import t from 'tap';
import path from 'node:path';
import { formatProblem } from '../../../src/errors.ts';
import { brokenOverlay, load, overlayBase } from '../../fixtures/policies/load-fixture.ts';

// [case, expected problem lines: "file:line:col" and a message fragment]
const cases: Array<[string, Array<[string, string | RegExp]>]> = [
  ['empty-file', [['policies/alpha.yaml:1:1', 'the file is empty']]],
  ['comments-only', [['policies/alpha.yaml:1:1', 'the file is empty']]],
  ['not-yaml', [['policies/alpha.yaml:3:3', 'Block collections are not allowed within flow collections']]],
  ['plain-text', [['policies/alpha.yaml:1:1', 'must be a YAML mapping (key: value), not plain text']]],
  ['a-list', [['policies/alpha.yaml:1:1', 'must be a YAML mapping (key: value), not a list']]],
  ['rules-not-a-list', [['policies/alpha.yaml:3:3', 'rules: expected array']]],
  ['wrong-type-port', [['policies/alpha.yaml:3:52', 'rules[0].ports[0]: expected integer (a TCP port)']]],
  ['unknown-key', [['policies/alpha.yaml:5:5', 'unknown key "method" in rules[0]']]],
  ['unknown-action', [['policies/alpha.yaml:3:37', 'rules[0].action: must be allow']]],
  ['lowercase-method', [['policies/alpha.yaml:6:19', 'rules[0].http[0].method: must be an HTTP method in upper case']]],
  ['team-mismatch', [['policies/alpha.yaml:1:7', 'this file belongs to team "beta", but org.yaml uses it for team alpha; set team: alpha']]],
  ['missing-policy', [['org.yaml:24:5', 'team beta: policy file policies/beta.yaml: file not found']]],
  ['duplicate-team', [['org.yaml:5:3', 'Map keys must be unique']]],
  ['duplicate-key', [['policies/beta.yaml:2:1', 'Map keys must be unique']]],
  ['unknown-project-grant', [['org.yaml:5:71', 'team alpha is granted unknown project "prodution"']]],
  ['agent-unknown-team', [['org.yaml:6:27', 'agent bot names unknown team "gamma"']]],
  ['unknown-project-binding', [['policies/beta.yaml:5:51', 'unknown project "production"; projects are prod, stage']]],
  ['unknown-secret', [['policies/beta.yaml:5:47', 'unknown secret "gh-tokn": it is not listed under secrets: in org.yaml']]],
  ['wildcard-secret-host', [['policies/beta.yaml:5:13', 'a bearer binding puts the secret on the wire, so it must name an exact host: "*.github.io"']]],
  ['http-on-direct', [['policies/beta.yaml:6:7', 'HTTP rules cannot apply to a direct host']]],
  ['credentials-on-direct', [['policies/beta.yaml:5:13', 'credentials cannot be injected for api.github.com: the rule at policies/beta.yaml:3 sends it as a direct tunnel']]],
  ['two-kinds', [['policies/beta.yaml:5:5', 'exactly one of bearer, basic, header, query or aws (found bearer and header)']]],
  ['bad-template', [['policies/beta.yaml:5:88', 'the template must contain {secret} exactly once']]],
  ['invalid-host-globs', [
    ['policies/beta.yaml:3:13', '"*amazonaws.com": "*" is allowed only as a whole leading label'],
    ['policies/beta.yaml:4:13', '"api.*.github.com": "*" is allowed only as a whole leading label'],
    ['policies/beta.yaml:5:13', '"github.*": "*" is allowed only'],
    ['policies/beta.yaml:6:13', '"*.": "*" is allowed only'],
    ['policies/beta.yaml:7:13', '"*.com" matches every host under a top-level domain'],
    ['policies/beta.yaml:8:13', 'write internationalised names in punycode (xn--bcher-kva.example)'],
    ['policies/beta.yaml:9:13', 'write it as 127.0.0.1'],
    ['policies/beta.yaml:10:13', 'must be lower case (api.github.com)'],
    ['policies/beta.yaml:11:13', 'must be a host name, not a URL'],
    ['policies/beta.yaml:12:13', 'did you mean 10.1.0.0/16?'],
    ['policies/beta.yaml:13:13', 'IPv4-mapped IPv6 range'],
    ['policies/beta.yaml:14:13', 'includes a port; list ports under ports:'],
  ]],
  ['invalid-path-globs', [
    ['policies/beta.yaml:6:30', '"**" must be a whole segment'],
    ['policies/beta.yaml:7:30', 'the query string is not part of the path'],
    ['policies/beta.yaml:8:30', 'contains a dot segment'],
    ['policies/beta.yaml:9:30', 'percent-encodes an unreserved character'],
    ['policies/beta.yaml:10:19', 'method "*" already means any method'],
  ]],
  ['path-no-slash', [['policies/beta.yaml:6:30', 'must be a path glob starting with "/"']]],
  ['yaml-cycle', [['policies/alpha.yaml:2:12', 'this alias refers to a node that contains it (a cycle)']]],
  ['custom-tag', [['policies/alpha.yaml:1:15', 'custom YAML tag !secret is not allowed']]],
  ['guardrail-allow', [['policies/_org.yaml:2:32', "rules[0].action: expected 'deny'"]]],
];

for (const [name, expected] of cases) {
  t.test(`broken: ${name}`, async (t) => {
    const dir = t.testdir(overlayBase(brokenOverlay(name)));
    const r = load(dir);
    t.equal(r.ok, false, 'refused');
    if (r.ok) return;
    const lines = r.problems.map(formatProblem);
    for (const [where, fragment] of expected) {
      const hit = lines.find((l) => l.startsWith(`${where}: `) && (typeof fragment === 'string' ? l.includes(fragment) : fragment.test(l)));
      t.ok(hit, `${where}: ${String(fragment)}`, { got: lines });
    }
    t.ok(r.problems.every((p) => p.severity === 'error'));
  });
}

t.test('warnings: shadowed rules, trailing /*, multi-tenant direct', async (t) => {
  const dir = t.testdir(overlayBase(brokenOverlay('warnings')));
  const r = load(dir);
  t.equal(r.ok, true, 'warnings do not refuse the policy');
  const lines = r.warnings.map(formatProblem);
  const expect: Array<[string, string]> = [
    ['policies/beta.yaml:4:5', 'warning: this rule can never match: every request it covers is already decided by the rule at policies/beta.yaml:3'],
    ['policies/beta.yaml:8:30', 'warning: path "/items/*" ends with "/*", which matches one segment only — did you mean /items/**?'],
    ['policies/beta.yaml:10:9', 'warning: this HTTP rule can never match'],
    ['policies/beta.yaml:11:13', 'warning: *.cloudfront.net is under the multi-tenant suffix cloudfront.net'],
    ['policies/beta.yaml:12:13', 'warning: *.blob.core.windows.net is under the multi-tenant suffix'],
    ['policies/beta.yaml:14:5', 'warning: this rule can never match: every request it covers is already decided by the rule at policies/beta.yaml:13 (deny every host on every port)'],
  ];
  for (const [where, text] of expect) t.ok(lines.some((l) => l.startsWith(`${where}: `) && l.includes(text)), `${where} ${text}`, { got: lines });
  t.equal(lines.length, expect.length, 'no other warnings');
});

t.test('unknown secret via the secret source (runtime check)', async (t) => {
  const dir = t.testdir(overlayBase({}));
  const r = load(dir, (n) => n !== 'oai-key');
  t.equal(r.ok, false);
  if (r.ok) return;
  const lines = r.problems.map(formatProblem);
  t.match(lines.join('\n'), /policies\/alpha\.yaml:48:47: unknown secret "oai-key": no value is configured \(set TOLLGATE_SECRET_OAI_KEY or a file named oai-key in the secrets directory\)/);
});

t.test('the base fixture and the shipped example load without problems', async (t) => {
  const base = load(t.testdir(overlayBase({})));
  t.equal(base.ok, true);
  t.same(base.warnings, []);
  const example = load(path.resolve(import.meta.dirname, '../../..'));
  t.equal(example.ok, true, example.ok ? '' : example.problems.map(formatProblem).join('\n'));
  t.same(example.warnings.map(formatProblem), []);
});

t.test('the compiled set is deep-frozen', async (t) => {
  const r = load(t.testdir(overlayBase({})));
  if (!r.ok) throw new Error('load');
  const set = r.bundle;
  t.ok(Object.isFrozen(set));
  t.ok(Object.isFrozen(set.teams.get('alpha')));
  t.ok(Object.isFrozen(set.teams.get('alpha')!.table.rules[0]));
  t.ok(Object.isFrozen(set.teams.get('alpha')!.table.rules[0]!.http));
  t.ok(Object.isFrozen(set.org.teams.get('alpha')!.grants));
  t.throws(() => { (set.teams.get('alpha')!.table.rules as unknown as unknown[]).push(1); });
});
