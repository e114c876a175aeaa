import t from 'tap';
import {
  canonicalIp,
  cidrContains,
  cidrFromParts,
  cidrPartsAligned,
  formatCidr,
  formatIp,
  formatIPv4,
  formatIPv6,
  inspectIPv4,
  isIPv4Mapped,
  parseCidr,
  parseCidrParts,
  parseDottedQuad,
  parseIp,
  parseIPv4,
  parseIPv6,
  readUint32,
  type ParsedIp,
} from '../../../src/classify/ip-address.ts';

function ip(s: string): ParsedIp {
  const r = parseIp(s);
  if (r === null) throw new Error(`test address ${s} does not parse`);
  return r;
}

t.test('parseIPv4: WHATWG notations (security case 2.02)', async (t) => {
  const cases: [string, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F000001', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['0.0.0.0', '0.0.0.0'],
    ['169.254.169.254.', '169.254.169.254'],
    ['0251.0376.0251.0376', '169.254.169.254'],
    ['012.0.0.1', '10.0.0.1'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
    ['4294967295', '255.255.255.255'],
    ['255.16777215', '255.255.255.255'],
    ['00000000000000000000000001', '0.0.0.1'],
    ['1.2.3.4', '1.2.3.4'],
  ];
  for (const [input, want] of cases) {
    const v = parseIPv4(input);
    t.equal(v === null ? null : formatIPv4(v), want, input);
  }
});

t.test('parseIPv4: not IPv4 (names) and invalid numerics both give null', async (t) => {
  for (const input of [
    'example.com', 'localhost', '', '.', '1..', '1.2.3.4.com', 'a.b',
    '1.2.3.256', '1.2.3.999', '256.0.0.1', '1.2.3.4.5', '4294967296', '1.16777216',
    '0x100000000', '08', '0x7g.1', 'a.1', '1.2.3.4..', '1..2.3', '99999999999999999999',
  ]) {
    t.equal(parseIPv4(input), null, JSON.stringify(input));
  }
});

t.test('inspectIPv4 tells names from invalid numeric hosts', async (t) => {
  const cases: [string, 'ipv4' | 'name' | 'invalid'][] = [
    ['example.com', 'name'],
    ['1.2.3.4.com', 'name'],
    ['1..', 'name'],
    ['', 'name'],
    ['.', 'name'],
    ['a.1e5', 'name'],
    ['1.2.3.999', 'invalid'],
    ['foo.123', 'invalid'],
    ['foo.0x', 'invalid'],
    ['foo.0x1f', 'invalid'],
    ['1.2.3.4.5', 'invalid'],
    ['09.1', 'invalid'],
    ['1..2', 'invalid'],
    ['127.1', 'ipv4'],
    ['1.2.3.4.', 'ipv4'],
  ];
  for (const [input, kind] of cases) t.equal(inspectIPv4(input).kind, kind, JSON.stringify(input));
});

t.test('parseDottedQuad is strict', async (t) => {
  t.equal(parseDottedQuad('10.0.0.1'), 0x0a000001);
  t.equal(parseDottedQuad('255.255.255.255'), 0xffffffff);
  t.equal(parseDottedQuad('0.0.0.0'), 0);
  for (const bad of ['10.0.0', '10.0.0.1.', '010.0.0.1', '10.0.0.256', '1.2.3.4.5', '1234.1.1.1', '0x7f.0.0.1', '1.2.3.-4', 'a.b.c.d', '1.2.3.4 ', '']) {
    t.equal(parseDottedQuad(bad), null, JSON.stringify(bad));
  }
});

t.test('formatIPv4', async (t) => {
  t.equal(formatIPv4(0), '0.0.0.0');
  t.equal(formatIPv4(0xffffffff), '255.255.255.255');
  t.equal(formatIPv4(0xc0a80105), '192.168.1.5');
});

t.test('parseIPv6 + formatIPv6 give RFC 5952 text', async (t) => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1::', '1::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['0:0:1:0:0:0:0:0', '0:0:1::'],
    ['fe80::1', 'fe80::1'],
    ['FD00:EC2::254', 'fd00:ec2::254'],
    ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
    ['::ffff:7f00:1', '::ffff:127.0.0.1'],
    ['::FFFF:a9fe:a9fe', '::ffff:169.254.169.254'],
    ['0:0:0:0:0:ffff:0:0', '::ffff:0.0.0.0'],
    ['::1.2.3.4', '::102:304'],
    ['64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [input, want] of cases) {
    const b = parseIPv6(input);
    t.equal(b === null ? null : formatIPv6(b), want, input);
    if (b !== null) t.same(parseIPv6(formatIPv6(b)), b, `${input} round-trips`);
  }
});

t.test('parseIPv6 refuses malformed text and zone ids', async (t) => {
  for (const bad of [
    '', ':', ':::', '1:::2', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '::1:2:3:4:5:6:7:8', ':1::', '1::2:',
    '1:2:3:4:5:6:7', 'fe80::1%eth0', 'fe80::1%25eth0', '[::1]', 'g::', '::ffff:127.0.0.01', '::ffff:256.0.0.1',
    '::ffff:1.2.3', '::ffff:1.2.3.4.5', '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4', '::1a.2.3.4', '::.1.2.3', ' ::1', '::1 ',
    '0000:0000:0000:0000:0000:0000:0000:0000:0', '1:2:3:4:5:6:7:8::',
  ]) {
    t.equal(parseIPv6(bad), null, JSON.stringify(bad));
  }
});

t.test('isIPv4Mapped and readUint32', async (t) => {
  t.equal(isIPv4Mapped(parseIPv6('::ffff:1.2.3.4') as Uint8Array), true);
  t.equal(isIPv4Mapped(parseIPv6('::1.2.3.4') as Uint8Array), false);
  t.equal(isIPv4Mapped(parseIPv6('1::ffff:1.2.3.4') as Uint8Array), false);
  t.equal(isIPv4Mapped(parseIPv6('::fffe:1.2.3.4') as Uint8Array), false);
  t.equal(readUint32(parseIPv6('::ffff:255.1.2.3') as Uint8Array, 12), 0xff010203);
});

t.test('parseIp accepts both families; canonicalIp and formatIp', async (t) => {
  t.same(parseIp('0x7f.1'), { family: 4, value: 0x7f000001 });
  t.equal(parseIp('::1')?.family, 6);
  t.equal(parseIp('example.com'), null);
  t.equal(parseIp('::g'), null);
  t.equal(parseIp('1.2.3.256'), null);
  t.same(canonicalIp(ip('::ffff:10.0.0.1')), { family: 4, value: 0x0a000001 });
  const v6 = ip('::1');
  t.equal(canonicalIp(v6), v6, 'non-mapped IPv6 unchanged');
  const v4 = ip('1.2.3.4');
  t.equal(canonicalIp(v4), v4);
  t.equal(formatIp(ip('127.1')), '127.0.0.1');
  t.equal(formatIp(ip('0:0::FFFF:7f00:1')), '::ffff:127.0.0.1');
});

t.test('parseCidr', async (t) => {
  const ok: [string, string][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['192.168.1.5/32', '192.168.1.5/32'],
    ['fe80::/10', 'fe80::/10'],
    ['::/0', '::/0'],
    ['::ffff:0:0/96', '::ffff:0.0.0.0/96'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['::1/128', '::1/128'],
  ];
  for (const [input, want] of ok) {
    const c = parseCidr(input);
    t.equal(c === null ? null : formatCidr(c), want, input);
  }
  for (const bad of [
    '10.0.0.0', '10/8', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/8/8',
    '10.1.2.3/16', '010.0.0.0/8', '::/129', '::/1280', 'fe80::1/10', '::g/8', 'example.com/8', '/8', '',
  ]) {
    t.equal(parseCidr(bad), null, JSON.stringify(bad));
  }
});

t.test('parseCidrParts, cidrPartsAligned and cidrFromParts', async (t) => {
  t.same(parseCidrParts('10.1.2.3', false), { family: 4, value: 0x0a010203, prefix: 32 });
  t.equal(parseCidrParts('10.1.2.3', true), null);
  const six = parseCidrParts('fe80::1', false);
  t.equal(six?.prefix, 128);
  const p = parseCidrParts('10.1.2.3/16', true);
  if (p === null) throw new Error('parts');
  t.equal(cidrPartsAligned(p), false);
  t.equal(formatCidr(cidrFromParts(p)), '10.1.0.0/16');
  const q = parseCidrParts('2001:db8:ffff::1/35', true);
  if (q === null) throw new Error('parts');
  t.equal(cidrPartsAligned(q), false);
  t.equal(formatCidr(cidrFromParts(q)), '2001:db8:e000::/35');
});

t.test('cidrContains matches on the canonical family (security case 2.18)', async (t) => {
  const cases: [string, string, boolean][] = [
    ['192.168.0.0/16', '192.168.1.5', true],
    ['192.168.1.5/32', '192.168.1.5', true],
    ['192.168.1.5/32', '192.168.1.6', false],
    ['10.1.0.0/16', '10.1.3.3', true],
    ['10.1.2.0/24', '10.1.2.3', true],
    ['10.1.2.0/24', '10.1.3.3', false],
    ['0.0.0.0/0', '255.255.255.255', true],
    ['127.0.0.0/8', '::ffff:127.0.0.1', true],
    ['127.0.0.0/8', '::127.0.0.1', false],
    ['::ffff:0:0/96', '1.2.3.4', false],
    ['::ffff:0:0/96', '::ffff:1.2.3.4', false],
    ['::ffff:127.0.0.0/104', '::ffff:127.0.0.1', false],
    ['::/0', '::1', true],
    ['::/0', '1.2.3.4', false],
    ['::/0', '::ffff:1.2.3.4', false],
    ['1.0.0.0/8', '::1', false],
    ['fe80::/10', 'fe80::1', true],
    ['fe80::/10', 'febf:ffff::1', true],
    ['fe80::/10', 'fec0::1', false],
    ['2001:db8::/127', '2001:db8::1', true],
    ['2001:db8::/127', '2001:db8::2', false],
    ['2001:db8::/32', '2001:db9::', false],
    ['::1/128', '::1', true],
    ['::1/128', '::2', false],
  ];
  for (const [range, addr, want] of cases) {
    const c = parseCidr(range);
    if (c === null) throw new Error(range);
    t.equal(cidrContains(c, ip(addr)), want, `${range} ∋ ${addr}`);
  }
});
