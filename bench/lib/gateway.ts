// Owns: a Tollgate gateway for the benchmark — a self-contained config in a temp dir (tollgate.yaml,
// org.yaml, policies/bench.yaml, the upstream CA), the gateway spawned as its own process (so its
// CPU time and memory can be read from /proc on their own), readiness, the proxy token, shutdown.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { request } from 'undici';
import { procCpuMicros, procRssKiB } from './proc.ts';

export const BENCH_TEAM = 'bench';
export const BENCH_USER = 'bench@example.com';
/** Intercepted host (action allow). */
export const INTERCEPT_HOST = 'bench.test';
/** Pass-through host (action direct). */
export const TUNNEL_HOST = 'tunnel.test';
/** Metered host (Anthropic Messages, scenario 10); mapped to the bench upstream like the others. */
export const METERED_HOST = 'api.anthropic.com';
/** Leaf-minting hosts h1.bench.test … hN.bench.test (covered by the `*.bench.test` allow rule). */
export const mintHost = (i: number): string => `h${i}.${INTERCEPT_HOST}`;

export interface GatewayOptions {
  dir: string;
  repoRoot: string;
  upstreamPort: number;
  upstreamCaPem: string;
  mintHosts: number;
  /** Extra node flags for the gateway process (e.g. --cpu-prof). */
  nodeArgs: string[];
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** false: send no proxy token (checks how the bench reports a 407). */
  issueToken: boolean;
}

export interface BenchGateway {
  pid: number;
  proxyUrl: string;
  proxyPort: number;
  adminUrl: string;
  caPem: string;
  configFile: string;
  logFile: string;
  /** The proxy token (undefined while the gateway asks for none). */
  token: string | undefined;
  /** `Proxy-Authorization` value for this run, or undefined. */
  proxyAuthorization: string | undefined;
  cpuMicros(): number;
  rssKiB(): number;
  /** Memory after a full GC in the gateway (via bench/lib/gateway-probe.mjs), in bytes. */
  memoryAfterGc(): Promise<GatewayMemory>;
  /**
   * The gateway's event-loop delay since the previous call (via bench/lib/gateway-probe.mjs): the
   * first call only opens the window.
   */
  loopDelay(): Promise<LoopDelay>;
  stop(): Promise<void>;
}

export interface LoopDelay { count: number; maxMs: number; p99Ms: number; meanMs: number }

export interface GatewayMemory { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }

const probeModule = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'gateway-probe.mjs')).href;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The files of a self-contained gateway configuration (pure: text only). */
export function benchConfigFiles(o: { proxyPort: number; adminPort: number; upstreamPort: number; mintHosts: number; logLevel: string }): Record<string, string> {
  const up = `127.0.0.1:${o.upstreamPort}`;
  const upstreams = [INTERCEPT_HOST, TUNNEL_HOST, METERED_HOST, ...Array.from({ length: o.mintHosts }, (_, i) => mintHost(i + 1))]
    .map((h) => `  ${h}: ${up}`).join('\n');
  return {
    'tollgate.yaml': [
      `listen: { proxy: 127.0.0.1:${o.proxyPort}, admin: 127.0.0.1:${o.adminPort} }`,
      'data_dir: ./data',
      'ca: { cert: ./certs/ca.pem, key: ./certs/ca.key }',
      'org: ./org.yaml',
      'policies: ./policies',
      `upstreams:\n${upstreams}`,
      'tls: { upstream_ca: [./upstream-ca.pem] }',
      `log: { level: ${o.logLevel} }`,
      '',
    ].join('\n'),
    'org.yaml': [
      'organization: Tollgate Bench',
      'budget: { monthly_usd: 1000000 }', // limits set, so the metered path (#10) checks them
      'teams:',
      `  ${BENCH_TEAM}:`,
      '    name: Bench',
      `    idp_groups: [${BENCH_TEAM}]`,
      `    policy: policies/${BENCH_TEAM}.yaml`,
      '    budget: { monthly_usd: 1000000, daily_usd: 100000 }',
      '',
    ].join('\n'),
    [`policies/${BENCH_TEAM}.yaml`]: [
      `team: ${BENCH_TEAM}`,
      'rules:',
      `  - { host: ${INTERCEPT_HOST}, action: allow }`,
      `  - { host: "*.${INTERCEPT_HOST}", action: allow }`,
      `  - { host: ${TUNNEL_HOST}, action: direct }`,
      `  - { host: ${METERED_HOST}, action: allow }`,
      '  - { host: "*", action: deny }',
      '',
    ].join('\n'),
  };
}

function cli(repoRoot: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/tollgate'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * The proxy token for the bench user. Until `tollgate token issue` exists this returns undefined
 * (the gateway admits everyone); once the CLI knows the verb it issues a real token from the
 * gateway's store: `tollgate token issue --config … --user bench@example.com --team bench`.
 */
export function issueBenchToken(repoRoot: string, configFile: string): string | undefined {
  const probe = cli(repoRoot, ['token', 'issue', '--help']);
  if (probe.status !== 0) return undefined; // verb not there yet
  const r = cli(repoRoot, ['token', 'issue', '--config', configFile, '--user', BENCH_USER, '--team', BENCH_TEAM, '--ttl', '1h']);
  if (r.status !== 0) throw new Error(`tollgate token issue failed (exit ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  const token = r.stdout.trim().split('\n').pop()?.trim();
  if (!token) throw new Error('tollgate token issue printed no token');
  return token;
}

async function waitReady(adminUrl: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`the gateway exited with code ${child.exitCode} before it was ready:\n${tail(logFile)}`);
    }
    try {
      const r = await request(`${adminUrl}/readyz`, { headersTimeout: 1000, bodyTimeout: 1000 });
      last = `${r.statusCode} ${await r.body.text()}`;
      if (r.statusCode === 200) return;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the gateway was not ready after ${timeoutMs} ms (last /readyz: ${last}):\n${tail(logFile)}`);
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startBenchGateway(o: GatewayOptions): Promise<BenchGateway> {
  const proxyPort = await freePort();
  const adminPort = await freePort();
  mkdirSync(path.join(o.dir, 'policies'), { recursive: true });
  for (const [rel, text] of Object.entries(benchConfigFiles({ proxyPort, adminPort, upstreamPort: o.upstreamPort, mintHosts: o.mintHosts, logLevel: o.logLevel }))) {
    writeFileSync(path.join(o.dir, rel), text);
  }
  writeFileSync(path.join(o.dir, 'upstream-ca.pem'), o.upstreamCaPem);
  const configFile = path.join(o.dir, 'tollgate.yaml');
  const logFile = path.join(o.dir, 'gateway.log');
  const out = openSync(logFile, 'a');
  // The gateway's structured log goes to a file, as it would in production (not through a pipe
  // that the bench process would have to drain on the measured cores).
  const probeFile = path.join(o.dir, 'memory.json');
  const child = spawn(process.execPath, ['--expose-gc', `--import=${probeModule}`, ...o.nodeArgs, path.join(o.repoRoot, 'bin/tollgate'), 'serve', '--config', configFile], {
    cwd: o.dir,
    stdio: ['ignore', out, out],
    env: { ...process.env, TOLLGATE_BENCH_PROBE_FILE: probeFile },
  });
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the gateway');
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitReady(adminUrl, child, logFile, 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const caFile = path.join(o.dir, 'certs/ca.pem');
  const caPem = existsSync(caFile) ? readFileSync(caFile, 'utf8') : cli(o.repoRoot, ['ca', 'export', '--config', configFile]).stdout;
  if (!caPem.includes('BEGIN CERTIFICATE')) throw new Error(`could not read the gateway CA from ${caFile}`);
  const token = o.issueToken ? issueBenchToken(o.repoRoot, configFile) : undefined;
  const proxyAuthorization = token === undefined ? undefined : `Basic ${Buffer.from(`${BENCH_TEAM}:${token}`).toString('base64')}`;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    pid,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    proxyPort,
    adminUrl,
    caPem,
    configFile,
    logFile,
    token,
    proxyAuthorization,
    cpuMicros: () => procCpuMicros(pid),
    rssKiB: () => procRssKiB(pid),
    async memoryAfterGc() {
      rmSync(probeFile, { force: true });
      child.kill('SIGUSR2');
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        if (!existsSync(probeFile)) continue;
        const m = JSON.parse(readFileSync(probeFile, 'utf8')) as GatewayMemory & { gc: boolean };
        if (!m.gc) throw new Error('the gateway probe has no gc() (was --expose-gc dropped?)');
        return m;
      }
      throw new Error('the gateway did not answer the memory probe (SIGUSR2) within 5 s');
    },
    async loopDelay() {
      const loopFile = `${probeFile}.loop`;
      rmSync(loopFile, { force: true });
      child.kill('SIGWINCH');
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        if (existsSync(loopFile)) return JSON.parse(readFileSync(loopFile, 'utf8')) as LoopDelay;
      }
      throw new Error('the gateway did not answer the loop-delay probe (SIGWINCH) within 5 s');
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
