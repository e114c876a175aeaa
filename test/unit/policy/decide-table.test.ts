// decide() on a small organisation given as text, for the paths the P0 fixture does not take:
// project hosts by address, projects a team has no grant on or shares with another project,
// ports that no rule names, an agent's own host and HTTP rules, guardrails on other ports, and
// AWS signing over plain http. Each row asserts effect, reason and deciding rule.
import t from 'tap';
import { decide } from '../../../src/policy/decide.ts';
import { explainDecision } from '../../../src/policy/explain.ts';
import type { Principal } from '../../../src/policy/types.ts';
import { decideLine } from '../../fixtures/policies/load-fixture.ts';
import { mustCompileTexts } from './compile-text.ts';

const set = mustCompileTexts({
  org: [
    'organization: X',
    'secrets: [aws1]',
    'projects:',
    '  prod:',
    '    name: Prod',
    '    connections:',
    '      - { name: db, hosts: ["10.9.0.0/16", "*.prod.example"] }',
    '      - { name: api, hosts: [shared.example] }',
    '  stage:',
    '    name: Stage',
    '    connections: [{ name: api, hosts: [shared.example] }]',
    '  vault:',
    '    name: Vault',
    '    connections: [{ name: v, hosts: [vault.example] }]',
    'teams:',
    '  t: { name: T, idp_groups: [t], projects: { prod: member, stage: member } }',
    '  none: { name: None, idp_groups: [none] }',
    'agents:',
    '  bot:',
    '    name: Bot',
    '    team: t',
    '    rules:',
    '      - { host: narrow.example, action: allow, ports: [443] }',
    '      - host: web.example',
    '        action: allow',
    '        http:',
    '          - { method: GET, path: "/ok/**", action: allow }',
    '          - { path: "/no/**", action: deny }',
    '      - { host: blocked.example, action: deny }',
    '',
  ].join('\n'),
  teams: {
    t: [
      'team: t',
      'rules:',
      '  - { host: web.example, action: allow }', // 3
      '  - { host: narrow.example, action: allow, ports: [443, 8443] }', // 4
      '  - { host: blocked.example, action: allow }', // 5
      '  - { host: only443.example, action: allow, ports: [443] }', // 6
      '  - { host: 10.9.0.0/16, action: allow }', // 7
      '  - { host: "*.prod.example", action: allow }', // 8
      '  - { host: shared.example, action: allow }', // 9
      '  - { host: s3.amazonaws.com, action: allow }', // 10
      '  - { host: guarded.example, action: allow, ports: [443, 22] }', // 11
      '  - { host: api.bound.example, action: allow }', // 12
      'credentials:',
      '  - { host: "*.amazonaws.com", aws: { secret: aws1 } }', // 14
      '  - { host: api.bound.example, method: GET, bearer: { secret: aws1 } }', // 15
      '',
    ].join('\n'),
    none: 'team: none\nrules:\n  - { host: vault.example, action: allow }\n  - { host: shared.example, action: allow }\n',
  },
  guardrails: 'rules:\n  - { host: guarded.example, action: deny, ports: [22] }\n',
});

const T: Principal = { team: 't' };
const BOT: Principal = { team: 't', agent: 'bot' };
const NONE: Principal = { team: 'none' };
const P = (file: string, line: number) => `policies/${file}.yaml:${line}`;
const AGENT = (line: number) => `org.yaml:${line}`;

type Row = [string, Principal, string, 'allow' | 'deny' | 'direct', string, string | null, RegExp?];
const rows: Row[] = [
  ['an address in a project connection: read-only as a member', T, 'GET http://10.9.1.1/', 'allow', 'allowed', P('t', 7)],
  ['writing to an address of a member project', T, 'POST http://10.9.1.1/', 'deny', 'method_not_allowed', P('t', 7), /member of project prod/],
  ['a host of two member projects: reading is fine', T, 'GET https://shared.example/', 'allow', 'allowed', P('t', 9)],
  ['a host of two member projects: writing names both', T, 'POST https://shared.example/', 'deny', 'method_not_allowed', P('t', 9), /member of project prod, stage, which allows only GET/],
  ['a project host the team has no grant on', NONE, 'GET https://vault.example/', 'deny', 'project_not_granted', null, /belongs to project vault, and team none has no grant on it\./],
  ['a host of two projects the team has no grant on', NONE, 'GET https://shared.example/', 'deny', 'project_not_granted', null, /belongs to project prod, stage, and team none has no grant on any of them\./],
  ['a binding narrowed to GET applies to GET', T, 'GET https://api.bound.example/', 'allow', 'allowed', P('t', 12)],
  ['a binding narrowed to GET does not apply to POST', T, 'POST https://api.bound.example/', 'allow', 'allowed', P('t', 12)],
  ['a port that no rule names, and no rule after it', T, 'CONNECT only443.example:8443', 'deny', 'port_not_allowed', P('t', 6), /allows this host only on port 443\. Add ports:/],
  ['a guardrail on another port does not apply', T, 'CONNECT guarded.example:443', 'allow', 'allowed', P('t', 11)],
  ['a guardrail on this port denies', T, 'CONNECT guarded.example:22', 'deny', 'host_not_allowed', P('_org', 2)],
  ['aws signing is never done over plain http: no credentials, not refused', T, 'GET http://s3.amazonaws.com/bucket', 'allow', 'allowed', P('t', 10)],
  // The agent's own rules only narrow.
  ['agent: its rule covers fewer ports', BOT, 'CONNECT narrow.example:8443', 'deny', 'port_not_allowed', null, /own rules in org\.yaml do not allow narrow\.example on port 8443/],
  ['agent: its rule denies the host', BOT, 'CONNECT blocked.example:443', 'deny', 'host_not_allowed', AGENT(29), /own rules in org\.yaml deny blocked\.example \(rule at org\.yaml:29\)/],
  ['agent: no rule of its own', BOT, 'GET https://shared.example/', 'deny', 'host_not_allowed', null, /do not allow shared\.example;/],
  ['agent: its HTTP rule denies the path', BOT, 'GET https://web.example/no/x', 'deny', 'path_not_allowed', AGENT(28), /\(rule at org\.yaml:28\)/],
  ['agent: its HTTP rules allow the path for another method', BOT, 'POST https://web.example/ok/x', 'deny', 'method_not_allowed', AGENT(24)],
  ['agent: no HTTP rule of its own names the path', BOT, 'GET https://web.example/else', 'deny', 'path_not_allowed', AGENT(24)],
  ['agent: its HTTP rule allows', BOT, 'GET https://web.example/ok/x', 'allow', 'allowed', P('t', 3)],
];

for (const [why, principal, line, effect, reason, rule, explanation] of rows) {
  t.test(why, async (t) => {
    const d = decideLine(set, principal, line);
    t.match(d, { effect, reason, rule }, line);
    if (explanation) t.match(d.explanation, explanation);
  });
}

t.test('an agent HTTP allow is recorded among the matched rules', async (t) => {
  t.same(decideLine(set, BOT, 'GET https://web.example/ok/x').matched, [P('t', 3), AGENT(24), AGENT(27)]);
});

t.test('a binding narrowed by method applies only to that method', async (t) => {
  t.same(decideLine(set, T, 'GET https://api.bound.example/').credentials.map((c) => c.id), [P('t', 15)]);
  t.same(decideLine(set, T, 'POST https://api.bound.example/').credentials, []);
  t.equal(decideLine(set, T, 'POST https://api.bound.example/').hostBound, true, 'the host is still bound');
});

t.test('a request whose address does not parse is refused (fail closed)', async (t) => {
  for (const hostKind of ['ipv4', 'ipv6'] as const) {
    const d = decide(set, T, { host: 'web.example', hostKind, port: 443, method: 'GET', path: '/', scheme: 'https' });
    t.match(d, { effect: 'deny', reason: 'malformed_request', rule: null }, hostKind);
  }
});

t.test('explainDecision: project with and without a role', async (t) => {
  const member = decideLine(set, T, 'GET http://10.9.1.1/');
  t.match(explainDecision(member), /^ {2}team: {6}t \(project prod, member\)$/m);
  const withoutRole = { ...member, role: undefined, explanation: member.explanation };
  t.match(explainDecision(withoutRole), /^ {2}team: {6}t \(project prod\)$/m);
  t.match(explainDecision(member), /^ {2}credentials injected: none$/m, 'an allow without credentials says none');
});
