// compilePolicySet over tables of small configurations given as text: each row is refused or
// warned about at a file:line, with a message fragment that shows which check fired. The broken
// fixture directories (compile.test.ts) cover the loader's path; these cover the compiler's own.
import t from 'tap';
import { formatProblem } from '../../../src/errors.ts';
import { compileTexts, mustCompileTexts, type PolicyTexts } from './compile-text.ts';

const ORG = [
  'organization: X',
  'secrets: [s, s2]',
  'projects:',
  '  p: { name: P, connections: [{ name: c, hosts: [p.example] }] }',
  '  q: { name: Q, connections: [{ name: c, hosts: [q.example] }] }',
  'teams:',
  '  a: { name: A, idp_groups: [a], projects: { p: admin } }',
  '',
].join('\n');
const team = (...lines: string[]) => ['team: a', ...lines, ''].join('\n');

interface Row {
  why: string;
  texts: PolicyTexts;
  opts?: Parameters<typeof compileTexts>[1];
  errors?: [string, string][];
  warnings?: [string, string][];
}

const rows: Row[] = [
  {
    why: 'a method listed twice; a trailing /* on a binding path',
    texts: { org: ORG, teams: { a: team('rules:', '  - host: w.example', '    action: allow', '    http:', '      - { method: [GET, GET], action: allow }', 'credentials:', '  - { host: w.example, path: "/items/*", bearer: { secret: s } }') } },
    warnings: [['policies/a.yaml:6:19', 'a method is listed twice'], ['policies/a.yaml:8:30', 'ends with "/*"']],
  },
  {
    why: 'an HTTP rule without a path shadows a later one for the same method',
    texts: { org: ORG, teams: { a: team('rules:', '  - host: w.example', '    action: allow', '    http:', '      - { method: DELETE, action: deny }', '      - { method: DELETE, path: /x, action: allow }') } },
    warnings: [['policies/a.yaml:7:9', 'this HTTP rule can never match: every request it covers is already decided by the rule at policies/a.yaml:6']],
  },
  {
    why: 'the same host on other ports, or denied on every port, is not shadowed',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: b.example, action: allow, ports: [443] }', '  - { host: b.example, action: allow, ports: [8443] }', '  - { host: b.example, action: deny }') } },
    warnings: [],
  },
  {
    why: 'a port listed twice; an address rule inside an earlier CIDR',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: 10.0.0.0/8, action: allow, ports: [443, 443] }', '  - { host: 10.1.0.0/16, action: allow, ports: [443] }', '  - { host: "2001:db8::/32", action: allow }') } },
    warnings: [['policies/a.yaml:3:47', 'a port is listed twice'], ['policies/a.yaml:4:5', 'already decided by the rule at policies/a.yaml:3']],
  },
  {
    why: 'HTTP rules under a denied host in a team policy',
    texts: { org: ORG, teams: { a: team('rules:', '  - host: d.example', '    action: deny', '    http:', '      - { path: /x, action: deny }') } },
    errors: [['policies/a.yaml:6:7', 'HTTP rules under a denied host never apply']],
  },
  {
    why: 'a direct tunnel to every host',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: "*", action: direct }') } },
    warnings: [['policies/a.yaml:3:13', 'a direct tunnel to every host cannot be inspected']],
  },
  {
    why: 'a guardrail with HTTP rules leaves the host to later guardrails',
    texts: {
      org: ORG,
      teams: { a: team('rules:', '  - { host: g.example, action: allow }') },
      guardrails: 'rules:\n  - host: g.example\n    action: deny\n    http:\n      - { path: /admin/**, action: deny }\n  - { host: g.example, action: deny, ports: [22] }\n  - { host: g.example, action: deny, ports: [22] }\n',
    },
    warnings: [['policies/_org.yaml:7:5', 'already decided by the rule at policies/_org.yaml:6']],
  },
  {
    why: 'a binding with no kind, one with a bad host',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: w.example }', '  - { host: "w.example/x", bearer: { secret: s } }') } },
    errors: [['policies/a.yaml:5:5', 'needs exactly one of bearer, basic, header, query or aws'], ['policies/a.yaml:6:13', 'must be a host name, not a URL']],
  },
  {
    why: 'secrets: [] lists none',
    texts: { org: ORG.replace('secrets: [s, s2]', 'secrets: []'), teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: w.example, bearer: { secret: s } }') } },
    errors: [['policies/a.yaml:5:42', 'it is not listed under secrets: in org.yaml (none listed)']],
  },
  {
    why: 'a secret with no value, described by the secret source',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: w.example, bearer: { secret: s2 } }') } },
    opts: { secretExists: (n) => n !== 's2', describeSecretSource: (n) => `the vault path kv/${n}` },
    errors: [['policies/a.yaml:5:42', 'unknown secret "s2": no value is configured (set the vault path kv/s2)']],
  },
  {
    why: 'a binding for a project the team has no grant on',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: q.example, action: allow }', 'credentials:', '  - { host: q.example, project: q, bearer: { secret: s } }') } },
    errors: [['policies/a.yaml:5:33', 'team a has no grant on project q, so this binding could never apply']],
  },
  {
    why: 'a header binding on a forbidden header, a template with a line break',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: w.example, header: { name: Cookie, secret: s } }', '  - { host: w.example, header: { name: x-key, template: "k={secret}\\r\\n", secret: s } }') } },
    errors: [['policies/a.yaml:5:40', 'the Cookie header cannot carry a credential'], ['policies/a.yaml:6:57', 'the template may not contain line breaks or NUL']],
  },
  {
    why: 'an aws binding over a host that a direct rule sends uninspected',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: s3.amazonaws.com, action: direct }', 'credentials:', '  - { host: "*.amazonaws.com", aws: { secret: s } }') } },
    errors: [['policies/a.yaml:5:13', 'credentials cannot be injected for *.amazonaws.com: the rule at policies/a.yaml:3 sends it as a direct tunnel']],
  },
  {
    why: 'a binding no rule allows',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: x.example, query: { name: key, secret: s } }') } },
    warnings: [['policies/a.yaml:5:13', 'no rule in this policy allows x.example, so this binding is never used']],
  },
  {
    why: 'two teams on one policy file',
    texts: {
      org: `${ORG}  b: { name: B, idp_groups: [b], policy: policies/a.yaml }\n  c: { name: C, idp_groups: [c], policy: policies/a.yaml }\n`,
      // b has no policy (the loader would have refused that; the compiler says so too), c shares a's file
      teams: { a: team('rules:', '  - { host: w.example, action: allow }'), c: { file: 'policies/a.yaml', text: team('rules:', '  - { host: w.example, action: allow }') } },
    },
    errors: [
      ['org.yaml:8:42', 'team b has no policy file (policies/a.yaml); create it with team: b'],
      ['org.yaml:9:42', 'teams a and c use the same policy file policies/a.yaml; each team has its own'],
      ['policies/a.yaml:1:7', 'this file belongs to team "a", but org.yaml uses it for team c'],
    ],
  },
  {
    why: "an agent's direct rule under a host its team inspects",
    texts: {
      org: `${ORG}agents:\n  bot:\n    name: Bot\n    team: a\n    rules:\n      - { host: w.example, action: direct }\n`,
      teams: { a: team('rules:', '  - { host: w.example, action: allow }') },
    },
    warnings: [['org.yaml:13:36', 'agent rules only narrow: w.example stays intercepted because team a allows it with inspection']],
  },
  {
    why: 'a team with no rules',
    texts: { org: ORG, teams: { a: team('rules: []') } },
    warnings: [['policies/a.yaml:2:8', 'team a has no rules, so every request is denied']],
  },
  {
    why: 'two problems on one line are sorted by column',
    texts: { org: ORG, teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: w.example, project: zz, bearer: { secret: nope } }') } },
    errors: [['policies/a.yaml:5:33', 'unknown project "zz"'], ['policies/a.yaml:5:55', 'unknown secret "nope"']],
  },
];

for (const row of rows) {
  t.test(row.why, async (t) => {
    const r = compileTexts(row.texts, row.opts);
    const errors = r.ok ? [] : r.problems.map(formatProblem);
    const warnings = r.warnings.map(formatProblem);
    t.equal(r.ok, (row.errors ?? []).length === 0, 'refused exactly when errors are expected', { errors });
    t.equal(errors.length, (row.errors ?? []).length, 'no other errors', { errors });
    (row.errors ?? []).forEach(([where, fragment], i) => {
      t.ok(errors[i]?.startsWith(`${where}: `) && errors[i]?.includes(fragment), `error ${where}: ${fragment}`, { got: errors });
    });
    if (row.warnings) {
      t.equal(warnings.length, row.warnings.length, 'no other warnings', { warnings });
      for (const [where, fragment] of row.warnings) t.ok(warnings.some((w) => w.startsWith(`${where}: warning: `) && w.includes(fragment)), `warning ${where}: ${fragment}`, { got: warnings });
    }
  });
}

t.test('a query binding compiles to its parameter name', async (t) => {
  const set = mustCompileTexts({ org: ORG, teams: { a: team('rules:', '  - { host: w.example, action: allow }', 'credentials:', '  - { host: w.example, query: { name: key, secret: s } }') } });
  t.match(set.teams.get('a')!.bindings[0]!.ref, { kind: 'query', queryName: 'key', secret: 's', name: 's', headerName: undefined, template: undefined });
});

t.test('project hosts are indexed by name, suffix and address', async (t) => {
  const org = ORG.replace('hosts: [q.example]', 'hosts: [q.example, "*.q.example", 10.9.0.0/16, 192.0.2.7]');
  const set = mustCompileTexts({ org, teams: { a: team('rules:', '  - { host: w.example, action: allow }') } });
  t.same([...set.projectHosts.exact], [['p.example', ['p']], ['q.example', ['q']]]);
  t.same([...set.projectHosts.suffix], [['q.example', ['q']]]);
  t.same(set.projectHosts.addresses.map((a) => [a.pattern.text, a.project]), [['10.9.0.0/16', 'q'], ['192.0.2.7', 'q']]);
});
