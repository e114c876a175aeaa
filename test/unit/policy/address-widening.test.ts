// src/policy/address-widening.ts: which IP/CIDR rules reach non-public addresses, and which a new
// policy set adds over the one in force (security case 7.05: a hot reload must not widen into
// private address space on its own). The built-in ranges are checked against the address
// classifier the dial path uses, so the two cannot drift apart.
import t from 'tap';
import { classifyIPv4, classifyAddress } from '../../../src/classify/classify-address.ts';
import { parseIp } from '../../../src/classify/ip-address.ts';
import { formatProblem } from '../../../src/errors.ts';
import { cidrs, entirelyPublic, nonPublicGrants, nonPublicWidening, portsCover, position } from '../../../src/policy/address-widening.ts';
import { parseAddressRule } from '../../../src/policy/match/address.ts';
import { mustCompileTexts } from './compile-text.ts';

const cidr = (s: string) => {
  const r = parseAddressRule(s);
  if (!r?.ok) throw new Error(`bad test CIDR ${s}`);
  return r.cidr;
};

t.test('the IPv4 list holds exactly the addresses the classifier does not call public', async (t) => {
  // classifyIPv4 decides on the first octet alone except for these, where it looks at /24 blocks.
  const finer = new Set([100, 169, 172, 192, 198, 203]);
  let mismatches = 0;
  for (let a = 0; a < 256; a++) {
    const blocks = finer.has(a) ? 65_536 : 1;
    for (let i = 0; i < blocks; i++) {
      const base = ((a << 24) | (finer.has(a) ? i << 8 : 0)) >>> 0;
      const size = finer.has(a) ? 256 : 1 << 24;
      const first = classifyIPv4(base);
      const last = classifyIPv4((base + size - 1) >>> 0);
      const classifierPublic = first === 'public' && last === 'public';
      const block = cidr(`${a}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.0/${finer.has(a) ? 24 : 8}`);
      if (entirelyPublic(block) !== classifierPublic) {
        mismatches++;
        if (mismatches < 5) t.fail(`${a}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.0: classifier ${first}/${last}, list says ${entirelyPublic(block) ? 'public' : 'non-public'}`);
      }
    }
  }
  t.equal(mismatches, 0, 'no /24 block (or /8 where the classifier reads only the first octet) disagrees');
});

t.test('entirelyPublic (table): a range is public only if every address in it is', async (t) => {
  const rows: Array<[string, boolean]> = [
    ['8.8.8.8/32', true], ['8.0.0.0/7', true], ['32.0.0.0/3', true], ['0.0.0.0/0', false], ['8.0.0.0/5', false],
    ['10.20.0.0/16', false], ['10.0.0.0/8', false], ['169.254.169.254/32', false], ['172.15.0.0/16', true], ['172.16.0.0/16', false],
    ['100.63.0.0/16', true], ['100.64.0.0/16', false], ['192.168.1.0/24', false], ['203.0.113.7/32', false], ['224.0.0.1/32', false],
    ['2606:4700::/32', true], ['2000::/3', false], ['::/0', false], ['::1/128', false], ['fd00:ec2::254/128', false], ['fe80::/10', false],
    ['2002::/16', false], ['2002:a00::/24', false], ['2001::/32', false], ['2001:db8::/32', false], ['2a00::/16', true], ['64:ff9b::/96', false],
  ];
  for (const [text, want] of rows) t.equal(entirelyPublic(cidr(text)), want, `${text}: ${want ? 'public' : 'not entirely public'}`);
  for (const ip of ['2606:4700::1', '2a00:1450::1']) t.equal(classifyAddress(parseIp(ip) as NonNullable<ReturnType<typeof parseIp>>).class, 'public', `${ip} is public to the classifier too`);
});

const ORG = 'organization: X\nteams:\n  sre: { name: SRE, idp_groups: [sre] }\n  web: { name: Web, idp_groups: [web] }\n';
const team = (...rules: string[]) => `team: x\nrules:\n${rules.map((r) => `  - ${r}\n`).join('')}  - { host: "*", action: deny }\n`;
const set = (sre: string[], web: string[] = [], guardrails?: string[]) => mustCompileTexts({
  org: ORG,
  teams: { sre: team(...sre).replace('team: x', 'team: sre'), web: team(...web).replace('team: x', 'team: web') },
  ...(guardrails ? { guardrails: guardrails.length === 0 ? 'rules: []\n' : `rules:\n${guardrails.map((r) => `  - ${r}\n`).join('')}` } : {}),
});

t.test('nonPublicGrants: allow and direct IP/CIDR rules over non-public space, nothing else', async (t) => {
  const s = set([
    '{ host: api.github.com, action: allow }',
    '{ host: 8.8.8.8, action: allow }',
    '{ host: 10.20.0.0/16, action: allow, ports: [8443] }',
    '{ host: 10.30.0.0/16, action: deny }',
    '{ host: 192.168.0.10, action: direct }',
  ]);
  t.same(nonPublicGrants(s).map((g) => [g.scope, g.rule.host.text]), [['sre', '10.20.0.0/16'], ['sre', '192.168.0.10']]);
});

const cases: Array<{ name: string; before: string[]; after: string[]; afterWeb?: string[]; guardrailsBefore?: string[]; guardrails?: string[]; widens: RegExp[] }> = [
  { name: 'a new private allow', before: ['{ host: api.github.com, action: allow }'], after: ['{ host: api.github.com, action: allow }', '{ host: 10.0.0.0/8, action: allow }'], widens: [/team sre reach non-public addresses \(10\.0\.0\.0\/8 on ports 80, 443\)/] },
  { name: 'the metadata address', before: [], after: ['{ host: 169.254.169.254, action: allow, ports: [80] }'], widens: [/169\.254\.169\.254\/32 on port 80\b/] },
  { name: 'a wider range than before', before: ['{ host: 10.20.0.0/16, action: allow }'], after: ['{ host: 10.0.0.0/8, action: allow }'], widens: [/10\.0\.0\.0\/8/] },
  { name: 'more ports than before', before: ['{ host: 10.20.0.0/16, action: allow, ports: [8443] }'], after: ['{ host: 10.20.0.0/16, action: allow, ports: [8443, 22] }'], widens: [/ports 22, 8443/] },
  { name: 'deny turned into allow', before: ['{ host: 127.0.0.0/8, action: deny }'], after: ['{ host: 127.0.0.0/8, action: allow }'], widens: [/newly let team sre reach non-public addresses \(127\.0\.0\.0\/8/, /the deny that came before it \(policies\/sre\.yaml:3\) is gone/] },
  { name: 'another team gets a range one team had', before: ['{ host: 10.20.0.0/16, action: allow }'], after: ['{ host: 10.20.0.0/16, action: allow }'], afterWeb: ['{ host: 10.20.0.0/16, action: allow }'], widens: [/team web/] },
  { name: 'a deny guardrail added (guardrails only deny)', before: [], after: [], guardrails: ['{ host: 10.0.0.0/8, action: deny }'], widens: [] },
  // Removing what stood in front of an unchanged grant widens just the same.
  { name: 'the metadata guardrail removed under a team grant', before: ['{ host: 169.254.0.0/16, action: allow }'], after: ['{ host: 169.254.0.0/16, action: allow }'], guardrailsBefore: ['{ host: 169.254.169.254, action: deny }'], guardrails: [], widens: [/removes or narrows the guardrail that kept every team from 169\.254\.169\.254\/32 on every port, which would let team sre reach it/] },
  { name: 'a guardrail narrowed to fewer ports', before: ['{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.0.0.0/8, action: allow }'], guardrailsBefore: ['{ host: 10.1.0.0/16, action: deny }'], guardrails: ['{ host: 10.1.0.0/16, action: deny, ports: [22] }'], widens: [/guardrail that kept every team from 10\.1\.0\.0\/16/] },
  { name: 'a guardrail made http-scoped (no longer applies to the address)', before: ['{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.0.0.0/8, action: allow }'], guardrailsBefore: ['{ host: 10.1.0.0/16, action: deny }'], guardrails: ['{ host: 10.1.0.0/16, action: deny, http: [ { method: DELETE, action: deny } ] }'], widens: [/guardrail that kept every team from 10\.1\.0\.0\/16/] },
  { name: 'a guardrail removed where no team has a grant', before: ['{ host: api.github.com, action: allow }'], after: ['{ host: api.github.com, action: allow }'], guardrailsBefore: ['{ host: 10.1.0.0/16, action: deny }'], guardrails: [], widens: [] },
  { name: 'a guardrail widened', before: ['{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.0.0.0/8, action: allow }'], guardrailsBefore: ['{ host: 10.1.0.0/16, action: deny }'], guardrails: ['{ host: 10.0.0.0/9, action: deny }'], widens: [] },
  { name: 'a team deny in front of its grant removed', before: ['{ host: 10.5.0.0/16, action: deny }', '{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.0.0.0/8, action: allow }'], widens: [/let team sre reach 10\.5\.0\.0\/16 on every port through this rule: the deny that came before it \(policies\/sre\.yaml:3\) is gone/] },
  { name: 'a team deny moved after its grant', before: ['{ host: 10.5.0.0/16, action: deny }', '{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.0.0.0/8, action: allow }', '{ host: 10.5.0.0/16, action: deny }'], widens: [/the deny that came before it/] },
  { name: 'a team deny kept in front (and widened)', before: ['{ host: 10.5.0.0/16, action: deny }', '{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.4.0.0/15, action: deny }', '{ host: 10.0.0.0/8, action: allow }'], widens: [] },
  { name: 'a team deny on other ports removed', before: ['{ host: 10.5.0.0/16, action: deny, ports: [22] }', '{ host: 10.0.0.0/8, action: allow, ports: [443] }'], after: ['{ host: 10.0.0.0/8, action: allow, ports: [443] }'], widens: [] },
  { name: 'the same grants (reordered, redescribed)', before: ['{ host: 10.20.0.0/16, action: allow }', '{ host: 192.168.0.10, action: direct }'], after: ['{ host: 192.168.0.10, action: direct, description: db }', '{ host: 10.20.0.0/16, action: allow }'], widens: [] },
  { name: 'narrower range and fewer ports', before: ['{ host: 10.0.0.0/8, action: allow }'], after: ['{ host: 10.20.0.0/16, action: allow, ports: [443] }'], widens: [] },
  { name: 'a grant removed', before: ['{ host: 10.0.0.0/8, action: allow }'], after: [], widens: [] },
  { name: 'a public address added', before: [], after: ['{ host: 8.8.8.0/24, action: allow }', '{ host: "*.example.com", action: allow }'], widens: [] },
];

for (const c of cases) {
  t.test(`nonPublicWidening: ${c.name}`, async (t) => {
    const problems = nonPublicWidening(set(c.before, [], c.guardrailsBefore), set(c.after, c.afterWeb ?? [], c.guardrails));
    t.equal(problems.length, c.widens.length, `${c.widens.length} problem(s)`);
    c.widens.forEach((re, i) => t.match(problems[i]?.message ?? '', re));
    for (const p of problems) {
      t.match(formatProblem(p), /^policies\/(sre|web|_org)\.yaml:\d+:1: this change /, 'at the rule, with file:line:col');
      t.match(p.message, /restart the gateway to apply it, or set policy_reload\.allow_non_public: true/, 'says how to apply it on purpose');
    }
  });
}

t.test('helpers (table): port coverage, rule positions, built-in ranges', async (t) => {
  const ports: Array<[ReadonlySet<number> | null, ReadonlySet<number> | null, boolean]> = [
    [null, null, true], [null, new Set([22]), true], [new Set([443]), null, false],
    [new Set([80, 443]), new Set([443]), true], [new Set([443]), new Set([443, 8443]), false],
  ];
  for (const [a, b, want] of ports) t.equal(portsCover(a, b), want, `${a ? [...a].join('+') : 'every'} covers ${b ? [...b].join('+') : 'every'}: ${want}`);
  t.same(position('policies/sre.yaml:14'), { file: 'policies/sre.yaml', line: 14 });
  t.same(position('policies/odd'), { file: 'policies/odd', line: 1 }, 'an id without a line points at the file');
  t.throws(() => cidrs(['10.0.0.0/33']), /bad built-in range 10\.0\.0\.0\/33/, 'a bad built-in range fails loudly');
  t.throws(() => cidrs(['not-an-address']), /bad built-in range/);
});

t.test('nonPublicWidening: team denies against other teams, ports that overlap, a team removed', async (t) => {
  const denyFirst = ['{ host: 10.5.0.0/16, action: deny, ports: [443] }', '{ host: 10.0.0.0/8, action: allow, ports: [443] }'];
  t.match(nonPublicWidening(set(denyFirst), set(['{ host: 10.0.0.0/8, action: allow, ports: [443] }'])).map((p) => p.message).join('\n'),
    /reach 10\.5\.0\.0\/16 on port 443 through this rule/, 'a deny on the grant\'s own port removed');
  t.same(nonPublicWidening(set(denyFirst, ['{ host: 10.9.0.0/16, action: allow }']), set(denyFirst, ['{ host: 10.9.0.0/16, action: allow }'])), [], 'sre\'s deny says nothing about web\'s grant');
  const withoutWeb = mustCompileTexts({ org: 'organization: X\nteams:\n  sre: { name: SRE, idp_groups: [sre] }\n', teams: { sre: team(...denyFirst).replace('team: x', 'team: sre') } });
  t.same(nonPublicWidening(set(denyFirst, ['{ host: 10.6.0.0/16, action: deny }', '{ host: 10.0.0.0/8, action: allow }']), withoutWeb), [], 'a team removed widens nothing');
});
