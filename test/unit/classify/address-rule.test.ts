import t from 'tap';
import { validateAddressRule } from '../../../src/classify/address-rule.ts';
import { cidrContains, parseIp, type ParsedIp } from '../../../src/classify/ip-address.ts';

function ip(s: string): ParsedIp {
  const r = parseIp(s);
  if (r === null) throw new Error(`test address ${s} does not parse`);
  return r;
}

t.test('accepts IPs and CIDR ranges in canonical text', async (t) => {
  const cases: [string, string][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['192.168.1.5', '192.168.1.5/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00::/8', 'fd00::/8'],
    ['FD00:EC2::254', 'fd00:ec2::254/128'],
    ['[::1]', '::1/128'],
    ['::/0', '::/0'],
    ['::/80', '::/80'],
  ];
  for (const [rule, text] of cases) {
    const r = validateAddressRule(rule);
    t.equal(r.ok && r.text, text, rule);
  }
});

t.test('refuses with a message that gives the fix', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /needs an IP address/],
    ['[]', /not an IP address/],
    ['10/8', /dotted decimal/],
    ['0x7f.1', /dotted decimal/],
    ['010.0.0.0/8', /dotted decimal/],
    ['10.0.0.0/33', /decimal from 0 to 32/],
    ['fd00::/129', /decimal from 0 to 128/],
    ['10.0.0.0/', /bad prefix length/],
    ['fd00::g/8', /not an IP address/],
    ['example.com', /not an IP address or CIDR/],
    ['10.1.2.3/16', /write "10\.1\.0\.0\/16"/],
    ['fe80::1/10', /write "fe80::\/10"/],
    ['::ffff:0:0/96', /write the IPv4 rule "0\.0\.0\.0\/0"/],
    ['::ffff:10.0.0.0/104', /write the IPv4 rule "10\.0\.0\.0\/8"/],
    ['::ffff:127.0.0.1', /write the IPv4 rule "127\.0\.0\.1\/32"/],
  ];
  for (const [rule, message] of cases) {
    const r = validateAddressRule(rule);
    t.equal(r.ok, false, rule);
    if (!r.ok) t.match(r.message, message, rule);
  }
});

t.test('security case 2.18: allow/deny ranges and the mapped block', async (t) => {
  const rule = (s: string) => {
    const r = validateAddressRule(s);
    if (!r.ok) throw new Error(r.message);
    return r.cidr;
  };
  const allowMirror = rule('192.168.0.0/16');
  const denyHost = rule('192.168.1.5');
  t.equal(cidrContains(allowMirror, ip('192.168.1.5')), true);
  t.equal(cidrContains(denyHost, ip('192.168.1.5')), true, 'the narrower deny matches too');
  t.equal(cidrContains(denyHost, ip('::ffff:192.168.1.5')), true, 'mapped spelling is the same address');
  const deny = rule('10.1.2.0/24');
  t.equal(cidrContains(deny, ip('10.1.2.3')), true);
  t.equal(cidrContains(deny, ip('10.1.3.3')), false);
  t.equal(cidrContains(rule('10.1.0.0/16'), ip('10.1.3.3')), true);
  const wide = rule('::/0');
  t.equal(cidrContains(wide, ip('1.2.3.4')), false, 'an IPv6 range never matches IPv4');
  t.equal(cidrContains(wide, ip('::ffff:1.2.3.4')), false);
});
