// Table tests for decide(): Groups 2–4 of security-cases.md, on the P0 fixture.
import t from 'tap';
import { decide, addressAllowedByRule, lookupRule } from '../../../src/policy/decide.ts';
import { parseIp } from '../../../src/classify/ip-address.ts';
import { parseRequestLine } from '../../../src/policy/run-policy-tests.ts';
import { decideLine, loadBase } from '../../fixtures/policies/load-fixture.ts';

const set = loadBase();
const A = { team: 'alpha' };
const B = { team: 'beta' };

type Row = [string, { team: string; project?: string; agent?: string }, string, 'allow' | 'deny' | 'direct', string?, string?];

// [case, principal, request, effect, reason?, rule?]
const rows: Row[] = [
  // 2.06 host canonicalisation and glob boundaries
  ['2.06 upper case host', A, 'GET https://API.GITHUB.COM/user', 'allow', 'allowed', 'policies/alpha.yaml:8'],
  ['2.06 mixed case host', A, 'GET https://Api.GitHub.com/user', 'allow'],
  ['2.06 trailing dot', A, 'GET https://api.github.com./user', 'allow'],
  ['2.06 CONNECT allowed host → intercept', A, 'CONNECT api.github.com:443', 'allow'],
  ['2.06 apex not matched by *.', A, 'CONNECT amazonaws.com:443', 'deny', 'host_not_allowed'],
  ['2.06 evilamazonaws.com', A, 'CONNECT evilamazonaws.com:443', 'deny', 'host_not_allowed'],
  ['2.06 amazonaws.com.evil.test', A, 'CONNECT amazonaws.com.evil.test:443', 'deny', 'host_not_allowed'],
  ['2.06 s3.amazonaws.com.evil.test', A, 'CONNECT s3.amazonaws.com.evil.test:443', 'deny', 'host_not_allowed'],
  ['2.06 api.github.com.evil.test', A, 'CONNECT api.github.com.evil.test:443', 'deny', 'host_not_allowed'],
  ['2.06 api-github.com', A, 'CONNECT api-github.com:443', 'deny', 'host_not_allowed'],
  ['2.06 apixgithub.com (literal dot)', A, 'CONNECT apixgithub.com:443', 'deny', 'host_not_allowed'],
  ['2.06 Cyrillic а', A, 'CONNECT аpi.github.com:443', 'deny', 'host_not_allowed'],
  ['2.06 subdomain under wildcard', A, 'GET https://s3.eu-west-1.amazonaws.com/b/k', 'allow'],
  // 2.02 alternative IP spellings never match host rules for names, and land on the address rules
  ['2.02 decimal loopback', A, 'GET http://2130706433/', 'deny', 'host_not_allowed'],
  ['2.02 hex loopback', A, 'GET http://0x7f000001/', 'deny', 'host_not_allowed'],
  ['2.02 metadata in octal is the guardrail', A, 'GET http://0251.0376.0251.0376/', 'deny', 'host_not_allowed', 'policies/_org.yaml:2'],
  ['2.02 metadata trailing dot', A, 'GET http://169.254.169.254./', 'deny', 'host_not_allowed', 'policies/_org.yaml:2'],
  ['2.02 mapped IPv6 metadata', A, 'GET http://[::ffff:169.254.169.254]/', 'deny', 'host_not_allowed', 'policies/_org.yaml:2'],
  ['2.02 localhost', A, 'CONNECT localhost:443', 'deny', 'host_not_allowed'],
  // 2.11 ports
  ['2.11 CONNECT :22', A, 'CONNECT api.github.com:22', 'deny', 'port_not_allowed'],
  ['2.11 CONNECT :6379', A, 'CONNECT api.github.com:6379', 'deny', 'port_not_allowed'],
  ['2.11 plain :8080', A, 'GET http://echo.allowed.test:8080/', 'deny', 'port_not_allowed'],
  ['2.11 plain :80 allowed by default', A, 'GET http://echo.allowed.test/', 'allow'],
  ['2.11 listed port 22', A, 'CONNECT git.example.com:22', 'allow'],
  ['2.11 unlisted 80 when ports: given', A, 'GET http://git.example.com/', 'deny', 'port_not_allowed'],
  // 2.18 address precedence
  ['2.18 192.168.1.5 denied before the /16 allow', A, 'CONNECT 192.168.1.5:443', 'deny', 'host_not_allowed'],
  ['2.18 192.168.1.6 allowed', A, 'CONNECT 192.168.1.6:443', 'allow'],
  ['2.18 10.1.2.3 denied', A, 'CONNECT 10.1.2.3:443', 'deny', 'host_not_allowed'],
  ['2.18 10.1.3.3 allowed', A, 'CONNECT 10.1.3.3:8443', 'allow'],
  ['2.18 IPv6 range', A, 'CONNECT [2001:db8::5]:443', 'allow'],
  ['2.18 mapped IPv4 matches IPv4 rules', A, 'CONNECT [::ffff:10.1.2.3]:443', 'deny', 'host_not_allowed'],
  // Group 3 paths and methods (P0: alpha on api.github.com)
  ['3.01 dot segments resolve into /admin', A, 'GET https://api.github.com/repos/o/r/../../../admin/x', 'deny', 'path_not_allowed'],
  ['3.01 encoded dot segments', A, 'GET https://api.github.com/repos/o/r/%2e%2e/%2e%2e/%2e%2e/admin/x', 'deny', 'path_not_allowed'],
  ['3.01 mixed .%2e', A, 'GET https://api.github.com/repos/o/r/.%2e/.%2e/.%2e/admin/x', 'deny', 'path_not_allowed'],
  ['3.01 ./ before secrets', A, 'GET https://api.github.com/repos/o/r/./actions/secrets/S', 'deny', 'path_not_allowed'],
  ['3.02 //admin', A, 'GET https://api.github.com//admin/x', 'deny', 'path_not_allowed'],
  ['3.02 repos//o/r/actions/secrets', A, 'GET https://api.github.com/repos//o/r/actions/secrets/S', 'deny', 'path_not_allowed'],
  ['3.02 actions//secrets', A, 'GET https://api.github.com/repos/o/r/actions//secrets/S', 'deny', 'path_not_allowed'],
  ['3.02 trailing slash', A, 'GET https://api.github.com/repos/o/r/actions/secrets/S/', 'deny', 'path_not_allowed'],
  ['3.03 /ADMIN/x', A, 'GET https://api.github.com/ADMIN/x', 'deny', 'path_not_allowed'],
  ['3.03 /Admin/x', A, 'GET https://api.github.com/Admin/x', 'deny', 'path_not_allowed'],
  ['3.03 /%61dmin/x', A, 'GET https://api.github.com/%61dmin/x', 'deny', 'path_not_allowed'],
  ['3.03 /%41DMIN/x', A, 'GET https://api.github.com/%41DMIN/x', 'deny', 'path_not_allowed'],
  ['3.03 %73ecrets', A, 'GET https://api.github.com/repos/o/r/actions/%73ecrets/S', 'deny', 'path_not_allowed'],
  ['3.03 case-sensitive host keeps case', A, 'GET https://case.test/public/x', 'deny', 'path_not_allowed'],
  ['3.03 case-sensitive host exact case', A, 'GET https://case.test/Public/x', 'allow'],
  ['3.05 DELETE', A, 'DELETE https://api.github.com/repos/o/r', 'deny', 'method_not_allowed'],
  ['3.05 PROPFIND', A, 'PROPFIND https://api.github.com/repos/o/r', 'deny', 'method_not_allowed'],
  ['3.05 TRACE', A, 'TRACE https://api.github.com/user', 'deny', 'method_not_allowed'],
  ['3.05 HEAD is covered by GET', A, 'HEAD https://api.github.com/user', 'allow'],
  ['3.05 GET /user', A, 'GET https://api.github.com/user', 'allow'],
  ['3.05 PUT not listed', A, 'PUT https://api.github.com/user', 'deny', 'method_not_allowed'],
  ['3.05 path not listed', A, 'GET https://api.github.com/orgs/acme', 'deny', 'path_not_allowed'],
  // 3.06 glob semantics
  ['3.06 /repos/a/b/issues: * is one segment', A, 'GET https://globs.test/repos/a/b/issues', 'deny', 'path_not_allowed'],
  ['3.06 /repos/a/issues', A, 'GET https://globs.test/repos/a/issues', 'allow'],
  ['3.06 /v1/modelsXlist: . is literal', A, 'GET https://globs.test/v1/modelsXlist', 'deny', 'path_not_allowed'],
  ['3.06 /v1/models.list', A, 'GET https://globs.test/v1/models.list', 'allow'],
  ['3.06 literal specials', A, 'GET https://globs.test/lit/a+b(c)[d]{e}|f!g@h', 'allow'],
  ['3.06 specials are not patterns', A, 'GET https://globs.test/lit/aab(c)[d]{e}|f!g@h', 'deny', 'path_not_allowed'],
  ['3.06 /tree/** matches the bare prefix', A, 'GET https://globs.test/tree', 'allow'],
  ['3.06 /tree/** matches deep', A, 'GET https://globs.test/tree/a/b/c', 'allow'],
  ['3.06 /treeX is not under /tree', A, 'GET https://globs.test/treeX/a', 'deny', 'path_not_allowed'],
  ['3.06 *.json within a segment', A, 'GET https://globs.test/files/a.json', 'allow'],
  ['3.06 *.json not across segments', A, 'GET https://globs.test/files/a/b.json', 'deny', 'path_not_allowed'],
  // guardrails
  ['guardrail host', A, 'CONNECT evil.test:443', 'deny', 'host_not_allowed', 'policies/_org.yaml:3'],
  ['guardrail path', A, 'POST https://api.github.com/orgs/acme/actions/secrets/X', 'deny', 'path_not_allowed', 'policies/_org.yaml:7'],
  ['guardrail needing inspection refuses a direct tunnel', A, 'CONNECT inspect.example.org:443', 'deny', 'host_not_allowed', 'policies/_org.yaml:8'],
  // direct
  ['direct tunnel', A, 'CONNECT a.cdn.example.net:443', 'direct', 'direct'],
  // projects
  ['member read', B, 'GET https://logs.eu-west-1.amazonaws.com/', 'allow'],
  ['member write refused', B, 'POST https://logs.eu-west-1.amazonaws.com/', 'deny', 'method_not_allowed'],
  ['admin write', B, 'POST https://sqs.us-east-2.amazonaws.com/', 'allow'],
  ['host in two projects, roles differ, write, no scope', B, 'POST https://api.github.com/repos/o/r', 'deny', 'project_ambiguous'],
  ['host in two projects, read, no scope', B, 'GET https://api.github.com/repos/o/r', 'allow'],
  ['scope chooses', { team: 'beta', project: 'stage' }, 'POST https://api.github.com/repos/o/r', 'allow'],
  ['scope member', { team: 'beta', project: 'prod' }, 'POST https://api.github.com/repos/o/r', 'deny', 'method_not_allowed'],
  ['scope outside the host projects', { team: 'beta', project: 'prod' }, 'GET https://sqs.us-east-2.amazonaws.com/', 'deny', 'project_not_granted'],
  ['scope not granted', { team: 'beta', project: 'nope' }, 'GET https://echo.allowed.test/', 'deny', 'project_not_granted'],
  ['two projects with scoped credentials, no scope', A, 'GET https://shared.example.com/x', 'deny', 'project_ambiguous'],
  ['two projects with scoped credentials, scoped', { team: 'alpha', project: 'stage' }, 'GET https://shared.example.com/x', 'allow'],
  ['CONNECT is not ambiguous yet', A, 'CONNECT shared.example.com:443', 'allow'],
  // agents narrow
  ['agent GET allowed by both', { team: 'alpha', agent: 'alpha-bot' }, 'GET https://api.github.com/repos/o/r', 'allow'],
  ['agent POST allowed by team, not by agent', { team: 'alpha', agent: 'alpha-bot' }, 'POST https://api.github.com/repos/o/r', 'deny', 'method_not_allowed'],
  ['agent /user allowed by team, not by agent', { team: 'alpha', agent: 'alpha-bot' }, 'GET https://api.github.com/user', 'deny', 'path_not_allowed'],
  ['agent host allowed by team, not by agent', { team: 'alpha', agent: 'alpha-bot' }, 'CONNECT api.openai.com:443', 'deny', 'host_not_allowed'],
  ['agent cannot widen', { team: 'alpha', agent: 'alpha-bot' }, 'CONNECT evil2.test:443', 'deny', 'host_not_allowed'],
  ['agent of another team', { team: 'beta', agent: 'alpha-bot' }, 'CONNECT echo.allowed.test:443', 'deny', 'principal_unknown'],
  ['agent project defaults scope', { team: 'alpha', agent: 'alpha-free' }, 'GET https://shared.example.com/x', 'allow'],
  ['unknown team', { team: 'gamma' }, 'CONNECT echo.allowed.test:443', 'deny', 'principal_unknown'],
  // credentials over plain http are refused
  ['4.03 plain http to a bound host', A, 'GET http://api.github.com/user', 'deny', 'credential_insecure'],
  ['4.03 bound host on another port', A, 'GET https://api.github.com:8443/user', 'deny', 'port_not_allowed'],
];

t.test('decide table', async (t) => {
  for (const [name, principal, line, effect, reason, rule] of rows) {
    const d = decideLine(set, principal, line);
    t.equal(d.effect, effect, `${name}: effect (${d.explanation})`);
    if (reason) t.equal(d.reason, reason, `${name}: reason`);
    if (rule) t.equal(d.rule, rule, `${name}: rule`);
    t.ok(Object.isFrozen(set), 'set stays frozen');
  }
});

t.test('CONNECT to an allowed host is intercepted; inner requests decided again', async (t) => {
  const c = decideLine(set, A, 'CONNECT api.github.com:443');
  t.equal(c.intercept, true);
  t.same(c.credentials, []);
  const inner = decideLine(set, A, 'DELETE https://api.github.com/repos/o/r');
  t.equal(inner.effect, 'deny');
});

t.test('credentials: exact host, narrowed by project, never to other hosts', async (t) => {
  const names = (p: { team: string; project?: string }, line: string) => decideLine(set, p, line).credentials.map((c) => c.name);
  t.same(names(A, 'GET https://api.github.com/user'), ['gh-token']);
  t.same(names(A, 'GET https://echo.allowed.test/'), [], '4.03 unbound host gets nothing');
  t.same(names(A, 'GET https://s3.eu-west-1.amazonaws.com/b'), ['aws-prod']);
  t.same(names(A, 'GET https://s3.us-east-2.amazonaws.com/b'), ['aws-stage']);
  t.same(names(A, 'GET https://s3.amazonaws.com/b'), [], 'global endpoint is in no project, no binding');
  t.same(names({ team: 'alpha', project: 'stage' }, 'GET https://shared.example.com/x'), ['shared-stage']);
  const d = decideLine(set, A, 'POST https://api.anthropic.com/v1/messages');
  t.equal(d.credentials[0]?.requirePlaceholder, 'tollgate-placeholder');
  t.equal(d.credentials[0]?.headerName, 'x-api-key');
});

t.test('decision explanation names the rule and the team', async (t) => {
  const d = decideLine(set, A, 'DELETE https://api.github.com/repos/o/r');
  t.match(d.explanation, /^Denied: DELETE https:\/\/api\.github\.com\/repos\/o\/r\. The alpha policy denies DELETE \/repos\/o\/r on api\.github\.com: the rule at policies\/alpha\.yaml:7 says "deny DELETE on any path"\.$/);
  const n = decideLine(set, B, 'CONNECT nowhere.test:443');
  t.equal(n.rule, null);
  t.match(n.explanation, /No rule in policies\/beta\.yaml \(team beta\) allows nowhere\.test/);
  const amb = decideLine(set, B, 'POST https://api.github.com/repos/o/r');
  t.match(amb.explanation, /beta\.prod or beta\.stage/);
});

t.test('addressAllowedByRule: deny listed first wins, names only', async (t) => {
  const ip = (s: string) => parseIp(s)!;
  t.same(addressAllowedByRule(set, 'alpha', ip('192.168.1.5'), 443).allowed, false);
  t.same(addressAllowedByRule(set, 'alpha', ip('192.168.1.6'), 443).allowed, true);
  t.same(addressAllowedByRule(set, 'alpha', ip('10.1.2.3'), 443).allowed, false);
  t.same(addressAllowedByRule(set, 'alpha', ip('10.1.3.3'), 443), { allowed: true, rule: 'policies/alpha.yaml:38' });
  t.same(addressAllowedByRule(set, 'alpha', ip('127.0.0.1'), 443), { allowed: false, rule: null }, '"*" never names an address');
  t.same(addressAllowedByRule(set, 'alpha', ip('169.254.169.254'), 443).allowed, false, 'guardrail wins');
  t.same(addressAllowedByRule(set, 'alpha', ip('::ffff:10.1.3.3'), 443).allowed, true, 'mapped form takes the IPv4 rules');
  t.same(addressAllowedByRule(set, 'beta', ip('192.168.1.6'), 443).allowed, false, 'other team');
  t.same(addressAllowedByRule(set, 'gamma', ip('192.168.1.6'), 443).allowed, false, 'unknown team');
  // a rule names its addresses on its own ports only (10.1.0.0/16 is allowed on 443 and 8443)
  t.same(addressAllowedByRule(set, 'alpha', ip('10.1.3.3'), 8443), { allowed: true, rule: 'policies/alpha.yaml:38' }, 'on a port of the rule');
  t.same(addressAllowedByRule(set, 'alpha', ip('10.1.3.3'), 22), { allowed: false, rule: null }, 'not on a port the rule does not list');
  t.same(addressAllowedByRule(set, 'alpha', ip('169.254.169.254'), 8080).allowed, false, 'a guardrail without ports holds on every port');
});

t.test('first-match order holds across the exact, suffix and * indexes', async (t) => {
  const table = set.teams.get('alpha')!.table;
  const r = lookupRule(table, 'api.github.com', null, 443);
  t.equal(r.rule?.host.text, 'api.github.com');
  const s = lookupRule(table, 'x.cdn.example.net', null, 443);
  t.equal(s.rule?.action, 'direct');
  const any = lookupRule(table, 'other.test', null, 443);
  t.equal(any.rule?.host.kind, 'any');
});

t.test('decide is fast: < 10 µs at 1,000 rules (asserted with CI slack)', async (t) => {
  const { compilePolicySet } = await import('../../../src/policy/compile.ts');
  const { parseOrgConfig } = await import('../../../src/config/org-config.ts');
  const { parsePolicyDocument } = await import('../../../src/config/policy-source.ts');
  const { TeamPolicySchema } = await import('../../../src/config/policy-schemas.ts');
  const org = parseOrgConfig('org.yaml', 'organization: X\nteams:\n  big: { name: Big, idp_groups: [big] }\n');
  if (!org.ok) throw new Error('org');
  const lines = ['team: big', 'rules:'];
  for (let i = 0; i < 1000; i++) {
    if (i % 3 === 0) lines.push(`  - { host: "*.zone${i}.example.com", action: allow }`);
    else lines.push(`  - host: h${i}.example.com\n    action: allow\n    http:\n      - { method: GET, path: "/v1/**", action: allow }\n      - { method: POST, path: /v1/items, action: allow }`);
  }
  lines.push('  - { host: "*", action: deny }');
  const doc = parsePolicyDocument('policies/big.yaml', lines.join('\n'), TeamPolicySchema, 'team policy');
  if (!doc.ok) throw new Error(JSON.stringify(doc.problems));
  const compiled = compilePolicySet({ org: org.parsed, teamPolicies: new Map([['big', doc.input]]) });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems.slice(0, 3)));
  const big = compiled.set;
  const reqs = ['GET https://h998.example.com/v1/x/y', 'GET https://a.zone999.example.com/', 'CONNECT nothing.test:443', 'POST https://h500.example.com/v1/items']
    .map((l) => { const s = l.indexOf(' '); const p = parseRequestLine(l.slice(0, s), l.slice(s + 1)); if (!p.ok) throw new Error(p.message); return p.request; });
  const principal = { team: 'big' };
  for (let i = 0; i < 20000; i++) decide(big, principal, reqs[i % reqs.length]!);
  const n = 100000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) decide(big, principal, reqs[i % reqs.length]!);
  const perDecision = Number(process.hrtime.bigint() - start) / n / 1000;
  t.comment(`decide: ${perDecision.toFixed(2)} µs per decision at 1,000 rules`);
  t.ok(perDecision < 50, `decision time ${perDecision.toFixed(2)} µs`);
});
