// Upstream trust pinned by org.yaml connections: which CA files pin a host (pure), what a CA file
// must hold, start-up errors and reload behaviour of the trust holder, and pools that never share
// a connection verified with one trust for a request that needs another.
import t from 'tap';
import { TollgateError } from '../../../src/errors.ts';
import type { Connection, OrgConfig, Project } from '../../../src/policy/types.ts';
import { pemCertificateBlocks, pinnedCaEntries, pinnedCaFilesFor } from '../../../src/upstream/connection-ca.ts';
import { createConnectionTrust } from '../../../src/upstream/connection-trust.ts';
import { createUpstreamPools } from '../../../src/upstream/upstream-pools.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

function orgWith(projects: Record<string, Array<Partial<Connection> & { name: string; hosts: string[] }>>): Pick<OrgConfig, 'projects'> {
  const map = new Map<string, Project>();
  for (const [key, conns] of Object.entries(projects)) {
    map.set(key, { key, name: key, connections: conns.map((c) => ({ kind: undefined, ca: undefined, account: undefined, ...c })) } as Project);
  }
  return { projects: map };
}

const org = orgWith({
  production: [
    { name: 'eks', kind: 'kubernetes', hosts: ['*.gr7.eu-west-1.eks.amazonaws.com'], ca: 'certs/prod.pem' },
    { name: 'aws', kind: 'aws', hosts: ['*.eu-west-1.amazonaws.com'] },
    { name: 'onprem', hosts: ['10.1.0.0/16'], ca: 'certs/onprem.pem' },
  ],
  staging: [
    { name: 'eks', kind: 'kubernetes', hosts: ['*.gr7.us-east-2.eks.amazonaws.com', 'shared.example.com'], ca: 'certs/staging.pem' },
    { name: 'shared', hosts: ['shared.example.com'], ca: 'certs/prod.pem' },
  ],
});

t.test('the CA files that pin a host', async (t) => {
  const entries = pinnedCaEntries(org, (ca) => `/etc/tollgate/${ca}`);
  t.same(entries.map((e) => e.label), ['production/eks', 'production/onprem', 'staging/eks', 'staging/shared']);
  const table: Array<[string, string[]]> = [
    ['abc.gr7.eu-west-1.eks.amazonaws.com', ['/etc/tollgate/certs/prod.pem']],
    ['ABC.gr7.us-east-2.eks.amazonaws.com'.toLowerCase(), ['/etc/tollgate/certs/staging.pem']],
    ['ec2.eu-west-1.amazonaws.com', []],
    ['gr7.eu-west-1.eks.amazonaws.com', []],
    ['10.1.2.3', ['/etc/tollgate/certs/onprem.pem']],
    ['10.2.0.1', []],
    ['shared.example.com', ['/etc/tollgate/certs/prod.pem', '/etc/tollgate/certs/staging.pem']],
    ['api.github.com', []],
  ];
  for (const [host, files] of table) t.same(pinnedCaFilesFor(entries, host), files, host);
});

t.test('a CA file holds PEM certificates (comments allowed), never a key', async (t) => {
  const ca = (await makeTestCa()).caPem;
  const two = pemCertificateBlocks(`# the cluster CA\n${ca}\n${ca.replace(/\n/g, '\r\n')}`);
  t.ok(two.ok);
  if (two.ok) t.same(two.blocks, [ca, ca]);
  t.match(pemCertificateBlocks('hello'), { ok: false, problem: /not a PEM certificate file/ });
  t.match(pemCertificateBlocks(`${ca}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`), { ok: false, problem: /private key/ });
});

t.test('start-up: an unreadable, missing or non-PEM CA file is a config error naming it; a good one pins its hosts', async (t) => {
  const ca = (await makeTestCa()).caPem;
  const files: Record<string, string> = { '/o/certs/prod.pem': ca, '/o/certs/staging.pem': 'garbage', '/o/certs/onprem.pem': ca };
  const read = (f: string) => {
    if (f === '/o/certs/prod.pem' && files[f] === undefined) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
    if (!(f in files)) throw Object.assign(new Error('denied'), { code: 'EACCES' });
    return files[f] as string;
  };
  const trust = createConnectionTrust({ orgDir: '/o', read });
  const err = t.throws(() => trust.load(org)) as TollgateError;
  t.equal(err.code, 'TOLLGATE_ERR_CONFIG_INVALID');
  t.match(err.message, /connection staging\/eks: ca: certs\/staging\.pem: not a PEM certificate file/);
  files['/o/certs/staging.pem'] = ca;
  trust.load(org);
  const prod = trust.choose('abc.gr7.eu-west-1.eks.amazonaws.com');
  t.ok(prod?.context, 'a TLS context of the connection CA');
  t.match(prod?.key, /^pinned:/);
  t.equal(trust.choose('api.github.com'), undefined, 'other hosts use the default trust');
  t.equal(trust.choose('abc.gr7.eu-west-1.eks.amazonaws.com')?.context, prod?.context, 'contexts are reused');
  t.not(trust.choose('shared.example.com')?.key, prod?.key, 'two CAs together are another trust');

  t.test('reload: a file that became unreadable keeps its last good CA; a new unreadable one fails closed', async (t) => {
    delete files['/o/certs/prod.pem'];
    const problems = trust.reload(org);
    t.match(problems, [/certs\/prod\.pem: file not found/]);
    t.equal(trust.choose('abc.gr7.eu-west-1.eks.amazonaws.com')?.key, prod?.key, 'still pinned to the last good CA');
    const bigger = orgWith({ p: [{ name: 'new', hosts: ['new.example.com'], ca: 'certs/new.pem' }] });
    t.match(trust.reload(bigger), [/connection p\/new: ca: certs\/new\.pem: cannot read the file \(EACCES\)/]);
    const failed = trust.choose('new.example.com');
    t.ok(failed?.failure, 'no public roots for a host whose connection CA is not loaded');
    t.equal(failed?.context, undefined);
  });
});

t.test('pools: one per trust, so a pinned host never reuses a connection verified with the default trust', async (t) => {
  let pinned = false;
  const pools = createUpstreamPools({
    connectTimeoutMs: 1000, trust: undefined, upstreamProxy: undefined, headersTimeoutMs: 1000, bodyTimeoutMs: 1000,
    pinnedTrust: () => (pinned ? { key: 'pinned:abc', context: undefined } : undefined),
  });
  t.teardown(() => pools.close());
  const target = { address: '127.0.0.1', port: 443, servername: 'k8s.example.com', tls: true };
  const before = pools.poolFor(target);
  t.equal(pools.poolFor(target), before, 'same trust, same pool');
  pinned = true;
  const after = pools.poolFor(target);
  t.not(after, before, 'another trust, another pool');
  t.equal(pools.size(), 2);
  t.equal(pools.poolFor({ ...target, tls: false }), pools.poolFor({ ...target, tls: false }), 'plain http needs no trust');
});
