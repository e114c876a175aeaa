// The onboarding and agent verbs through the real CLI: `tollgate env` for each shell,
// `tollgate setup claude-code` (--print, and the merge into an existing settings.json),
// `tollgate agent create` (comments kept, validated) and `tollgate agent list`.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { cliInProcess } from '../../helpers/cli-in-process.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../bin/tollgate', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-onboard-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = await makeTestCa('Tollgate Onboarding Test CA');
writeFileSync(path.join(dir, 'ca.pem'), ca.caPem);
const TOKEN = 'tg_test_token_value';
const env = {
  ...process.env, HOME: path.join(dir, 'home'), XDG_CONFIG_HOME: path.join(dir, 'xdg'), TOLLGATE_TOKEN: TOKEN,
  TOLLGATE_PROXY: 'gw.example:3128', TOLLGATE_CA_FILE: path.join(dir, 'ca.pem'), TOLLGATE_CONFIG: path.join(dir, 'tollgate.yaml'),
};
// One real process (the bash case) proves the executable; the rest run main() in this process
// (test/helpers/cli-in-process.ts), which is many times faster than starting tsx per call.
// tap's process-info hook re-adds its loader to NODE_OPTIONS of every child; `env -u` drops it.
const spawned = (args: string[]) =>
  run('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], { env })
    .then((r) => ({ ...r, code: 0 }), (e: { stdout: string; stderr: string; code: number }) => ({ stdout: e.stdout, stderr: e.stderr, code: e.code }));
const tollgate = (args: string[], extra: Record<string, string> = {}) => cliInProcess(args, { ...env, ...extra });
const bundle = path.join(dir, 'xdg/tollgate/ca-bundle.pem');
const proxy = `http://sre:${TOKEN}@gw.example:3128`;

t.test('tollgate env prints the variables for each shell', async (t) => {
  const bash = await spawned(['env', '--shell', 'bash', '--team', 'sre']);
  t.equal(bash.code, 0, bash.stderr);
  const zsh = await tollgate(['env', '--shell', 'zsh', '--team', 'sre']);
  const fish = await tollgate(['env', '--shell', 'fish', '--team', 'sre']);
  const pwsh = await tollgate(['env', '--shell', 'powershell', '--team', 'sre']);
  t.match(bash.stdout, `export HTTPS_PROXY='${proxy}'\n`);
  t.match(bash.stdout, `export https_proxy='${proxy}'\n`);
  t.match(bash.stdout, `export ALL_PROXY='${proxy}'\n`);
  t.match(bash.stdout, "export NO_PROXY='localhost,127.0.0.1,::1'\n");
  for (const v of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'AWS_CA_BUNDLE']) {
    t.match(bash.stdout, `export ${v}='${bundle}'\n`, v);
  }
  t.match(bash.stdout, "export ANTHROPIC_API_KEY='tollgate-placeholder'\n");
  t.match(bash.stdout, /# Run this to configure your shell: eval "\$\(tollgate env --shell bash\)"/);
  t.match(zsh.stdout, `export HTTPS_PROXY='${proxy}'\n`);
  t.match(fish.stdout, `set -gx HTTPS_PROXY '${proxy}';\n`);
  t.match(fish.stdout, `set -gx CURL_CA_BUNDLE '${bundle}';\n`);
  t.match(pwsh.stdout, `$env:HTTPS_PROXY = '${proxy}'\n`);
  t.match(pwsh.stdout, `$env:GIT_SSL_CAINFO = '${bundle}'\n`);
  const pem = readFileSync(bundle, 'utf8');
  t.ok(pem.trimEnd().endsWith(ca.caPem.trim()), 'the bundle ends with the Tollgate CA');
  t.ok(pem.split('BEGIN CERTIFICATE').length > 10, 'and holds the system roots');
});

t.test('tollgate env without a login says how to get one', async (t) => {
  const r = await tollgate(['env'], { TOLLGATE_TOKEN: '' });
  t.equal(r.code, 2);
  t.match(r.stderr, /not signed in: run `tollgate login/);
});

t.test('tollgate setup claude-code --print shows the merged settings and writes nothing', async (t) => {
  const r = await tollgate(['setup', 'claude-code', '--print', '--team', 'sre']);
  t.match(r.stdout, /not written: --print/);
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { env: Record<string, string> };
  t.same(json.env, { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, NODE_EXTRA_CA_CERTS: bundle, ANTHROPIC_API_KEY: 'tollgate-placeholder' });
  t.throws(() => readFileSync(path.join(dir, 'home/.claude/settings.json')), 'no file written');
});

t.test('tollgate setup claude-code merges into an existing settings.json and keeps a backup', async (t) => {
  const file = path.join(dir, 'home/.claude/settings.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ model: 'opus', env: { FOO: 'bar' } }));
  const r = await tollgate(['setup', 'claude-code', '--team', 'sre']);
  t.match(r.stdout, /updated .*settings\.json/);
  t.notMatch(r.stdout, TOKEN, 'the token is not printed');
  const after = JSON.parse(readFileSync(file, 'utf8')) as { model: string; env: Record<string, string> };
  t.equal(after.model, 'opus');
  t.equal(after.env['FOO'], 'bar');
  t.equal(after.env['HTTPS_PROXY'], proxy);
  t.same(JSON.parse(readFileSync(`${file}.tollgate-backup`, 'utf8')), { model: 'opus', env: { FOO: 'bar' } });
  writeFileSync(file, '{ not json');
  const bad = await tollgate(['setup', 'claude-code', '--team', 'sre']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /not valid JSON.*never overwrites/);
  t.equal(readFileSync(file, 'utf8'), '{ not json', 'left alone');
});

t.test('tollgate agent create appends to org.yaml (comments kept), validates, and agent list shows it', async (t) => {
  const cfg = path.join(dir, 'gw');
  mkdirSync(path.join(cfg, 'policies'), { recursive: true });
  writeFileSync(path.join(cfg, 'tollgate.yaml'), 'data_dir: ./data\norg: ./org.yaml\npolicies: ./policies\n');
  const org = '# Acme org — this comment stays\norganization: Acme\nteams:\n  sre: { name: SRE, idp_groups: [sre], policy: policies/sre.yaml }   # aligned\nagents:\n  existing: { name: Existing, team: sre }\n';
  writeFileSync(path.join(cfg, 'org.yaml'), org);
  writeFileSync(path.join(cfg, 'policies/sre.yaml'), 'team: sre\nrules:\n  - { host: "*", action: deny }\n');
  const c = path.join(cfg, 'tollgate.yaml');
  const r = await tollgate(['agent', 'create', 'SRE Monitor', '--team', 'sre', '--every', '5m', '--config', c, '--', 'node', 'agents/sre-monitor.js']);
  t.match(r.stdout, /added agent sre-monitor/, r.stderr);
  const text = readFileSync(path.join(cfg, 'org.yaml'), 'utf8');
  t.ok(text.startsWith(org), 'the existing text is kept byte for byte');
  t.match(text, /  sre-monitor:\n    name: SRE Monitor\n    team: sre\n    every: 5m\n    command: \[node, agents\/sre-monitor\.js\]\n/);
  const bad = await tollgate(['agent', 'create', 'Rogue', '--team', 'nope', '--config', c, '--', 'x']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /org\.yaml would be invalid/);
  t.match(bad.stderr, /org\.yaml:\d+:\d+: .*unknown team "nope"/);
  t.equal(readFileSync(path.join(cfg, 'org.yaml'), 'utf8'), text, 'org.yaml unchanged after a refused create');
  const list = await tollgate(['agent', 'list', '--json', '--config', c]);
  const rows = (JSON.parse(list.stdout) as { agents: Array<{ agent: string; state: string; schedule: string }> }).agents;
  t.same(rows.map((x) => [x.agent, x.state, x.schedule]), [['existing', 'external', '-'], ['sre-monitor', 'never run', 'every 5m']]);
});
