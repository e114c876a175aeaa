import t from 'tap';
import { classifyAddress, classifyIPv4, isPublic, type AddressClass } from '../../../src/classify/classify-address.ts';
import { parseIp, type ParsedIp } from '../../../src/classify/ip-address.ts';
import { normalizeHost } from '../../../src/classify/normalize-host.ts';

function ip(s: string): ParsedIp {
  const r = parseIp(s);
  if (r === null) throw new Error(`test address ${s} does not parse`);
  return r;
}

t.test('IPv4 ranges', async (t) => {
  const cases: [string, AddressClass][] = [
    ['0.0.0.0', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.63.255.255', 'public'],
    ['100.64.0.1', 'cgnat'],
    ['100.100.100.200', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.0', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link_local'],
    ['169.253.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'public'],
    ['192.0.0.8', 'reserved'],
    ['192.0.1.1', 'public'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.88.98.1', 'public'],
    ['192.168.1.1', 'private'],
    ['192.169.0.1', 'public'],
    ['198.17.255.255', 'public'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.20.0.0', 'public'],
    ['198.51.100.7', 'documentation'],
    ['198.51.101.7', 'public'],
    ['203.0.113.10', 'documentation'],
    ['203.0.114.10', 'public'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.255', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.254', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['223.255.255.255', 'public'],
  ];
  for (const [addr, want] of cases) {
    t.same(classifyAddress(ip(addr)), { class: want }, addr);
    t.equal(classifyIPv4((ip(addr) as { value: number }).value), want);
  }
});

t.test('IPv6 ranges and IPv4 embedded in IPv6', async (t) => {
  const cases: [string, AddressClass, string?][] = [
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['::2', 'reserved'],
    ['::1:0:0:1', 'reserved'],
    ['fe80::1', 'link_local'],
    ['febf::1', 'link_local'],
    ['fec0::1', 'site_local'],
    ['fc00::1', 'unique_local'],
    ['fd00:ec2::254', 'unique_local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['3fff:fff::1', 'documentation'],
    ['3fff:1000::1', 'public'],
    ['2001:2::1', 'benchmarking'],
    ['2001:10::1', 'reserved'],
    ['2001:20::1', 'reserved'],
    ['2001:4860:4860::8888', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['100::1', 'discard'],
    ['100:0:0:1::1', 'reserved'],
    ['5f00::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback', '127.0.0.1'],
    ['::ffff:169.254.169.254', 'link_local', '169.254.169.254'],
    ['::ffff:8.8.8.8', 'public', '8.8.8.8'],
    ['::127.0.0.1', 'loopback', '127.0.0.1'],
    ['::8.8.8.8', 'reserved', '8.8.8.8'],
    ['::ffff:0:8.8.8.8', 'reserved', '8.8.8.8'],
    ['::ffff:0:10.0.0.1', 'private', '10.0.0.1'],
    ['64:ff9b::a9fe:a9fe', 'link_local', '169.254.169.254'],
    ['64:ff9b::7f00:1', 'loopback', '127.0.0.1'],
    ['64:ff9b::8.8.8.8', 'public', '8.8.8.8'],
    ['64:ff9b:1::a9fe:a9fe', 'link_local', '169.254.169.254'],
    ['64:ff9b:1::8.8.8.8', 'nat64', '8.8.8.8'],
    ['64:ff9b:2::1', 'reserved'],
    ['2002:a9fe:a9fe::1', 'link_local', '169.254.169.254'],
    ['2002:7f00:1::', 'loopback', '127.0.0.1'],
    ['2002:808:808::1', 'public', '8.8.8.8'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'documentation', '192.0.2.45'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback', '127.0.0.1'],
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'public', '8.8.8.8'],
    ['2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7', 'link_local', '169.254.169.254'],
  ];
  for (const [addr, want, embedded] of cases) {
    const r = classifyAddress(ip(addr));
    t.equal(r.class, want, addr);
    t.equal(r.embeddedIPv4, embedded, `${addr} embedded`);
  }
});

t.test('security case 2.01: every listed answer is non-public; control is documentation', async (t) => {
  for (const addr of [
    '127.0.0.1', '127.255.255.254', '0.0.0.0', '10.0.0.1', '172.16.0.1', '192.168.1.1', '169.254.169.254',
    '100.64.0.1', '100.100.100.200', '198.18.0.1', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1',
    'fc00::1', 'fd00:ec2::254', '::ffff:127.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe',
    '2002:a9fe:a9fe::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2',
  ]) {
    t.equal(isPublic(classifyAddress(ip(addr)).class), false, addr);
  }
  t.equal(classifyAddress(ip('203.0.113.10')).class, 'documentation', 'allowed only by an explicit rule');
});

t.test('security case 2.02: every spelling of a loopback or metadata target is non-public', async (t) => {
  for (const spelling of [
    '2130706433', '0x7f000001', '017700000001', '0177.0.0.1', '0x7f.1', '127.1', '0', '0.0.0.0',
    '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[0:0:0:0:0:0:0:1]', '127。0。0。1', '169.254.169.254.',
    '0251.0376.0251.0376', '012.0.0.1',
  ]) {
    const h = normalizeHost(spelling);
    if (!h.ok || h.kind === 'dns') {
      t.fail(`${spelling} should be an IP literal`);
      continue;
    }
    t.equal(isPublic(classifyAddress(ip(h.host)).class), false, `${spelling} → ${h.host}`);
  }
});

t.test('isPublic', async (t) => {
  const all: AddressClass[] = [
    'public', 'loopback', 'private', 'link_local', 'cgnat', 'unspecified', 'multicast', 'broadcast',
    'reserved', 'documentation', 'benchmarking', 'unique_local', 'site_local', 'nat64', 'discard',
  ];
  for (const c of all) t.equal(isPublic(c), c === 'public', c);
});
