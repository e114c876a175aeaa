// The kubeconfig of `tollgate setup kubectl` (pure): one cluster and context per kubernetes
// connection with a server, the proxy URL and Tollgate's CA, a placeholder user; merged into an
// existing file without losing its other entries; shapes it refuses. And org.yaml's `server:`.
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { connectionServerProblem, parseOrgConfig } from '../../../src/config/org-config.ts';
import { Document } from 'yaml';
import { KUBECONFIG_YAML, KubeconfigShapeError, kubeconfigEntries, mergeKubeconfigDocument, type KubeEntries } from '../../../src/onboarding/kubeconfig.ts';

/** The merge on a parsed kubeconfig (plain data), read back as plain data. */
function mergeKubeconfig(existing: unknown, entries: KubeEntries): { config: Record<string, unknown>; changes: string[] } {
  const doc = new Document(existing ?? null, KUBECONFIG_YAML);
  const changes = mergeKubeconfigDocument(doc, entries);
  return { config: doc.toJS() as Record<string, unknown>, changes };
}

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const PROXY = 'http://sre.production:tok3n@gw.internal:3128';
const input = {
  project: 'production',
  proxyUrl: PROXY,
  caPem: CA,
  connections: [
    { name: 'eks', kind: 'kubernetes', server: 'https://prod.gr7.eu-west-1.eks.amazonaws.com' },
    { name: 'aws', kind: 'aws' },
    { name: 'old-cluster', kind: 'kubernetes' },
    { name: 'gke', kind: 'kubernetes', server: 'https://10.0.0.9:443' },
  ],
};

t.test('entries: kubernetes connections with a server only; proxy-url, CA data, placeholder user', async (t) => {
  const e = kubeconfigEntries(input);
  t.same(e.clusters, [
    { name: 'tollgate-production-eks', cluster: { server: 'https://prod.gr7.eu-west-1.eks.amazonaws.com', 'certificate-authority-data': Buffer.from(CA).toString('base64'), 'proxy-url': PROXY } },
    { name: 'tollgate-production-gke', cluster: { server: 'https://10.0.0.9:443', 'certificate-authority-data': Buffer.from(CA).toString('base64'), 'proxy-url': PROXY } },
  ]);
  t.same(e.contexts.map((c) => c['context']), [{ cluster: 'tollgate-production-eks', user: 'tollgate' }, { cluster: 'tollgate-production-gke', user: 'tollgate' }]);
  t.same(e.users, [{ name: 'tollgate', user: { token: 'tollgate-placeholder' } }], 'no credential: the gateway swaps the placeholder for the bound token');
  t.same(e.skipped.map((s) => s.connection), ['old-cluster']);
  t.match(e.skipped[0]!.reason, /no server:/);
  t.same(kubeconfigEntries({ ...input, connections: [{ name: 'x', kind: 'kubernetes' }] }).users, [], 'no user entry without a cluster');
});

t.test('merge: keeps other entries and settings, replaces ours, sets the current context', async (t) => {
  const e = kubeconfigEntries(input);
  const cases: Array<[string, unknown, (t: Test, m: ReturnType<typeof mergeKubeconfig>) => void]> = [
    ['no file', undefined, (t, m) => {
      t.equal(m.config['apiVersion'], 'v1');
      t.equal(m.config['kind'], 'Config');
      t.equal(m.config['current-context'], 'tollgate-production-eks');
      t.same(m.changes, ['added cluster and context tollgate-production-eks (https://prod.gr7.eu-west-1.eks.amazonaws.com)', 'added cluster and context tollgate-production-gke (https://10.0.0.9:443)', 'current-context = tollgate-production-eks']);
    }],
    ['an existing kubeconfig', {
      apiVersion: 'v1', kind: 'Config', preferences: { colors: true }, 'current-context': 'minikube',
      clusters: [{ name: 'minikube', cluster: { server: 'https://192.168.49.2:8443' } }, { name: 'tollgate-production-eks', cluster: { server: 'https://stale' } }],
      contexts: [{ name: 'minikube', context: { cluster: 'minikube', user: 'minikube' } }],
      users: [{ name: 'minikube', user: { 'client-certificate': '/m.crt' } }],
    }, (t, m) => {
      t.same((m.config['clusters'] as Array<{ name: string }>).map((c) => c.name), ['minikube', 'tollgate-production-eks', 'tollgate-production-gke']);
      t.same((m.config['users'] as Array<{ name: string }>).map((c) => c.name), ['minikube', 'tollgate']);
      t.same(m.config['preferences'], { colors: true });
      t.equal(m.config['current-context'], 'tollgate-production-eks');
      t.match(m.changes[0], /^replaced cluster and context tollgate-production-eks/);
      t.notOk(JSON.stringify(m.config).includes('https://stale'));
    }],
    ['lists written as null', { clusters: null, contexts: null, users: null }, (t, m) => {
      t.equal((m.config['clusters'] as unknown[]).length, 2);
    }],
  ];
  for (const [name, existing, check] of cases) t.test(name, async (t) => check(t, mergeKubeconfig(existing, e)));
  const again = mergeKubeconfig(mergeKubeconfig(undefined, e).config, e);
  t.notOk(again.changes.some((c) => c.startsWith('current-context')), 'no current-context change when it is already ours');
});

t.test('merge refuses what is not a kubeconfig (the file is then left alone)', async (t) => {
  const e = kubeconfigEntries(input);
  for (const [name, bad] of [
    ['a list', [1, 2]], ['a string', 'hello'], ['another kind', { kind: 'Pod' }],
    ['clusters not a list', { clusters: { a: 1 } }], ['an entry without a name', { users: [{ user: {} }] }],
  ] as const) {
    t.throws(() => mergeKubeconfig(bad, e), KubeconfigShapeError, name);
  }
});

t.test('the YAML round-trips', async (t) => {
  const m = mergeKubeconfig(undefined, kubeconfigEntries(input));
  const { stringify } = await import('yaml');
  t.same(parse(stringify(m.config, { lineWidth: 0 })), m.config);
});

t.test('org.yaml server: https URL whose host is one of the connection\'s hosts', async (t) => {
  const hosts = ['*.gr7.eu-west-1.eks.amazonaws.com', '10.0.0.0/24', 'k8s.internal.example', 'fd00::1'];
  const table: Array<[string, RegExp | null]> = [
    ['https://prod.gr7.eu-west-1.eks.amazonaws.com', null],
    ['https://PROD.gr7.eu-west-1.eks.amazonaws.com.', null],
    ['https://10.0.0.9', null],
    ['https://k8s.internal.example:443', null],
    ['https://10.0.0.9:6443', /port 6443, but the gateway sends credentials only over https on port 443 .*credential_insecure.*write https:\/\/10\.0\.0\.9 and.*upstreams: \{ 10\.0\.0\.9: <address>:6443 \}/],
    ['https://k8s.internal.example:6443/k8s', /write https:\/\/k8s\.internal\.example\/k8s and.*upstreams: \{ k8s\.internal\.example: <address>:6443 \}/],
    ['https://[fd00::1]', null],
    ['https://[fd00::1]:443', null],
    ['https://[fd00::1]:6443', /write https:\/\/\[fd00::1\] and.*upstreams: \{ fd00::1: <address>:6443 \}/],
    ['https://[fd00::2]', /^server host fd00::2 is not one of/],
    ['https://k8s.internal.example/k8s/clusters/c-1', null],
    ['http://prod.gr7.eu-west-1.eks.amazonaws.com', /must use https/],
    ['https://admin:pw@k8s.internal.example', /must not carry credentials/],
    ['https://k8s.internal.example/?x=1', /query or fragment/],
    ['https://gr7.eu-west-1.eks.amazonaws.com', /not one of this connection's hosts/],
    ['https://10.0.1.9', /not one of this connection's hosts/],
    ['https://evil.example', /not one of this connection's hosts/],
    ['not a url', /not a URL/],
  ];
  for (const [server, expected] of table) {
    const p = connectionServerProblem(server, hosts);
    if (expected === null) t.equal(p, null, server);
    else t.match(p, expected, server);
  }
});

t.test('org.yaml: server: is checked where it is written', async (t) => {
  const org = (conn: string) => `organization: X\nprojects:\n  p:\n    name: P\n    connections:\n      - ${conn}\nteams:\n  a: { name: A, idp_groups: [a] }\n`;
  for (const server of ['https://k.example.com', 'https://k.example.com:443', 'https://k.example.com/k8s/clusters/c-1']) {
    const ok = parseOrgConfig('org.yaml', org(`{ name: k, kind: kubernetes, hosts: [k.example.com], server: "${server}" }`));
    t.ok(ok.ok, server);
    if (ok.ok) t.equal(ok.parsed.org.projects.get('p')?.connections[0]?.server, server, `${server} is kept as written`);
  }
  const cases: Array<[string, RegExp]> = [
    ['{ name: k, kind: kubernetes, hosts: [k.example.com], server: "https://other.example.com" }', /^org\.yaml:6:\d+: server host other\.example\.com is not one of/],
    ['{ name: k, kind: aws, hosts: [k.example.com], server: "https://k.example.com" }', /^org\.yaml:6:\d+: server: belongs to kind: kubernetes connections/],
    ['{ name: k, kind: kubernetes, hosts: [k.example.com], server: "k.example.com" }', /^org\.yaml:6:\d+: /],
    ['{ name: k, kind: kubernetes, hosts: [k.example.com], server: "https://k.example.com:6443" }', /^org\.yaml:6:([2-9]|\d{2,}): server "https:\/\/k\.example\.com:6443" names port 6443, but the gateway sends credentials only over https on port 443 .*credential_insecure.*write https:\/\/k\.example\.com and.*upstreams: \{ k\.example\.com: <address>:6443 \}/],
  ];
  for (const [conn, expected] of cases) {
    const r = parseOrgConfig('org.yaml', org(conn));
    t.notOk(r.ok, conn);
    if (!r.ok) t.match(`${r.problems[0]?.file}:${r.problems[0]?.line}:${r.problems[0]?.col}: ${r.problems[0]?.message}`, expected, conn);
  }
});
