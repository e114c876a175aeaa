// `tollgate run` end to end, as root with real namespaces: the gateway is the only way out. Every
// escape attempt is checked at a canary listener on the host: nothing may arrive there.
// The sandbox creates no named namespace and no veth: its namespaces are anonymous and die with
// the last process in them, so a failed test leaves nothing behind (checked at the end).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startCanary, startUpstream } from '../../helpers/upstream-server.ts';
import { checkSandboxSupport } from '../../../src/sandbox/sandbox-support.ts';
import { planSandbox } from '../../../src/sandbox/plan-sandbox.ts';
import { launchSandbox } from '../../../src/sandbox/launch-sandbox.ts';
import { proxyUrlFor } from '../../../src/sandbox/proxy-environment.ts';
import { writeCaBundle } from '../../../src/sandbox/write-ca-bundle.ts';
import { HOLDER_SCRIPT } from '../../../src/cli/run-command.ts';
import { main } from '../../../src/cli/main.ts';

const run = promisify(execFile);
const support = checkSandboxSupport();
if (!support.ok) {
  t.plan(0, `skipped: namespaces unavailable here: ${support.reason}`);
  process.exit(0);
}
const tools = support.tools;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
// The CLI loads its own tsx. tap's process-info hook re-adds its loader to NODE_OPTIONS of every
// child it sees spawned, which breaks bin/tollgate; `env -u` drops it after that point.
const BIN = path.join(ROOT, 'bin/tollgate');
const tollgate = (args: string[]): [string, string[]] => ['env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args]];

const pki = await makeTestCa();
const pair = await pki.issue(['api.allowed.test']);
const upstream = await startUpstream({ tls: pair });
const canary = await startCanary('0.0.0.0');
const tg = await startTestGateway({ upstreams: { 'api.allowed.test': upstream.port }, upstreamCaPem: pki.caPem });
const home = mkdtempSync(path.join(os.tmpdir(), 'tollgate-run-test-'));
const bundle = writeCaBundle(path.join(home, 'ca-bundle.pem'), tg.caPem);
t.teardown(async () => {
  await tg.stop();
  await Promise.all([upstream.close(), canary.close()]);
  rmSync(home, { recursive: true, force: true });
});

/** A non-loopback address of this host (the canary listens on all of them). */
const otherLocal = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

const cliEnv = {
  ...process.env,
  XDG_CONFIG_HOME: home, TOLLGATE_TOKEN: tg.token, TOLLGATE_PROXY: `127.0.0.1:${tg.proxyPort}`,
  TOLLGATE_CA_FILE: tg.caFile, TOLLGATE_CONFIG: path.join(home, 'none.yaml'),
};

/** Runs a shell snippet in the sandbox (library path: plan, launch) and collects its output. */
async function inSandbox(script: string): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  const plan = planSandbox({
    command: ['sh', '-c', script], env: process.env, tools, holderScript: HOLDER_SCRIPT, caBundlePath: bundle,
    proxyUrl: proxyUrlFor({ host: '127.0.0.1', port: tg.proxyPort, token: tg.token, scope: 'alpha' }),
  });
  const p = await launchSandbox(plan, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  p.child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = await p.exited;
  return { ...exit, out, err };
}

t.test('curl through the proxy succeeds inside the sandbox and the gateway sees it', async (t) => {
  const before = upstream.seen.length;
  const r = await inSandbox('curl -sS -o /dev/null -w "%{http_code}" https://api.allowed.test/hello');
  t.equal(r.out, '200', r.err);
  t.equal(upstream.seen.length, before + 1, 'the upstream got the request');
  const ex = tg.exchanges().find((e) => e['host'] === 'api.allowed.test' && e['path'] === '/hello');
  t.ok(ex, 'the gateway logged the exchange');
  t.equal(ex?.['principal'], 'agent:alpha-bot');
  t.equal(ex?.['decision'], 'allow');
});

t.test('direct connections fail in the kernel: host loopback, another local address, UDP, DNS', async (t) => {
  const before = canary.accepts();
  const script = [
    `curl -sS -m 3 --noproxy '*' http://127.0.0.1:${canary.port}/ >/dev/null 2>&1; echo "loopback=$?"`,
    otherLocal ? `curl -sS -m 3 --noproxy '*' http://${otherLocal}:${canary.port}/ >/dev/null 2>&1; echo "local=$?"` : 'echo local=skipped',
    // Without the proxy variables at all: env -u … and a raw socket from Node.
    `env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy curl -sS -m 3 https://api.allowed.test/ >/dev/null 2>&1; echo "unset=$?"`,
    `${process.execPath} -e 'const s=require("net").connect(${canary.port},"${otherLocal ?? '10.0.0.1'}");s.on("connect",()=>{console.log("raw=connected");process.exit(0)});s.on("error",e=>{console.log("raw="+e.code);process.exit(0)})'`,
    `${process.execPath} -e 'const d=require("dgram").createSocket("udp4");d.send("x",53,"${otherLocal ?? '10.0.0.1'}",e=>{console.log("udp="+(e?e.code:"sent"));process.exit(0)})'`,
    `getent hosts tollgate-sandbox-test.example.com >/dev/null 2>&1; echo "dns=$?"`,
    `${process.execPath} -e 'require("dns").lookup("example.org",(e)=>{console.log("lookup="+(e?e.code:"resolved"))})'`,
  ].join('\n');
  const r = await inSandbox(script);
  const got = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split('=') as [string, string]));
  t.not(got['loopback'], '0', 'the host loopback listener is unreachable');
  if (otherLocal) t.not(got['local'], '0', `${otherLocal} is unreachable`);
  else t.comment('no non-loopback IPv4 address on this host: the other-address case was not run');
  t.not(got['unset'], '0', 'without the proxy variables curl cannot get out');
  t.match(got['raw'], /^(ENETUNREACH|ECONNREFUSED|EHOSTUNREACH)$/, 'a raw TCP connect fails in the kernel');
  t.match(got['udp'], /^(ENETUNREACH|EHOSTUNREACH|EPERM)$/, 'UDP has no route');
  t.not(got['dns'], '0', 'DNS resolution of an outside name fails');
  t.not(got['lookup'], 'resolved', 'Node cannot resolve names either');
  t.equal(canary.accepts(), before, 'nothing reached the canary');
});

// The CLI cases start tsx each (seconds on a loaded machine): they run side by side.
t.test('tollgate run (the CLI): stdin/stdout, exit code, signals', async (t) => {
  const stdio = async () => {
    const child = spawn(...tollgate(['run', '--team', 'alpha', '--', 'sh', '-c', 'cat; echo "proxy=$HTTPS_PROXY"; echo "ca=$CURL_CA_BUNDLE"; echo "np=${NO_PROXY:-unset}"; exit 7']), { env: { ...cliEnv, NO_PROXY: 'example.com' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.stdin.end('hello from stdin\n');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    return { code, out, err };
  };
  const term = async () => {
    const child = spawn(...tollgate(['run', '--team', 'alpha', '--', 'sh', '-c', 'trap "echo got-term; exit 143" TERM; echo ready; while :; do sleep 0.1; done']), { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    await Promise.race([exited, new Promise<void>((resolve) => { const iv = setInterval(() => { if (out.includes('ready')) { clearInterval(iv); resolve(); } }, 50); })]);
    child.kill('SIGTERM');
    return { code: await exited, out };
  };
  const usr1 = async () => {
    const killed = spawn(...tollgate(['run', '--team', 'alpha', '--', 'sh', '-c', 'kill -USR1 $$']), { env: cliEnv, stdio: 'ignore' });
    return new Promise<{ code: number | null; signal: string | null }>((r) => killed.on('exit', (code, signal) => r({ code, signal })));
  };
  const [a, b, c] = await Promise.all([stdio(), term(), usr1()]);

  t.equal(a.code, 7, a.err);
  t.match(a.out, /^hello from stdin\n/, 'stdin and stdout pass through');
  t.match(a.out, new RegExp(`proxy=http://alpha:${tg.token}@127\\.0\\.0\\.1:${tg.proxyPort}`));
  t.match(a.out, new RegExp(`ca=${home}/tollgate/ca-bundle\\.pem`));
  t.match(a.out, /np=unset/, 'NO_PROXY is cleared');

  t.match(b.out, /got-term/, 'a SIGTERM to tollgate reaches the command');
  t.equal(b.code, 143);
  t.same(c, { code: null, signal: 'SIGUSR1' }, 'a command killed by a signal: tollgate dies of the same signal');
});

/** main() in this process (no tsx start-up), stderr captured; the command's own stdio is inherited. */
async function inProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  const saved = { ...process.env };
  const err = process.stderr.write.bind(process.stderr);
  let stderr = '';
  Object.assign(process.env, cliEnv);
  process.stderr.write = ((c: string | Uint8Array) => { stderr += String(c); return true; }) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'tollgate', ...args]), stderr };
  } finally {
    process.stderr.write = err;
    process.exitCode = undefined;
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

t.test('tollgate run in-process: the exit code, and --no-sandbox says loudly it is advisory only', async (t) => {
  const sandboxed = await inProcess(['run', '--team', 'alpha', '--', 'sh', '-c', 'test "$TOLLGATE_SANDBOX" = namespace && exit 5']);
  t.equal(sandboxed.code, 5, sandboxed.stderr);
  const advisory = await inProcess(['run', '--team', 'alpha', '--no-sandbox', '--', 'sh', '-c', 'test "$TOLLGATE_SANDBOX" = none && exit 6']);
  t.equal(advisory.code, 6);
  t.match(advisory.stderr, /WARNING: --no-sandbox.*WITHOUT network isolation.*advisory only/s);
  const noCommand = await inProcess(['run', '--team', 'alpha']);
  t.equal(noCommand.code, 2, 'no command: a usage error');
});

t.test('nothing is left behind: no holder process, no named namespace', async (t) => {
  // Only this file's holders (they listen on this gateway's port inside their namespace): other test
  // files run in parallel and may have a sandbox up right now. A holder exits just after its run
  // ends, so give it a moment.
  const ours = (out: string) => out.split('\n').filter((l) => /namespace-holder\.mjs/.test(l) && l.trim().endsWith(` ${tg.proxyPort}`));
  let left: string[] = [];
  for (let i = 0; i < 30; i++) {
    left = ours((await run('ps', ['-eo', 'args'])).stdout);
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(left, [], 'no holder process remains');
  const named = await run('ip', ['netns', 'list']).then((r) => r.stdout, () => '');
  t.notMatch(named, /tollgate/);
});
