import t from 'tap';
import { isAdminGroup, parseOrgConfig, teamsForGroups } from '../../../src/config/org-config.ts';
import { formatProblem } from '../../../src/errors.ts';

const good = `organization: Acme
budget: { monthly_usd: 2000 }
admins: { idp_groups: [it-admins] }
projects:
  production: { name: Production, connections: [ { name: github, hosts: [api.github.com] } ] }
teams:
  sre:
    name: SRE
    idp_groups: [sre, oncall]
    projects: { production: admin }
    budget: { daily_usd: 20 }
    user_budget: { monthly_usd: 50 }
agents:
  mon: { name: Mon, team: sre, project: production, every: 5m, command: [node, m.js], budget: { monthly_usd: 5 } }
users:
  Alice@Acme.example: { budget: { monthly_usd: 10 } }
`;

t.test('a valid org: budgets at every level, grants, agents, helpers', async (t) => {
  const r = parseOrgConfig('org.yaml', good);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  const org = r.parsed.org;
  t.same(org.budget, { monthlyUsd: 2000, dailyUsd: undefined });
  t.same(org.teams.get('sre')!.budget, { monthlyUsd: undefined, dailyUsd: 20 });
  t.same(org.teams.get('sre')!.userBudget, { monthlyUsd: 50, dailyUsd: undefined });
  t.equal(org.teams.get('sre')!.grants.get('production'), 'admin');
  t.equal(org.teams.get('sre')!.policyFile, 'policies/sre.yaml');
  t.equal(org.agents.get('mon')!.everySeconds, 300);
  t.same(org.agents.get('mon')!.budget, { monthlyUsd: 5, dailyUsd: undefined });
  t.same(org.users.get('alice@acme.example')!.budget, { monthlyUsd: 10, dailyUsd: undefined });
  t.same(teamsForGroups(org, ['oncall', 'x']), ['sre']);
  t.equal(isAdminGroup(org, ['it-admins']), true);
  t.equal(isAdminGroup(org, ['sre']), false);
});

const bad: Array<[string, string, string]> = [
  ['empty', '', 'org.yaml:1:1: the file is empty'],
  ['not a mapping', '- a\n- b\n', 'org.yaml:1:1: org.yaml must be a mapping'],
  ['missing teams', 'organization: X\n', 'org.yaml:1:1: teams is required'],
  ['wrong type', 'organization: X\nteams: [sre]\n', 'org.yaml:2:8: teams: expected object'],
  ['unknown key', 'organization: X\nteam:\n  a: { name: A, idp_groups: [] }\nteams: {}\n', 'org.yaml:2:1: unknown key "team" in (top level)'],
  ['empty budget', 'organization: X\nbudget: {}\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:2:9: budget'],
  ['negative budget', 'organization: X\nbudget: { monthly_usd: -1 }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:2:24: budget.monthly_usd'],
  // 6.14: values that would make a budget unlimited or inexact once counted in micro-dollars
  ['budget past the ceiling', 'organization: X\nbudget: { monthly_usd: 1e308 }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:2:24: budget.monthly_usd'],
  ['budget past 2^53 micro-dollars', 'organization: X\nteams:\n  a: { name: A, idp_groups: [a], budget: { daily_usd: 1e10 } }\n', 'org.yaml:3:55: teams.a.budget.daily_usd'],
  ['infinite budget', 'organization: X\nbudget: { monthly_usd: .inf }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:2:24: budget.monthly_usd'],
  ['NaN budget', 'organization: X\nbudget: { monthly_usd: .nan }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:2:24: budget.monthly_usd'],
  ['unknown budget period', 'organization: X\nbudget: { yearly_usd: 1 }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:2:11: unknown key "yearly_usd" in budget'],
  ['bad grant role', 'organization: X\nprojects:\n  p: { name: P, connections: [] }\nteams:\n  a: { name: A, idp_groups: [a], projects: { p: owner } }\n', 'org.yaml:5:49: teams.a.projects.p: admin (all methods) or member'],
  ['unknown project', 'organization: X\nteams:\n  a: { name: A, idp_groups: [a], projects: { p: admin } }\n', 'org.yaml:3:46: team a is granted unknown project "p"'],
  ['bad team key', 'organization: X\nteams:\n  Team A: { name: A, idp_groups: [a] }\n', 'org.yaml:3:3: team key "Team A" must be lower case'],
  ['reserved team key', 'organization: X\nteams:\n  _org: { name: A, idp_groups: [a] }\n', 'org.yaml:3:3: team key "_org" must be lower case'],
  ['agent unknown team', 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\nagents:\n  b: { name: B, team: c }\n', 'org.yaml:5:23: agent b names unknown team "c"'],
  ['agent project not granted', 'organization: X\nprojects:\n  p: { name: P, connections: [] }\nteams:\n  a: { name: A, idp_groups: [a] }\nagents:\n  b: { name: B, team: a, project: p }\n', 'org.yaml:7:35: agent b acts for project p, but team a has no grant on it'],
  ['bad schedule', 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\nagents:\n  b: { name: B, team: a, every: 5 minutes }\n', 'org.yaml:5:33: agents.b.every'],
  ['connection owns every host', 'organization: X\nprojects:\n  p: { name: P, connections: [ { name: c, hosts: ["*"] } ] }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:3:51: a connection cannot own every host'],
  ['bad connection host', 'organization: X\nprojects:\n  p: { name: P, connections: [ { name: c, hosts: ["k8s.*.example.com"] } ] }\nteams:\n  a: { name: A, idp_groups: [a] }\n', 'org.yaml:3:51: "k8s.*.example.com"'],
  ['duplicate team', 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\n  a: { name: B, idp_groups: [b] }\n', 'org.yaml:4:3: Map keys must be unique'],
  ['bad user key', 'organization: X\nteams:\n  a: { name: A, idp_groups: [a] }\nusers:\n  alice: {}\n', 'org.yaml:5:3: users are keyed by e-mail address'],
  ['cycle', 'organization: X\nteams: &t\n  a: { name: A, idp_groups: [a], x: *t }\n', 'org.yaml:3:37: this alias refers to a node that contains it'],
];

for (const [name, text, want] of bad) {
  t.test(`org.yaml: ${name}`, async (t) => {
    const r = parseOrgConfig('org.yaml', text);
    t.equal(r.ok, false);
    if (r.ok) return;
    const lines = r.problems.map(formatProblem);
    t.ok(lines.some((l) => l.startsWith(want)), want, { got: lines });
  });
}

t.test('an IdP group shared by two teams is a warning', async (t) => {
  const r = parseOrgConfig('org.yaml', 'organization: X\nteams:\n  a: { name: A, idp_groups: [eng] }\n  b: { name: B, idp_groups: [eng] }\n');
  if (!r.ok) throw new Error('parse');
  t.match(r.warnings.map(formatProblem).join('\n'), /IdP group "eng" maps to teams a and b/);
});
