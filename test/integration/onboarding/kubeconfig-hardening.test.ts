// `tollgate setup kubectl` against an existing kubeconfig, through the real CLI: --print shows no
// secret of any entry (other Tollgate clusters' proxy-url, other users' tokens, passwords, keys,
// auth-provider and exec configuration), every tollgate-* cluster of the same gateway gets the new
// token, the file stays YAML that kubectl (YAML 1.1) still reads with its comments and quoted
// strings, and the file (and Claude Code's settings) are replaced by an exclusive temporary file
// renamed into place, never written through a planted link. (org.yaml's checks of `server:` are
// in test/unit/onboarding/kubeconfig.test.ts.)
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { writeFileAtomic } from '../../../src/store/write-file-atomic.ts';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

const KUBECTL = (process.env['PATH'] ?? '/usr/bin').split(':').map((d) => path.join(d, 'kubectl')).find((f) => existsSync(f));
const TOKEN = 'tg_current_token_5d41402abc4b2a76';
const OLD_TOKEN = 'tg_old_token_7d793037a0760186';
const OTHER_GATEWAY_TOKEN = 'tg_other_gateway_token_1f3870be';
const SECRETS = {
  token: 'minikube-bearer-e4da3b7fbbce2345', password: 'hunter2-c4ca4238a0b92382', key: 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t',
  idToken: 'eyJhbGciOiJSUzI1NiJ9.id-token-a87ff679', clientSecret: 'oidc-client-secret-eccbc87e', execArg: 'exec-arg-token-8f14e45f',
  execEnv: 'exec-env-secret-c9f0f895', comment: 'comment-secret-45c48cce',
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-kube-hard-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = await makeTestCa('Tollgate Kubeconfig Test CA');
writeFileSync(path.join(dir, 'ca.pem'), ca.caPem);
mkdirSync(path.join(dir, 'policies'));
writeFileSync(path.join(dir, 'tollgate.yaml'), 'data_dir: ./data\norg: ./org.yaml\npolicies: ./policies\n');
writeFileSync(path.join(dir, 'org.yaml'), [
  'organization: Test Org',
  'projects:',
  '  prod:',
  '    name: Production',
  '    connections:',
  '      - { name: eks, kind: kubernetes, hosts: ["*.eks.example.test"], server: "https://prod.eks.example.test" }',
  'teams:',
  '  alpha: { name: Alpha, idp_groups: [alpha], projects: { prod: admin } }',
  '',
].join('\n'));
const PROXY = '127.0.0.1:3128';
const env = {
  HOME: path.join(dir, 'home'), XDG_CONFIG_HOME: path.join(dir, 'xdg'), CLAUDE_CONFIG_DIR: path.join(dir, 'claude'),
  TOLLGATE_TOKEN: TOKEN, TOLLGATE_PROXY: PROXY, TOLLGATE_CA_FILE: path.join(dir, 'ca.pem'), TOLLGATE_CONFIG: path.join(dir, 'tollgate.yaml'),
};
const tollgate = (args: string[]) => cliInProcess(args, env);
const setup = (file: string, ...more: string[]) => tollgate(['setup', 'kubectl', '--project', 'prod', '--team', 'alpha', '--kubeconfig', file, ...more]);

/** A kubeconfig of someone who already uses kubectl and ran `setup kubectl` for staging last week. */
const existing = [
  `# my clusters (${SECRETS.comment})`,
  'apiVersion: v1',
  'kind: Config',
  'current-context: minikube',
  'clusters:',
  '- name: minikube # local',
  '  cluster:',
  '    server: https://192.168.49.2:8443',
  '- name: tollgate-staging-eks',
  '  cluster:',
  '    server: https://staging.eks.example.test',
  `    proxy-url: http://alpha.staging:${OLD_TOKEN}@${PROXY}`,
  '- name: tollgate-legacy-eks',
  '  cluster:',
  '    server: https://legacy.eks.example.test',
  `    proxy-url: http://alpha.legacy:${OTHER_GATEWAY_TOKEN}@gw2.example.test:3128`,
  'contexts:',
  '- name: minikube',
  '  context:',
  '    cluster: minikube',
  '    namespace: "yes"',
  '    user: minikube',
  '- name: ops',
  '  context:',
  '    cluster: minikube',
  '    namespace: "n"',
  '    user: basic',
  'users:',
  '- name: minikube',
  '  user:',
  `    token: ${SECRETS.token}`,
  `    client-key-data: ${SECRETS.key}`,
  '    client-certificate: /home/me/.minikube/client.crt',
  '- name: basic',
  '  user:',
  '    username: "on"',
  `    password: ${SECRETS.password}`,
  '- name: oidc',
  '  user:',
  '    auth-provider:',
  '      name: oidc',
  '      config:',
  `        id-token: ${SECRETS.idToken}`,
  `        client-secret: ${SECRETS.clientSecret}`,
  '- name: eks-exec',
  '  user:',
  '    exec:',
  '      apiVersion: client.authentication.k8s.io/v1beta1',
  '      command: aws',
  `      args: [eks, get-token, --token, ${SECRETS.execArg}]`,
  `      env: [{ name: AWS_SECRET_ACCESS_KEY, value: ${SECRETS.execEnv} }]`,
  '',
].join('\n');

/** A fresh copy of `existing` in its own folder. */
function copyOfExisting(name: string): string {
  const file = path.join(dir, name, 'config');
  mkdirSync(path.dirname(file));
  writeFileSync(file, existing);
  return file;
}

t.test('--print shows every entry with every secret redacted, and writes nothing', async (t) => {
  const file = copyOfExisting('print');
  const r = await setup(file, '--print');
  t.equal(r.code, 0, r.stderr);
  for (const secret of [TOKEN, OLD_TOKEN, OTHER_GATEWAY_TOKEN, ...Object.values(SECRETS)]) t.notMatch(r.stdout, secret, `${secret} is not printed`);
  const shown = parseYaml(r.stdout) as { clusters: Array<{ name: string; cluster: Record<string, string> }>; users: Array<{ name: string; user: Record<string, unknown> }> };
  const proxyOf = (name: string) => shown.clusters.find((c) => c.name === name)?.cluster['proxy-url'];
  t.equal(proxyOf('tollgate-prod-eks'), `http://alpha.prod:***@${PROXY}`);
  t.equal(proxyOf('tollgate-legacy-eks'), 'http://alpha.legacy:***@gw2.example.test:3128', 'another gateway\'s token is hidden too');
  const user = (name: string) => shown.users.find((u) => u.name === name)?.user;
  t.same(user('minikube'), { token: 'REDACTED', 'client-key-data': 'REDACTED', 'client-certificate': '/home/me/.minikube/client.crt' });
  t.same(user('basic'), { username: 'on', password: 'REDACTED' });
  t.same(user('oidc'), { 'auth-provider': { name: 'oidc', config: { 'id-token': 'REDACTED', 'client-secret': 'REDACTED' } } });
  t.same(user('eks-exec'), {
    exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'aws', args: ['REDACTED', 'REDACTED', 'REDACTED', 'REDACTED'], env: [{ name: 'AWS_SECRET_ACCESS_KEY', value: 'REDACTED' }] },
  });
  t.same(user('tollgate'), { token: 'tollgate-placeholder' }, 'the placeholder is no secret and is shown');
  t.equal(readFileSync(file, 'utf8'), existing, 'nothing written');
});

t.test('every tollgate-* cluster of this gateway gets the new token; kubectl config view says where the token is', async (t) => {
  const file = copyOfExisting('refresh');
  const r = await setup(file);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, 'refreshed the gateway token in cluster tollgate-staging-eks');
  t.match(r.stdout, /kept cluster tollgate-legacy-eks: its proxy-url names another gateway/);
  t.match(r.stdout, /`kubectl config view` shows each cluster's proxy-url with your gateway token in it: a token for the gateway\nonly, not a Kubernetes credential/);
  t.notMatch(r.stdout, TOKEN);
  const text = readFileSync(file, 'utf8');
  t.notMatch(text, OLD_TOKEN, 'no old token of this gateway is left in the file');
  const kc = parseYaml(text, { version: '1.1' }) as { clusters: Array<{ name: string; cluster: Record<string, string> }> };
  const proxyOf = (name: string) => kc.clusters.find((c) => c.name === name)?.cluster['proxy-url'];
  t.equal(proxyOf('tollgate-staging-eks'), `http://alpha.staging:${TOKEN}@${PROXY}`, 'its own project scope, the new token');
  t.equal(proxyOf('tollgate-prod-eks'), `http://alpha.prod:${TOKEN}@${PROXY}`);
  t.equal(proxyOf('tollgate-legacy-eks'), `http://alpha.legacy:${OTHER_GATEWAY_TOKEN}@gw2.example.test:3128`, 'another gateway\'s entry is left as it was');
  t.equal(proxyOf('minikube'), undefined);
  const again = await setup(file);
  t.notMatch(again.stdout, /refreshed the gateway token/, 'nothing to refresh the second time');
});

const kubectlView = async (file: string) => {
  try {
    const r = await promisify(execFile)(KUBECTL ?? 'kubectl', ['config', 'view', '--kubeconfig', file, '-o', 'json'], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: path.join(dir, 'home') }, timeout: 20_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

t.test('the merged file keeps comments and quoted strings that YAML 1.1 would read as booleans', async (t) => {
  const file = copyOfExisting('yaml11');
  const r = await setup(file);
  t.equal(r.code, 0, r.stderr);
  const text = readFileSync(file, 'utf8');
  t.match(text, `# my clusters (${SECRETS.comment})`, 'the comment at the top survives');
  t.match(text, /- name: minikube # local\n/, 'and the one at the end of a line');
  const kc = parseYaml(text, { version: '1.1' }) as { contexts: Array<{ context: Record<string, unknown> }>; users: Array<{ name: string; user: Record<string, unknown> }> };
  t.same(kc.contexts.slice(0, 2).map((c) => c.context['namespace']), ['yes', 'n'], 'strings to a YAML 1.1 reader');
  t.equal(kc.users.find((u) => u.name === 'basic')?.user['username'], 'on');
  t.test('a real kubectl still reads it', { skip: KUBECTL ? false : 'kubectl is not installed (Debian: kubernetes-client)' }, async (t) => {
    const v = await kubectlView(file);
    t.equal(v.code, 0, v.stderr);
    const seen = JSON.parse(v.stdout) as { contexts: Array<{ name: string; context: { namespace?: string } }>; 'current-context': string };
    t.equal(seen.contexts.find((c) => c.name === 'minikube')?.context.namespace, 'yes');
    t.equal(seen.contexts.find((c) => c.name === 'ops')?.context.namespace, 'n');
    t.equal(seen['current-context'], 'tollgate-prod-eks');
  });
});

t.test('the kubeconfig is replaced through a fresh exclusive file, never written through a planted link', async (t) => {
  const kdir = path.join(dir, 'links');
  mkdirSync(kdir);
  const file = path.join(kdir, 'config');
  const victim = path.join(dir, 'victim-tmp');
  const target = path.join(dir, 'victim-target');
  writeFileSync(victim, 'untouched\n');
  writeFileSync(target, existing);
  // The name the old code used (this process's pid: the CLI runs in it), pointing elsewhere …
  symlinkSync(victim, `${file}.${process.pid}.tmp`);
  // … and the kubeconfig itself a link to another file.
  symlinkSync(target, file);
  const r = await setup(file);
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(victim, 'utf8'), 'untouched\n', 'the file behind the predictable temporary name is untouched');
  t.equal(readFileSync(target, 'utf8'), existing, 'the link at the kubeconfig is replaced, not written through');
  t.ok(lstatSync(file).isFile(), 'the kubeconfig is now a file of its own');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.match(readFileSync(file, 'utf8'), 'tollgate-prod-eks', 'merged from what the link pointed at');
  t.same(readdirSync(kdir).sort(), ['config', `config.${process.pid}.tmp`], 'no temporary file is left behind');
});

t.test('Claude Code\'s settings and their backup are replaced the same way', async (t) => {
  const cdir = env.CLAUDE_CONFIG_DIR;
  mkdirSync(cdir, { recursive: true });
  const file = path.join(cdir, 'settings.json');
  writeFileSync(file, JSON.stringify({ model: 'opus' }), { mode: 0o644 });
  const victims = [path.join(dir, 'claude-victim-tmp'), path.join(dir, 'claude-victim-backup')];
  for (const v of victims) writeFileSync(v, 'untouched\n');
  symlinkSync(victims[0]!, `${file}.${process.pid}.tmp`);
  symlinkSync(victims[1]!, `${file}.tollgate-backup`);
  const r = await tollgate(['setup', 'claude-code', '--team', 'alpha']);
  t.equal(r.code, 0, r.stderr);
  for (const v of victims) t.equal(readFileSync(v, 'utf8'), 'untouched\n', `${path.basename(v)} is untouched`);
  t.ok(lstatSync(`${file}.tollgate-backup`).isFile(), 'the backup is a file of its own');
  t.same(JSON.parse(readFileSync(`${file}.tollgate-backup`, 'utf8')), { model: 'opus' });
  t.equal(statSync(`${file}.tollgate-backup`).mode & 0o777, 0o600, 'the backup holds no more than the user may read');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.match(readFileSync(file, 'utf8'), `alpha:${TOKEN}@${PROXY}`);
});

t.test('writeFileAtomic: mode 0600 whatever was there, nothing left behind when the rename fails', async (t) => {
  const adir = path.join(dir, 'atomic');
  mkdirSync(adir);
  const file = path.join(adir, 'f');
  writeFileSync(file, 'old', { mode: 0o644 });
  writeFileAtomic(file, 'new');
  t.equal(readFileSync(file, 'utf8'), 'new');
  t.equal(statSync(file).mode & 0o777, 0o600);
  mkdirSync(path.join(adir, 'd'));
  writeFileSync(path.join(adir, 'd', 'x'), '');
  t.throws(() => writeFileAtomic(path.join(adir, 'd'), 'data'), 'a non-empty directory cannot be replaced');
  t.same(readdirSync(adir).sort(), ['d', 'f'], 'the temporary file was removed');
});
