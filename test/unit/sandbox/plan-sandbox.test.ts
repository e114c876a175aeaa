// The pure core of the sandbox and onboarding: launch plan, proxy/CA variables, CA bundle, shell
// formatting, Claude Code settings merge, backoff, org.yaml editing, scope choice.
import t from 'tap';
import { NO_SANDBOX_WARNING, planSandbox, SandboxPlanError } from '../../../src/sandbox/plan-sandbox.ts';
import { CA_VARIABLES, PROXY_VARIABLES, proxyUrlFor, scopeName } from '../../../src/sandbox/proxy-environment.ts';
import { buildCaBundle } from '../../../src/sandbox/build-ca-bundle.ts';
import { checkSandboxSupport } from '../../../src/sandbox/sandbox-support.ts';
import { formatShellEnv, detectShell } from '../../../src/onboarding/format-shell-env.ts';
import { mergeClaudeSettings, redactProxyUrl } from '../../../src/onboarding/claude-settings.ts';
import { chooseScope, parseProxyAddress } from '../../../src/onboarding/resolve-client.ts';
import { restartDelay } from '../../../src/agents/restart-delay.ts';
import { agentKeyFor, appendAgent } from '../../../src/agents/append-agent.ts';

const tools = { unshare: '/usr/bin/unshare', nsenter: '/usr/bin/nsenter', ip: '/usr/sbin/ip', node: '/usr/bin/node', sh: '/bin/sh' };
const base = {
  command: ['curl', 'https://api.github.com/'], proxyUrl: 'http://sre:tok3n@gw.internal:3128', caBundlePath: '/home/u/.config/tollgate/ca-bundle.pem',
  env: { PATH: '/usr/bin', HOME: '/home/u', NO_PROXY: 'corp.example', no_proxy: 'x', HTTPS_PROXY: 'http://old:1', SSL_CERT_FILE: '/old.pem', NODE_CHANNEL_FD: '3' },
  tools, holderScript: '/opt/tollgate/src/sandbox/namespace-holder.mjs',
};

t.test('namespace plan: the command joins new user and network namespaces; the proxy is the loopback bridge', async (t) => {
  const plan = planSandbox(base);
  t.equal(plan.mode, 'namespace');
  t.same(plan.holder?.argv, ['/usr/bin/unshare', '--user', '--map-root-user', '--net', '--', '/usr/bin/node', base.holderScript, '/usr/sbin/ip', '127.0.0.1', '3128']);
  t.same(plan.bridge, { listen: { host: '127.0.0.1', port: 3128 }, target: { host: 'gw.internal', port: 3128 } });
  t.same(plan.argv.slice(0, 4), ['/usr/bin/nsenter', '--user=/proc/self/fd/3', '--net=/proc/self/fd/4', '--']);
  t.same(plan.argv.slice(-2), ['curl', 'https://api.github.com/'], 'the command last, untouched');
  t.match(plan.argv.join(' '), /exec 3<&- 4<&-/, 'the namespace descriptors are closed before the command runs');
  t.same(plan.steps.map((s) => s.kind), ['create-namespaces', 'bring-up-loopback', 'bridge', 'exec']);
  for (const v of PROXY_VARIABLES) t.equal(plan.env[v], 'http://sre:tok3n@127.0.0.1:3128', v);
  for (const v of CA_VARIABLES) t.equal(plan.env[v], base.caBundlePath, v);
  t.equal(plan.env['NO_PROXY'], undefined, 'NO_PROXY cleared');
  t.equal(plan.env['no_proxy'], undefined, 'no_proxy cleared');
  t.equal(plan.env['NODE_CHANNEL_FD'], undefined);
  t.equal(plan.env['PATH'], '/usr/bin', 'the rest of the environment is kept');
  t.equal(plan.env['TOLLGATE_SANDBOX'], 'namespace');
  t.equal(planSandbox({ ...base, listenPort: 8080 }).innerProxyUrl, 'http://sre:tok3n@127.0.0.1:8080');
});

t.test('--no-sandbox plan: only the environment, with the loud warning as a step', async (t) => {
  const plan = planSandbox({ ...base, mode: 'none', tools: undefined });
  t.same(plan.argv, base.command);
  t.equal(plan.env['HTTPS_PROXY'], base.proxyUrl, 'the real gateway address');
  t.equal(plan.env['TOLLGATE_SANDBOX'], 'none');
  t.same(plan.steps[0], { kind: 'warn', text: NO_SANDBOX_WARNING });
  t.match(NO_SANDBOX_WARNING, /WITHOUT network isolation.*advisory only/s);
});

t.test('plan errors', async (t) => {
  t.throws(() => planSandbox({ ...base, command: [] }), SandboxPlanError);
  t.throws(() => planSandbox({ ...base, proxyUrl: 'https://gw:3128' }), /http:\/\//);
  t.throws(() => planSandbox({ ...base, tools: undefined }), /needs the tools/);
});

t.test('proxy URL and scope', async (t) => {
  t.equal(proxyUrlFor({ host: 'gw', port: 3128, token: 'a/b', scope: 'sre.production' }), 'http://sre.production:a%2Fb@gw:3128');
  t.equal(proxyUrlFor({ host: 'gw', port: 3128, token: 'tok' }), 'http://tok:@gw:3128', 'no scope: the token is the user name');
  t.equal(proxyUrlFor({ host: '::1', port: 3128, token: 't', scope: 's' }), 'http://s:t@[::1]:3128');
  t.equal(scopeName('sre', 'production'), 'sre.production');
  t.equal(scopeName(undefined, 'production'), undefined);
  t.same(parseProxyAddress('gw.example:3129'), { host: 'gw.example', port: 3129 });
  t.same(parseProxyAddress('http://127.0.0.1'), { host: '127.0.0.1', port: 3128 });
  t.equal(chooseScope({ teams: ['sre'] }, undefined, undefined), 'sre');
  t.equal(chooseScope({ teams: ['sre', 'backend'] }, undefined, undefined), undefined);
  t.equal(chooseScope({ teams: ['sre'] }, 'sre', 'production'), 'sre.production');
  t.throws(() => chooseScope({ teams: ['sre'] }, 'backend', undefined), /not a member of team backend/);
  t.throws(() => chooseScope({ teams: ['sre', 'b'] }, undefined, 'production'), /--project needs --team/);
});

t.test('CA bundle: system roots then Tollgate CA, deduplicated; no CA is an error', async (t) => {
  const a = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
  const b = '-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----';
  t.equal(buildCaBundle(`# roots\n${a}\r\n${a}\n`, `${b}\n`), `${a}\n${b}\n`);
  t.throws(() => buildCaBundle(a, 'not a pem'), /no PEM certificate/);
});

t.test('sandbox support: a clear reason off Linux', async (t) => {
  const s = checkSandboxSupport({ platform: 'darwin' });
  t.equal(s.ok, false);
  if (!s.ok) {
    t.match(s.reason, /Linux namespaces; this is darwin/);
    t.match(s.hint, /--no-sandbox \(advisory only/);
  }
});

t.test('shell formatting for bash, zsh, fish and PowerShell (quotes escaped)', async (t) => {
  const vars: Array<[string, string]> = [['HTTPS_PROXY', "http://s:t'ok@gw:3128"], ['SSL_CERT_FILE', '/a b/c.pem']];
  t.equal(formatShellEnv('bash', vars, ['X']), "export HTTPS_PROXY='http://s:t'\\''ok@gw:3128'\nexport SSL_CERT_FILE='/a b/c.pem'\nunset X\n# Run this to configure your shell: eval \"$(tollgate env --shell bash)\"\n");
  t.match(formatShellEnv('zsh', vars), /^export HTTPS_PROXY=.*\n.*eval "\$\(tollgate env --shell zsh\)"/s);
  t.equal(formatShellEnv('fish', vars, ['X']), "set -gx HTTPS_PROXY 'http://s:t\\'ok@gw:3128';\nset -gx SSL_CERT_FILE '/a b/c.pem';\nset -e X;\n# Run this to configure your shell: tollgate env --shell fish | source\n");
  t.equal(formatShellEnv('powershell', vars), "$env:HTTPS_PROXY = 'http://s:t''ok@gw:3128'\n$env:SSL_CERT_FILE = '/a b/c.pem'\n# Run this to configure your shell: tollgate env --shell powershell | Invoke-Expression\n");
  t.equal(detectShell('/usr/bin/fish'), 'fish');
  t.equal(detectShell('/opt/pwsh'), 'powershell');
  t.equal(detectShell(undefined), 'bash');
});

t.test('Claude Code settings: merged into env, nothing else touched', async (t) => {
  const input = { proxyUrl: 'http://sre:tok@gw:3128', caBundlePath: '/ca.pem' };
  const existing = { model: 'opus', permissions: { allow: ['Bash(ls)'] }, env: { FOO: 'bar', HTTPS_PROXY: 'http://old:1' } };
  const r = mergeClaudeSettings(existing, input);
  t.same(r.settings, {
    model: 'opus', permissions: { allow: ['Bash(ls)'] },
    env: { FOO: 'bar', HTTPS_PROXY: input.proxyUrl, HTTP_PROXY: input.proxyUrl, NODE_EXTRA_CA_CERTS: '/ca.pem', ANTHROPIC_API_KEY: 'tollgate-placeholder' },
  });
  t.same(existing.env, { FOO: 'bar', HTTPS_PROXY: 'http://old:1' }, 'the input is not mutated');
  t.match(r.changes.join('\n'), /replaced env.HTTPS_PROXY = http:\/\/sre:\*\*\*@gw:3128/);
  t.notMatch(r.changes.join('\n'), /tok@/, 'the token is not in the change list');
  t.same(mergeClaudeSettings(r.settings, input).changes, [], 'idempotent');
  const helper = mergeClaudeSettings({ apiKeyHelper: '~/bin/key.sh' }, input);
  t.equal((helper.settings['env'] as Record<string, string>)['ANTHROPIC_API_KEY'], undefined, 'an apiKeyHelper is left in charge');
  t.throws(() => mergeClaudeSettings([], input), /not a JSON object/);
  t.throws(() => mergeClaudeSettings({ env: 'x' }, input), /"env" that is not an object/);
  t.equal(redactProxyUrl('http://a:b@h:1'), 'http://a:***@h:1');
  t.equal(redactProxyUrl('http://tg_x:@h:1'), 'http://***:@h:1', 'without a team the user name is the token');
  t.equal(redactProxyUrl('see http://a:b@h and http://tg_c:d@h'), 'see http://a:***@h and http://tg_c:***@h', 'every URL in the text');
});

t.test('restart backoff doubles up to the ceiling', async (t) => {
  const p = { baseMs: 1000, maxMs: 10_000, stableMs: 60_000 };
  t.same([0, 1, 2, 3, 4, 5, 50].map((n) => restartDelay(n, p)), [0, 1000, 2000, 4000, 8000, 10_000, 10_000]);
});

t.test('appendAgent keeps the file byte for byte and adds the entry after the last agent', async (t) => {
  const org = [
    '# org.yaml — comment kept',
    'organization: Acme   # aligned comment',
    'teams:',
    '  sre: { name: SRE, idp_groups: [sre] }',
    'agents:',
    '  sre-monitor:',
    '    name: SRE Monitor',
    '    team: sre',
    '    command: [node, agents/sre-monitor.js]',
    '',
    '# trailing comment',
    '',
  ].join('\n');
  const r = appendAgent(org, { name: 'Cost Watcher', team: 'sre', every: '1h', command: ['node', 'agents/cost.js', '--dry run'] });
  t.equal(r.key, 'cost-watcher');
  t.equal(r.text, org.replace("    command: [node, agents/sre-monitor.js]\n", "    command: [node, agents/sre-monitor.js]\n  cost-watcher:\n    name: Cost Watcher\n    team: sre\n    every: 1h\n    command: [node, agents/cost.js, --dry run]\n"));
  t.throws(() => appendAgent(r.text, { name: 'cost watcher', team: 'sre', command: ['x'] }), /exists already/);
  const none = appendAgent('organization: X\nteams: {}\n', { name: 'A', team: 't', command: ['a'] });
  t.equal(none.text, 'organization: X\nteams: {}\n\nagents:\n  a:\n    name: A\n    team: t\n    command: [a]\n');
  t.equal(agentKeyFor('SRE Monitor'), 'sre-monitor');
  t.equal(agentKeyFor('  Été / Triage!! '), 'ete-triage');
});
