// The host, address and path matchers of a policy rule, over tables: what each accepts, what it
// refuses (matched loosely on the message, to show which check fired), and how patterns match
// and cover one another.
import t from 'tap';
import { cidrCoversCidr, parseAddressRule, parseRequestIp, type ParsedCidr } from '../../../src/policy/match/address.ts';
import { hostPatternCovers, hostPatternMatches, multiTenantSuffixOf, parseHostPattern } from '../../../src/policy/match/host-pattern.ts';
import { compilePathGlob } from '../../../src/policy/match/path-pattern.ts';
import type { HostPattern } from '../../../src/policy/types.ts';

function pattern(text: string): HostPattern {
  const p = parseHostPattern(text);
  if (!p.ok) throw new Error(p.message);
  return p.pattern;
}
function cidr(text: string): ParsedCidr {
  const a = parseAddressRule(text);
  if (!a?.ok) throw new Error(`${text} is not an address rule`);
  return a.cidr;
}

t.test('parseHostPattern: refusals say which rule was broken', async (t) => {
  const long = `${'a'.repeat(60)}.`.repeat(5) + 'com';
  const cases: [string, RegExp][] = [
    ['*..', /names no host/],
    [`*.${long}`, /longer than 253/],
    [long, /longer than 253/],
    ['bücher.example', /not ASCII.*\(xn--bcher-kva\.example\)/],
    ['*.bücher.example', /not ASCII.*\(\*\.xn--bcher-kva\.example\)/],
    ['bü<cher.example', /not ASCII; write internationalised names in punycode$/],
    ['exa mple.com', /not a valid host name \(label "exa mple"\)/],
    ['-a.example.com', /label "-a"/],
    ['a..example.com', /label ""/],
    ['service.123', /non-canonical notation/],
    ['intranet.0x1f', /non-canonical notation/],
    ['*.*.example.com', /only one leading/],
    ['*.Example.com', /must be lower case/],
    ['*.com', /top-level domain/],
  ];
  for (const [text, message] of cases) {
    const p = parseHostPattern(text);
    t.equal(p.ok, false, text);
    if (!p.ok) t.match(p.message, message, text);
  }
});

t.test('parseAddressRule: forms, refusals and hints', async (t) => {
  const ok: [string, boolean, string][] = [
    ['[::1]', true, '::1/128'],
    ['[2001:db8::]/32', false, '2001:db8::/32'],
    ['10.0.0.0/8', false, '10.0.0.0/8'],
  ];
  for (const [text, single, want] of ok) {
    const a = parseAddressRule(text);
    t.match(a, { ok: true, single }, text);
    const p = pattern(text);
    t.equal(p.kind, single ? 'ip' : 'cidr', text);
    if (a?.ok) t.ok(cidrCoversCidr(a.cidr, cidr(want)) && cidrCoversCidr(cidr(want), a.cidr), `${text} is ${want}`);
  }
  const refused: [string, RegExp][] = [
    ['10.1.1', /canonical form.* — write it as 10\.1\.0\.1$/],
    ['10.1.1/24', /canonical form.* — write it as 10\.1\.0\.1$/],
    ['999.1.1.1', /canonical form \(dotted-quad IPv4 such as 10\.1\.0\.0\/16, or IPv6\)$/],
    ['10.1.2.3/16', /did you mean 10\.1\.0\.0\/16\?/],
    ['2001:db8::1/32', /did you mean 2001:db8::\/32\?/],
    ['2001:db8:ffff:ffff::/33', /did you mean 2001:db8:8000::\/33\?/],
    ['::ffff:10.0.0.0/104', /IPv4-mapped/],
  ];
  for (const [text, message] of refused) {
    const a = parseAddressRule(text);
    t.equal(a?.ok, false, text);
    if (a && !a.ok) t.match(a.message, message, text);
  }
  t.equal(parseAddressRule('api.example.com'), null, 'a name is not an address rule');
});

t.test('address coverage across families, and request hosts in brackets', async (t) => {
  const cases: [string, string, boolean][] = [
    ['2001:db8::/32', '2001:db8:1::/48', true],
    ['2001:db8::/32', '2001:db9::/48', false],
    ['2001:db8:1::/48', '2001:db8::/32', false],
    ['10.0.0.0/8', '2001:db8::/32', false],
    ['10.0.0.0/8', '10.1.0.0/16', true],
  ];
  for (const [outer, inner, want] of cases) t.equal(cidrCoversCidr(cidr(outer), cidr(inner)), want, `${outer} ⊇ ${inner}`);
  t.same(parseRequestIp('[2001:db8::1]'), parseRequestIp('2001:db8::1'));
  t.not(parseRequestIp('[2001:db8::1]'), null);
  t.equal(parseRequestIp('api.example.com'), null);
});

t.test('the "*" pattern: matches, covers and is multi-tenant', async (t) => {
  const any = pattern('*');
  const exact = pattern('api.example.com');
  t.ok(hostPatternMatches(any, 'anything.example', null));
  t.ok(hostPatternMatches(any, '10.0.0.1', parseRequestIp('10.0.0.1')));
  t.ok(hostPatternCovers(any, exact), '* covers a name');
  t.ok(hostPatternCovers(any, any), '* covers itself');
  t.notOk(hostPatternCovers(exact, any), 'a name does not cover *');
  t.notOk(hostPatternCovers(pattern('*.example.com'), any));
  t.equal(multiTenantSuffixOf(any), '*');
  t.equal(multiTenantSuffixOf(exact), undefined);
  t.equal(multiTenantSuffixOf(pattern('*.s3.amazonaws.com')), 'amazonaws.com');
  t.equal(multiTenantSuffixOf(pattern('*.example.com')), undefined);
});

t.test('compilePathGlob: refusals', async (t) => {
  const cases: [string, RegExp][] = [
    ['v1/**', /must start with "\/"/],
    ['/v1?x=1', /contains "\?"/],
    ['/v1#top', /contains "#"/],
    ['/v1\\a', /backslash/],
    ['/v1/a b', /space or control character/],
    ['/v1/\x7f', /space or control character/],
    ['/v1/\t', /space or control character/],
    ['/v1/a**', /whole segment/],
    ['/v1/../a', /dot segment/],
    ['/v1/%41', /percent-encodes an unreserved/],
  ];
  for (const [glob, message] of cases) {
    const r = compilePathGlob(glob);
    t.equal(r.ok, false, JSON.stringify(glob));
    if (!r.ok) t.match(r.message, message, JSON.stringify(glob));
  }
});
