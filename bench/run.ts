// Owns: `npm run bench` — starts the upstream origin (child process) and a Tollgate gateway
// (child process, self-contained config in a temp dir), runs the scenarios direct and through
// Tollgate, judges the targets of issue 2, prints the tables and writes bench/results/latest.json.
//
//   npm run bench                       full run (≈ 4 min; #12 needs squid-openssl)
//   npm run bench -- --only 3,7         some scenarios
//   npm run bench -- --seconds 5        longer measured runs (default 3 s per side)
//   npm run bench -- --cpu-prof         gateway under --cpu-prof; prints its top self-time functions
//   npm run bench -- --keep             keep the temp dir (config, gateway log, profile)
//   npm run bench -- --no-token         send no proxy token (shows how a 407 is reported)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchDecisions, formatDecisions, type DecisionResults } from './decide.ts';
import { benchUsageParse, formatUsageParse, type UsageParseResults } from './usage-parse.ts';
import { classifyFailure } from './lib/failures.ts';
import { INTERCEPT_HOST, METERED_HOST, TUNNEL_HOST, startBenchGateway, tail, type BenchGateway } from './lib/gateway.ts';
import { selfCpuMicros } from './lib/proc.ts';
import { startBenchUpstream, type BenchUpstream } from './lib/upstream.ts';
import { formatProfile, summariseProfiles } from './profile-summary.ts';
import { formatScenarios, formatTargets, judgeTargets } from './report.ts';
import { scenarios, smokeTest, type BenchContext, type ScenarioResult } from './scenarios.ts';
import { makeTestCa } from '../test/helpers/test-pki.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    'warmup-ms': { type: 'string', default: '500' },
    'mint-hosts': { type: 'string', default: '50' },
    'idle-connections': { type: 'string', default: '500' },
    'cpu-prof': { type: 'boolean', default: false },
    'no-decisions': { type: 'boolean', default: false },
    'no-token': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(repoRoot, 'bench/results/latest.json') },
  },
});

const out = (s: string) => process.stdout.write(s);

function gitDescribe(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], { cwd: repoRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const only = args.only ? new Set(args.only.split(',').map((s) => s.trim())) : undefined;
  const durationMs = Math.round(Number(args.seconds) * 1000);
  const logLevel = args['log-level'] as 'debug' | 'info' | 'warn' | 'error';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-'));
  const profDir = path.join(dir, 'prof');
  let gw: BenchGateway | undefined;
  let up: BenchUpstream | undefined;
  const started = Date.now();
  const results: ScenarioResult[] = [];
  let decisions: DecisionResults | undefined;
  let failure: string | undefined;
  try {
    out(`Tollgate bench — ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, gateway ${gitDescribe()}\n`);
    const pki = await makeTestCa('Tollgate Bench Upstream CA');
    const leaf = await pki.issue([INTERCEPT_HOST, `*.${INTERCEPT_HOST}`, TUNNEL_HOST, METERED_HOST, '127.0.0.1']);
    up = await startBenchUpstream(leaf);
    gw = await startBenchGateway({
      dir, repoRoot, upstreamPort: up.port, upstreamCaPem: pki.caPem,
      mintHosts: Number(args['mint-hosts']),
      nodeArgs: args['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
      logLevel,
      issueToken: !args['no-token'],
    });
    out(`gateway pid ${gw.pid} on ${gw.proxyUrl} (admin ${gw.adminUrl}), upstream pid ${up.pid} on 127.0.0.1:${up.port}, ` +
      `proxy token: ${gw.token ? 'issued' : args['no-token'] ? 'none (--no-token)' : 'none (no `tollgate token issue` yet)'}, temp dir ${dir}\n`);
    const upstream = up;
    const gateway = gw;
    const ctx: BenchContext = {
      gw: gateway, up: upstream, upstreamCaPem: pki.caPem, durationMs, warmupMs: Number(args['warmup-ms']),
      mintHosts: Number(args['mint-hosts']), idleConnections: Number(args['idle-connections']),
      cpu: { gateway: gateway.cpuMicros, upstream: upstream.cpuMicros, loadgen: selfCpuMicros },
      log: (s) => out(`${s}\n`),
    };
    await smokeTest(ctx);
    for (const s of scenarios) {
      if (only && !only.has(s.id)) continue;
      const t0 = Date.now();
      out(`  #${s.id} ${s.title} … `);
      const r = await s.run(ctx);
      results.push(r);
      out(`${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    }
  } catch (err) {
    const refused = classifyFailure(err);
    failure = refused ? `STOPPED: ${refused.message}` : `FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`;
    out(`\n${failure}\n`);
    if (gw) out(`gateway log (last lines, ${gw.logFile}):\n${tail(gw.logFile, 10)}\n`);
  } finally {
    await gw?.stop();
    up?.stop();
  }
  if (!args['no-decisions'] && (!only || only.has('decide'))) {
    out('  policy decisions … ');
    try {
      decisions = await benchDecisions(undefined, () => undefined);
      out(`${decisions.present ? 'done' : 'policy engine not present'}\n`);
    } catch (err) {
      out(`failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }

  let usageParse: UsageParseResults | undefined;
  if (!only || only.has('parse') || only.has('10')) {
    out('  usage parser … ');
    usageParse = benchUsageParse();
    out('done\n');
  }

  const targets = judgeTargets(results);
  if (results.length > 0) {
    out('\n' + formatScenarios(results) + '\n');
    out(formatTargets(targets) + '\n');
  }
  if (decisions) out(formatDecisions(decisions) + '\n');
  if (usageParse) out(formatUsageParse(usageParse) + '\n');
  let profile: ReturnType<typeof summariseProfiles> | undefined;
  if (args['cpu-prof']) {
    profile = summariseProfiles(profDir, 25);
    out(formatProfile(profile) + '\n');
  }

  const json = {
    date: new Date(started).toISOString(),
    duration_s: Math.round((Date.now() - started) / 100) / 10,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? null, node: process.version, platform: `${os.platform()} ${os.release()}` },
    gateway: { commit: gitDescribe(), token: gw?.token ? 'issued' : 'none', log_level: logLevel, cpu_prof: args['cpu-prof'] },
    settings: { seconds: durationMs / 1000, warmup_ms: Number(args['warmup-ms']), mint_hosts: Number(args['mint-hosts']), idle_connections: Number(args['idle-connections']) },
    failure: failure ?? null,
    scenarios: results,
    targets,
    decisions: decisions ?? null,
    usage_parse: usageParse ?? null,
    profile: profile ?? null,
  };
  mkdirSync(path.dirname(args.out), { recursive: true });
  writeFileSync(args.out, JSON.stringify(json, null, 2) + '\n');
  out(`wrote ${path.relative(process.cwd(), args.out)} (${json.duration_s} s)\n`);
  if (args.keep || args['cpu-prof']) out(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
  return failure ? 1 : 0;
}

process.exitCode = await main();
