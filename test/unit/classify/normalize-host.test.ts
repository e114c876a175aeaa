import t from 'tap';
import { validateAddressRule as fromAddressRule } from '../../../src/classify/address-rule.ts';
import {
  hostMatchesGlob,
  normalizeHost,
  validateAddressRule,
  validateHostGlob,
  type HostKind,
} from '../../../src/classify/normalize-host.ts';

const OK: [string, string, HostKind][] = [
  // case and trailing dot (2.06)
  ['api.github.com', 'api.github.com', 'dns'],
  ['API.GITHUB.COM', 'api.github.com', 'dns'],
  ['Api.GitHub.com', 'api.github.com', 'dns'],
  ['api.github.com.', 'api.github.com', 'dns'],
  ['localhost', 'localhost', 'dns'],
  ['LOCALHOST', 'localhost', 'dns'],
  ['localhost.', 'localhost', 'dns'],
  ['_dmarc.example.com', '_dmarc.example.com', 'dns'],
  ['a-b.c-d.example', 'a-b.c-d.example', 'dns'],
  ['1.2.3.4.com', '1.2.3.4.com', 'dns'],
  ['a.1e5', 'a.1e5', 'dns'],
  // IDN / UTS-46 (2.02, 2.06)
  ['ⓛocalhost', 'localhost', 'dns'],
  ['аpi.github.com', 'xn--pi-6kc.github.com', 'dns'],
  ['bücher.de', 'xn--bcher-kva.de', 'dns'],
  ['BÜCHER.DE', 'xn--bcher-kva.de', 'dns'],
  ['XN--BCHER-KVA.DE', 'xn--bcher-kva.de', 'dns'],
  ['ａｐｉ.example.com', 'api.example.com', 'dns'],
  ['example。com。', 'example.com', 'dns'],
  // IPv4 in any notation (2.02)
  ['2130706433', '127.0.0.1', 'ipv4'],
  ['0x7f000001', '127.0.0.1', 'ipv4'],
  ['017700000001', '127.0.0.1', 'ipv4'],
  ['0177.0.0.1', '127.0.0.1', 'ipv4'],
  ['0x7f.1', '127.0.0.1', 'ipv4'],
  ['0X7F.1', '127.0.0.1', 'ipv4'],
  ['127.1', '127.0.0.1', 'ipv4'],
  ['0', '0.0.0.0', 'ipv4'],
  ['0.0.0.0', '0.0.0.0', 'ipv4'],
  ['127。0。0。1', '127.0.0.1', 'ipv4'],
  ['169.254.169.254.', '169.254.169.254', 'ipv4'],
  ['0251.0376.0251.0376', '169.254.169.254', 'ipv4'],
  ['012.0.0.1', '10.0.0.1', 'ipv4'],
  // IPv6, bracketed or not, canonical and without brackets
  ['[::ffff:127.0.0.1]', '::ffff:127.0.0.1', 'ipv6'],
  ['[::ffff:7f00:1]', '::ffff:127.0.0.1', 'ipv6'],
  ['[0:0:0:0:0:0:0:1]', '::1', 'ipv6'],
  ['[2001:DB8::1]', '2001:db8::1', 'ipv6'],
  ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 'ipv6'],
  ['::1', '::1', 'ipv6'],
];

t.test('normalizeHost: canonical forms', async (t) => {
  for (const [input, host, kind] of OK) {
    t.same(normalizeHost(input), { ok: true, host, kind }, input);
  }
});

t.test('normalizeHost is idempotent', async (t) => {
  for (const [input] of OK) {
    const once = normalizeHost(input);
    if (!once.ok) throw new Error(input);
    t.same(normalizeHost(once.host), once, `${input} → ${once.host}`);
  }
});

t.test('normalizeHost: refusals', async (t) => {
  const label63 = 'a'.repeat(63);
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['.', /empty/],
    ['a'.repeat(2000), /too long/],
    ['api.github.com@evil.test', /userinfo/],
    ['user:pw@evil.test', /userinfo/],
    ['api.github.com\\evil.test', /backslash/],
    ['api.github.com%2eevil.test', /percent/],
    ['fe80::1%eth0', /zone/],
    ['[fe80::1%25eth0]', /zone/],
    ['a b.com', /whitespace/],
    ['a\tb.com', /whitespace/],
    ['a\u0000b.com', /control/],
    ['a\u007fb.com', /control/],
    ['a\u0085b.com', /control/],
    ['a\u00a0b.com', /whitespace/],
    ['a\u3000b.com', /internationalised/],
    ['example.com/x', /path/],
    ['example.com?x', /path/],
    ['example.com#x', /path/],
    ['a..b', /empty label/],
    ['.example.com', /empty label/],
    ['example.com..', /empty label/],
    [`${'a'.repeat(64)}.com`, /longer than 63/],
    [`${label63}.${label63}.${label63}.${label63}.com`, /longer than 253/],
    ['a*b.com', /"\*" is not allowed/],
    ['a!b.com', /"!" is not allowed/],
    ['exa[mple.com', /brackets/],
    ['[::1', /closed/],
    ['[1.2.3.4]', /not a valid IPv6/],
    ['[example.com]', /not a valid IPv6/],
    ['example.com:443', /not a valid IPv6/],
    ['bücher:443', /not a valid IPv6/],
    ['1.2.3.999', /not a valid IPv4/],
    ['1.2.3.256', /not a valid IPv4/],
    ['1.2.3.4.5', /not a valid IPv4/],
    ['example.123', /not a valid IPv4/],
    ['example.0x1f', /not a valid IPv4/],
    ['xn--a.com', /internationalised/],
    ['⒈.com', /internationalised/],
    ['a\u2488.com', /internationalised/],
    ['a.b\uFF0Fc', /internationalised/],
    ['a\uFF0Ab.com', /characters outside/],
    ['\uFF0A.bücher.de', /characters outside/],
    ['a\uFF01b.com', /characters outside/],
  ];
  for (const [input, message] of cases) {
    const r = normalizeHost(input);
    t.equal(r.ok, false, JSON.stringify(input));
    if (!r.ok) {
      t.equal(r.reason, 'malformed_request');
      t.match(r.message, message, JSON.stringify(input));
    }
  }
});

t.test('hostMatchesGlob: boundaries (security case 2.06)', async (t) => {
  const cases: [string, string, boolean][] = [
    ['api.github.com', 'api.github.com', true],
    ['api.github.com', '*', true],
    ['127.0.0.1', '*', true],
    ['svc.amazonaws.com', '*.amazonaws.com', true],
    ['a.b.svc.amazonaws.com', '*.amazonaws.com', true],
    ['amazonaws.com', '*.amazonaws.com', false],
    ['evilamazonaws.com', '*.amazonaws.com', false],
    ['amazonaws.com.evil.test', '*.amazonaws.com', false],
    ['s3.amazonaws.com.evil.test', '*.amazonaws.com', false],
    ['api.github.com.evil.test', 'api.github.com', false],
    ['api-github.com', 'api.github.com', false],
    ['apixgithub.com', 'api.github.com', false],
    ['xn--pi-6kc.github.com', 'api.github.com', false],
    ['github.com', 'api.github.com', false],
    ['x.api.github.com', 'api.github.com', false],
    ['anything', '*.', false],
  ];
  for (const [host, glob, want] of cases) t.equal(hostMatchesGlob(host, glob), want, `${host} ~ ${glob}`);
});

t.test('validateHostGlob accepts and canonicalises', async (t) => {
  const cases: [string, string][] = [
    ['*', '*'],
    ['api.github.com', 'api.github.com'],
    ['API.GitHub.com.', 'api.github.com'],
    ['*.amazonaws.com', '*.amazonaws.com'],
    ['*.AmazonAWS.com.', '*.amazonaws.com'],
    ['*.co.uk', '*.co.uk'],
    ['*.bücher.de', '*.xn--bcher-kva.de'],
    ['bücher.de', 'xn--bcher-kva.de'],
    ['10.0.0.1', '10.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['::1', '::1'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['localhost', 'localhost'],
  ];
  for (const [glob, want] of cases) t.same(validateHostGlob(glob), { ok: true, glob: want }, glob);
});

t.test('validateHostGlob refuses with a fix', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['*.', /names no domain/],
    ['*..', /names no domain/],
    ['*amazonaws.com', /use "\*\.amazonaws\.com" to match subdomains/],
    ['api.*.github.com', /use "\*\.github\.com"/],
    ['a*.example.com', /use "\*\.example\.com"/],
    ['*.*.example.com', /use "\*\.example\.com"/],
    ['github.*', /top-level domain/],
    ['*.*', /top-level domain/],
    ['**', /not a host glob/],
    ['**.example.com', /not a host glob/],
    ['*.com', /too broad/],
    ['*.COM.', /too broad/],
    ['*.10.0.0.1', /not IP addresses/],
    ['*.a..b', /empty label/],
    ['example.com:443', /has a port/],
    ['*.example.com:443', /has a port/],
    ['[::1]:443', /has a port/],
    ['example.com/v1', /path/],
    ['10.0.0.0/8', /address rule/],
    ['https://example.com', /URL/],
    ['user@example.com', /userinfo/],
    ['1.2.3.999', /not a valid IPv4/],
  ];
  for (const [glob, message] of cases) {
    const r = validateHostGlob(glob);
    t.equal(r.ok, false, glob);
    if (!r.ok) t.match(r.message, message, glob);
  }
});

t.test('every valid glob matches what it claims', async (t) => {
  const g = validateHostGlob('*.Example.COM');
  if (!g.ok) throw new Error('glob');
  const h = normalizeHost('API.example.com.');
  if (!h.ok) throw new Error('host');
  t.equal(hostMatchesGlob(h.host, g.glob), true);
});

t.test('validateAddressRule is re-exported here', async (t) => {
  t.equal(validateAddressRule, fromAddressRule);
});
