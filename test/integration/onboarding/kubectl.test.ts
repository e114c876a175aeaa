// `tollgate setup kubectl` and a REAL kubectl through the gateway: the kubeconfig holds no
// Kubernetes credential (a placeholder user token, proxy-url with the gateway token, Tollgate's
// CA), the gateway
// verifies the fake API server against the connection's own CA (org.yaml `ca:`) and injects the
// bound token; a secrets path is denied before anything reaches the API server; an API server with
// a certificate from another CA — one the gateway trusts for other hosts (tls.upstream_ca) — is
// refused with 502 and gets nothing; and a connection CA added by a reload is not bypassed by a
// kept-alive connection verified with the default trust.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';

const KUBECTL = (process.env['PATH'] ?? '/usr/bin').split(':').map((d) => path.join(d, 'kubectl')).find((f) => existsSync(f));
const API = 'prod.gr7.eu-west-1.eks.amazonaws.com';
const ROGUE = 'rogue.gr7.eu-west-1.eks.amazonaws.com';
const LATER = 'later.example.test';
const CLUSTER_TOKEN = 'eks-test-token-b1f0c9d8e7a6';

const clusterCa = await makeTestCa('Test EKS Cluster CA');
const otherCa = await makeTestCa('Test Upstream CA (not the cluster CA)');
const pods = { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'web-1', namespace: 'default' } }] };
const api = await startUpstream({
  tls: await clusterCa.issue([API]),
  handler: (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(pods)); },
});
const rogue = await startUpstream({ tls: await otherCa.issue([ROGUE, LATER]) });

const org = (laterCa: boolean) => [
  'organization: Test Org',
  'projects:',
  '  prod:',
  '    name: Production',
  '    connections:',
  `      - { name: eks, kind: kubernetes, hosts: ["*.gr7.eu-west-1.eks.amazonaws.com"], server: "https://${API}", ca: cluster-ca.pem }`,
  `      - { name: later, kind: other, hosts: [${LATER}]${laterCa ? ', ca: cluster-ca.pem' : ''} }`,
  'teams:',
  '  alpha: { name: Alpha, idp_groups: [alpha], policy: policies/alpha.yaml, projects: { prod: admin } }',
  '  beta: { name: Beta, idp_groups: [beta], policy: policies/beta.yaml }',
  'agents:',
  '  alpha-bot: { name: Alpha Bot, team: alpha }',
  '  beta-bot: { name: Beta Bot, team: beta }',
  '',
].join('\n');

const tg = await startTestGateway({
  upstreams: { [API]: api.port, [ROGUE]: rogue.port, [LATER]: rogue.port },
  upstreamCaPem: otherCa.caPem,
  files: {
    'org.yaml': org(false),
    'cluster-ca.pem': clusterCa.caPem,
    'secrets/eks-test-token': CLUSTER_TOKEN,
  },
  alphaRules: [
    '  - host: "*.gr7.eu-west-1.eks.amazonaws.com"',
    '    action: allow',
    '    http:',
    // the secrets rules of policies/sre.yaml
    '      - { method: "*", path: "/api/v1/**/secrets", action: deny }',
    '      - { method: "*", path: "/api/v1/**/secrets/**", action: deny }',
    '      - { method: "*", path: "/**", action: allow }',
    `  - { host: ${LATER}, action: allow }`,
  ].join('\n'),
  alphaCredentials: `  - { host: ${API}, project: prod, bearer: { secret: eks-test-token } }`,
});
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-kubectl-'));
t.teardown(async () => {
  await tg.stop();
  await Promise.all([api.close(), rogue.close()]);
  rmSync(dir, { recursive: true, force: true });
});
const kubeconfig = path.join(dir, 'kube', 'tollgate-config');
const env = {
  HOME: path.join(dir, 'home'), XDG_CONFIG_HOME: path.join(dir, 'xdg'),
  TOLLGATE_TOKEN: tg.token, TOLLGATE_PROXY: `127.0.0.1:${tg.proxyPort}`, TOLLGATE_CA_FILE: tg.caFile,
  TOLLGATE_CONFIG: path.join(tg.dir, 'tollgate.yaml'),
};

interface Kubeconfig {
  'current-context': string;
  clusters: Array<{ name: string; cluster: Record<string, string> }>;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  users: Array<{ name: string; user: Record<string, unknown> }>;
}

t.test('setup kubectl writes a kubeconfig with the proxy URL and Tollgate\'s CA, and no credential', async (t) => {
  const r = await cliInProcess(['setup', 'kubectl', '--project', 'prod', '--team', 'alpha', '--kubeconfig', kubeconfig], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `KUBECONFIG=${kubeconfig} kubectl get pods`);
  t.notMatch(r.stdout, tg.token, 'the token is not printed');
  t.equal(statSync(kubeconfig).mode & 0o777, 0o600);
  const text = readFileSync(kubeconfig, 'utf8');
  t.notMatch(text, CLUSTER_TOKEN, 'the cluster token never reaches the client');
  const kc = parseYaml(text) as Kubeconfig;
  t.same(kc.clusters.map((c) => c.name), ['tollgate-prod-eks']);
  const cluster = kc.clusters[0]!.cluster;
  t.equal(cluster['server'], `https://${API}`);
  t.equal(cluster['proxy-url'], `http://alpha.prod:${tg.token}@127.0.0.1:${tg.proxyPort}`);
  t.equal(Buffer.from(cluster['certificate-authority-data'] ?? '', 'base64').toString('utf8'), tg.caPem);
  t.same(kc.users, [{ name: 'tollgate', user: { token: 'tollgate-placeholder' } }], 'the user entry holds only the placeholder');
  t.same(kc.contexts, [{ name: 'tollgate-prod-eks', context: { cluster: 'tollgate-prod-eks', user: 'tollgate' } }]);
  t.equal(kc['current-context'], 'tollgate-prod-eks');

  writeFileSync(path.join(dir, 'broken'), 'clusters: [\n');
  const bad = await cliInProcess(['setup', 'kubectl', '--project', 'prod', '--team', 'alpha', '--kubeconfig', path.join(dir, 'broken')], env);
  t.equal(bad.code, 2);
  t.equal(readFileSync(path.join(dir, 'broken'), 'utf8'), 'clusters: [\n', 'a file that does not parse is left alone');
});

const run = promisify(execFile);
const kubectl = (args: string[]) => {
  const p = run(KUBECTL ?? 'kubectl', ['--kubeconfig', kubeconfig, '--request-timeout=10s', ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: path.join(dir, 'home') }, timeout: 20_000,
  });
  p.child.stdin?.end(); // kubectl must never wait for a prompt's answer
  return p.then((r) => ({ ...r, code: 0 }), (e: { stdout: string; stderr: string; code: number }) => ({ stdout: e.stdout, stderr: e.stderr, code: e.code }));
};

t.test('a real kubectl reaches the API server through the gateway, which injects the cluster token', { skip: KUBECTL ? false : 'kubectl is not installed (Debian: kubernetes-client)' }, async (t) => {
  const r = await kubectl(['get', '--raw', '/api/v1/namespaces/default/pods']);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), pods);
  const podsSeen = api.seen.filter((r) => r.url.startsWith('/api/v1/namespaces/default/pods'));
  t.equal(podsSeen.length, 1, 'the API server got the request (kubectl may also ask for /version)');
  for (const seen of api.seen) {
    t.equal(seen.headers['authorization'], `Bearer ${CLUSTER_TOKEN}`, `${seen.url}: the gateway replaced the placeholder with the bound token`);
    t.equal(seen.headers['proxy-authorization'], undefined);
  }
  const row = tg.exchanges().find((e) => e['host'] === API && e['path'] === '/api/v1/namespaces/default/pods');
  t.match(row, { decision: 'allow', team: 'alpha', project: 'prod', status: 200 });

  // One secret, a namespace's, every namespace's (kubectl get secrets -A), and a watch.
  for (const p of ['/api/v1/namespaces/default/secrets/db', '/api/v1/namespaces/default/secrets', '/api/v1/secrets', '/api/v1/watch/namespaces/default/secrets']) {
    const secrets = await kubectl(['get', '--raw', p]);
    t.not(secrets.code, 0, `${p}: refused`);
    t.match(secrets.stderr, /Forbidden|403/, `${p}: 403`);
  }
  t.equal(api.seen.filter((r) => r.url.includes('secrets')).length, 0, 'no denied request ever reached the API server');
});

const agent = () => new ProxyAgent({ uri: `http://alpha.prod:${tg.token}@127.0.0.1:${tg.proxyPort}`, requestTls: { ca: tg.caPem } });

t.test('an API server with a certificate from another CA is refused with 502, though that CA is trusted elsewhere', async (t) => {
  const dispatcher = agent();
  t.teardown(() => dispatcher.close());
  const res = await request(`https://${ROGUE}/api/v1/namespaces`, { dispatcher });
  await res.body.text();
  t.equal(res.statusCode, 502);
  t.equal(res.headers['x-tollgate-reason'], 'upstream_tls_error');
  t.equal(rogue.seen.length, 0, 'nothing was forwarded');
  if (KUBECTL) {
    const k = await kubectl(['--server', `https://${ROGUE}`, 'get', '--raw', '/api/v1/namespaces']);
    t.not(k.code, 0, 'kubectl fails too');
    t.equal(rogue.seen.length, 0);
  }
});

t.test('a connection CA added by a reload is not bypassed by a kept-alive pool of the default trust', async (t) => {
  const dispatcher = agent();
  t.teardown(() => dispatcher.close());
  const before = await request(`https://${LATER}/`, { dispatcher });
  await before.body.text();
  t.equal(before.statusCode, 200, 'verified with tls.upstream_ca while no connection pins it');
  t.equal(rogue.seen.length, 1);
  const reloads = () => tg.logs.filter((l) => l['msg'] === 'policy reloaded').length;
  const n = reloads();
  writeFileSync(path.join(tg.dir, 'org.yaml'), org(true));
  const deadline = Date.now() + 5000;
  while (reloads() === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(reloads(), n + 1, 'the gateway reloaded org.yaml');
  const after = await request(`https://${LATER}/`, { dispatcher });
  await after.body.text();
  t.equal(after.statusCode, 502);
  t.equal(after.headers['x-tollgate-reason'], 'upstream_tls_error');
  t.equal(rogue.seen.length, 1, 'the kept-alive connection of the default trust was not reused');
});
