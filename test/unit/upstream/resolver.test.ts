// The host resolver (src/upstream/resolver.ts) against a real DNS server on loopback (UDP): what
// each kind of "no addresses" answer is called, which answers are kept (positive by their TTL,
// NXDOMAIN and no-records for the negative TTL) and which never are (SERVFAIL, timeouts), and that
// one family failing leaves the other's addresses in use. The clock is the test's.
import t from 'tap';
import { RequestRefusal } from '../../../src/errors.ts';
import { createHostResolver, noAddressesRefusal } from '../../../src/upstream/resolver.ts';
import { startTestDns } from '../../helpers/dns-server.ts';

const dns = await startTestDns();
t.teardown(() => dns.close());

let clock = 1_000_000;
const make = (o: { negativeTtlMs?: number } = {}) => createHostResolver({
  upstreams: new Map([['mapped.test', { host: '127.0.0.9', port: 8443 }]]),
  servers: [{ host: '127.0.0.1', port: dns.port }],
  timeoutMs: 400,
  now: () => clock,
  ...o,
});
const queriesFor = (name: string, from: number) => dns.queries.slice(from).filter((q) => q.name === name).length;

async function refusalOf(p: Promise<unknown>): Promise<RequestRefusal> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RequestRefusal) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

t.test('the refusal names what the DNS said (table)', async (t) => {
  const cases: Array<[Parameters<typeof noAddressesRefusal>, RegExp]> = [
    [['nx.test', 'nxdomain', 'NXDOMAIN'], /^The name nx\.test does not exist \(NXDOMAIN\)\.$/],
    [['nx.test', 'nxdomain', 'ENOTFOUND'], /does not exist \(ENOTFOUND\)/],
    [['empty.test', 'nodata', 'NODATA'], /^The name empty\.test has no addresses \(no A or AAAA records\)\.$/],
  ];
  for (const [args, want] of cases) {
    const r = noAddressesRefusal(...args);
    t.equal(r.reason, 'dns_error', `${args.join(' ')}: dns_error`);
    t.equal(r.status, 502, `${args.join(' ')}: 502`);
    t.match(r.publicMessage, want, `${args.join(' ')}: ${want}`);
    t.match(r.detail, /^DNS lookup of /, `${args.join(' ')}: the audit detail names the lookup`);
  }
});

t.test('NXDOMAIN: "does not exist", kept for the negative TTL, then asked again', async (t) => {
  const r = make();
  const mark = dns.queries.length;
  const first = await refusalOf(r.resolve('nowhere.test', 'dns', 443));
  t.match(first.publicMessage, /nowhere\.test does not exist \(NXDOMAIN\)/);
  t.equal(queriesFor('nowhere.test', mark), 2, 'one A and one AAAA query');
  clock += 4_000;
  const again = await refusalOf(r.resolve('nowhere.test', 'dns', 443));
  t.match(again.publicMessage, /does not exist/, 'the same answer within 5 s');
  t.not(again, first, 'a fresh refusal object each time');
  t.equal(queriesFor('nowhere.test', mark), 2, 'without asking the server again');
  clock += 1_500;
  dns.records.set('nowhere.test', ['127.0.0.5']);
  t.same((await r.resolve('nowhere.test', 'dns', 443)).addresses, ['127.0.0.5'], 'after the negative TTL the name is asked again, and now resolves');
  t.equal(queriesFor('nowhere.test', mark), 4);
  dns.records.delete('nowhere.test');
});

t.test('no A or AAAA records: "has no addresses", kept like NXDOMAIN', async (t) => {
  dns.records.set('empty.test', []);
  const r = make();
  const mark = dns.queries.length;
  t.match((await refusalOf(r.resolve('empty.test', 'dns', 443))).publicMessage, /empty\.test has no addresses \(no A or AAAA records\)/);
  await refusalOf(r.resolve('empty.test', 'dns', 443));
  t.equal(queriesFor('empty.test', mark), 2, 'the second request asked nothing');
});

t.test('negativeTtlMs 0 keeps nothing', async (t) => {
  const r = make({ negativeTtlMs: 0 });
  const mark = dns.queries.length;
  await refusalOf(r.resolve('nowhere0.test', 'dns', 443));
  await refusalOf(r.resolve('nowhere0.test', 'dns', 443));
  t.equal(queriesFor('nowhere0.test', mark), 4, 'each request asks');
});

t.test('SERVFAIL and timeouts are never kept', async (t) => {
  dns.records.set('broken.test', 'servfail');
  dns.records.set('silent.test', 'timeout');
  const r = make();
  const mark = dns.queries.length;
  const a = await refusalOf(r.resolve('broken.test', 'dns', 443));
  t.match(a.publicMessage, /broken\.test could not be resolved \(ESERVFAIL\)/);
  await refusalOf(r.resolve('broken.test', 'dns', 443));
  t.equal(queriesFor('broken.test', mark), 4, 'the second request asked again');
  const b = await refusalOf(r.resolve('silent.test', 'dns', 443));
  t.match(b.publicMessage, /silent\.test could not be resolved \(ETIMEOUT\)/);
  dns.records.set('broken.test', ['127.0.0.7']);
  t.same((await r.resolve('broken.test', 'dns', 443)).addresses, ['127.0.0.7'], 'a server that recovers is used at once');
  dns.records.delete('broken.test');
  dns.records.delete('silent.test');
});

t.test('one family failing leaves the other in use; an NXDOMAIN for one family only is not "does not exist"', async (t) => {
  dns.records.set('v4only.test', { A: ['127.0.0.3'], AAAA: 'servfail' });
  const r = make();
  t.same((await r.resolve('v4only.test', 'dns', 443)).addresses, ['127.0.0.3']);
  dns.records.set('v6only.test', { AAAA: ['::1'] });
  t.same((await r.resolve('v6only.test', 'dns', 443)).addresses, ['::1'], 'an empty A answer and an AAAA record');
});

t.test('literals and upstreams: overrides ask no DNS server', async (t) => {
  const r = make();
  const mark = dns.queries.length;
  t.same(await r.resolve('127.0.0.1', 'ipv4', 80), { addresses: ['127.0.0.1'], source: 'literal', port: 80 });
  t.same(await r.resolve('mapped.test', 'dns', 443), { addresses: ['127.0.0.9'], source: 'override', port: 8443 });
  t.equal(dns.queries.length, mark, 'no queries');
});
