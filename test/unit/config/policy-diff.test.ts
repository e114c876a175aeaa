// `tollgate policy diff`: which test requests change decision between two policy trees.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { policyDiff } from '../../../src/config/policy-tools.ts';

const repo = path.resolve(import.meta.dirname, '../../..');
const copy = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-diff-'));
  cpSync(path.join(repo, 'org.yaml'), path.join(dir, 'org.yaml'));
  cpSync(path.join(repo, 'policies'), path.join(dir, 'policies'), { recursive: true });
  return dir;
};
const paths = (dir: string) => ({ orgFile: path.join(dir, 'org.yaml'), policiesDir: path.join(dir, 'policies') });

t.test('identical trees: nothing changes, exit 0', async (t) => {
  const a = copy();
  t.teardown(() => rmSync(a, { recursive: true, force: true }));
  const r = policyDiff(paths(a), paths(a));
  t.equal(r.exitCode, 0);
  t.match(r.text, /no test request changes decision/);
});

t.test('allowing DELETE on GitHub for SRE is reported with both decisions', async (t) => {
  const a = copy();
  const b = copy();
  t.teardown(() => { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); });
  const file = path.join(b, 'policies', 'sre.yaml');
  const text = readFileSync(file, 'utf8');
  t.ok(text.includes('{ method: DELETE, action: deny'), 'fixture line present');
  writeFileSync(file, text.replace(/\{ method: DELETE, action: deny[^}]*\}/, '{ method: DELETE, action: allow }'));
  const r = policyDiff(paths(a), paths(b));
  t.equal(r.exitCode, 1);
  t.match(r.text, /DELETE https:\/\/api\.github\.com\/repos\/acme\/api/);
  t.match(r.text, /deny \(method_not_allowed[^)]*\) → allow/);
});

t.test('a rule that only moves (new comment lines) is not a change', async (t) => {
  const a = copy();
  const b = copy();
  t.teardown(() => { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); });
  const file = path.join(b, 'policies', 'sre.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('rules:\n', 'rules:\n  # a new comment\n  # shifts every rule down\n'));
  t.equal(policyDiff(paths(a), paths(b)).exitCode, 0);
});

t.test('an invalid new tree is exit 2 with file:line:col', async (t) => {
  const a = copy();
  const b = copy();
  t.teardown(() => { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); });
  writeFileSync(path.join(b, 'policies', 'sre.yaml'), 'team: sre\nrules:\n  - { host: "*example.com", action: allow }\n');
  const r = policyDiff(paths(a), paths(b));
  t.equal(r.exitCode, 2);
  t.match(r.text, /policies\/sre\.yaml:3:\d+/);
});
