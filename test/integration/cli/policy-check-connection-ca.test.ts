// `tollgate policy check` reports a connection `ca:` file the gateway could not use — missing, not
// PEM, a directory, holding a private key — as an error at the `ca:` key (file:line:col, exit 1),
// the same file check the gateway makes before it refuses to start; good CA files pass.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-policy-ca-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = await makeTestCa('Policy Check Test CA');
const leaf = await ca.issue(['api.example.test']);
mkdirSync(path.join(dir, 'policies'));
mkdirSync(path.join(dir, 'certs/a-directory.pem'), { recursive: true });
writeFileSync(path.join(dir, 'certs/good-ca.pem'), `# the cluster CA\n${ca.caPem}`);
writeFileSync(path.join(dir, 'certs/not-pem.pem'), 'this is not a certificate\n');
writeFileSync(path.join(dir, 'certs/with-key.pem'), `${ca.caPem}${leaf.keyPem}`);
writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n');

const org = (connections: string[]) => [
  'organization: Test Org',
  'projects:',
  '  prod:',
  '    name: Production',
  '    connections:',
  ...connections.map((c) => `      - ${c}`),
  'teams:',
  '  sre: { name: SRE, idp_groups: [sre], projects: { prod: admin } }',
  '',
].join('\n');
const check = (text: string) => {
  writeFileSync(path.join(dir, 'org.yaml'), text);
  return cliInProcess(['policy', 'check', dir], {});
};

t.test('good CA files pass', async (t) => {
  const r = await check(org([
    '{ name: eks, kind: kubernetes, hosts: ["*.eks.example.test"], ca: certs/good-ca.pem }',
    '{ name: github, hosts: [api.github.com] }',
  ]));
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /policy OK: 1 team policies/);
});

t.test('each unusable CA file is an error at its ca: key', async (t) => {
  const r = await check(org([
    '{ name: missing, hosts: [a.example.test], ca: certs/missing.pem }',
    '{ name: text, hosts: [b.example.test], ca: certs/not-pem.pem }',
    '{ name: dir, hosts: [c.example.test], ca: certs/a-directory.pem }',
    '{ name: keyed, hosts: [d.example.test], ca: certs/with-key.pem }',
    '{ name: fine, hosts: [e.example.test], ca: certs/good-ca.pem }',
  ]));
  t.equal(r.code, 1);
  // Each line points at the `ca:` key of its connection (lines 6–9 of org.yaml).
  const lines = r.stderr.trim().split('\n');
  t.same(lines, [
    'org.yaml:6:55: connection prod/missing: ca: certs/missing.pem: file not found (the gateway refuses to start with it)',
    'org.yaml:7:52: connection prod/text: ca: certs/not-pem.pem: not a PEM certificate file (no -----BEGIN CERTIFICATE----- block) (the gateway refuses to start with it)',
    'org.yaml:8:51: connection prod/dir: ca: certs/a-directory.pem: cannot read the file (EISDIR) (the gateway refuses to start with it)',
    'org.yaml:9:53: connection prod/keyed: ca: certs/with-key.pem: holds a private key; a connection CA file holds only the CA certificate (the gateway refuses to start with it)',
    'policy invalid: 4 error(s)',
  ]);
});

t.test('CA problems are reported next to the other problems of the tree', async (t) => {
  writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: maybe }\n');
  t.teardown(() => writeFileSync(path.join(dir, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n'));
  const r = await check(org(['{ name: missing, hosts: [a.example.test], ca: certs/missing.pem }']));
  t.equal(r.code, 1);
  t.match(r.stderr, /^policies\/sre\.yaml:3:/m, 'the policy error');
  t.match(r.stderr, /^org\.yaml:6:55: connection prod\/missing: ca: certs\/missing\.pem: file not found/m, 'and the CA file');
});
