// Owns: timing the policy decision (src/policy/decide.ts) for team policies of 10, 1,000 and
// 10,000 rules: compile time once, then nanoseconds per decision for a first-rule hit, a
// last-rule hit, a wildcard hit, an HTTP-rule hit and a miss (denied by the closing `*`).
// The engine is loaded by dynamic import, so the bench runs (and says so) without it.
// Run alone: node --import tsx bench/decide.ts
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './lib/load.ts';

interface DecisionRequestLike {
  host: string; hostKind: 'dns'; port: number; method: string; path?: string; scheme: 'https';
}
type DecideFn = (set: unknown, principal: { team: string }, req: DecisionRequestLike) => { effect: string; rule: string | null };
type LoadFn = (opts: { orgFile: string; policiesDir?: string }) =>
  | { ok: true; bundle: unknown }
  | { ok: false; problems: Array<{ file: string; line: number; col: number; message: string }> };

export interface DecisionCase { name: string; effect: string; nsPerDecision: number; decisionsPerSec: number }
export interface DecisionRow { rules: number; compileMs: number; cases: DecisionCase[] }
export interface DecisionResults { present: boolean; note?: string; rows: DecisionRow[] }

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function importOptional<T>(rel: string): Promise<T | undefined> {
  const spec = pathToFileURL(path.join(repoRoot, rel)).href; // a variable specifier: no compile-time dependency
  try {
    return (await import(spec)) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** A team policy of `n` host rules (the last one `*` deny): exact hosts, wildcards, some with HTTP rules. */
export function policyText(n: number): string {
  const lines = ['team: bench', 'rules:'];
  for (let i = 0; i < n - 1; i++) {
    if (i % 10 === 9) {
      lines.push(`  - host: api${i}.example.com`, '    action: allow', '    http:',
        '      - { method: GET, path: "/api/**", action: allow }',
        '      - { method: POST, path: /api/items, action: allow }',
        '      - { method: DELETE, action: deny }');
    } else if (i % 10 === 4) {
      lines.push(`  - { host: "*.zone${i}.example.net", action: allow }`);
    } else {
      lines.push(`  - { host: svc${i}.example.com, action: ${i % 7 === 3 ? 'direct' : 'allow'} }`);
    }
  }
  lines.push('  - { host: "*", action: deny }', '');
  return lines.join('\n');
}

function cases(n: number): Array<{ name: string; req: DecisionRequestLike }> {
  const last = n - 2; // the last rule before `*`
  const lastHost = last % 10 === 9 ? `api${last}.example.com` : last % 10 === 4 ? `x.zone${last}.example.net` : `svc${last}.example.com`;
  const wild = Math.max(4, Math.floor(n / 2 / 10) * 10 + 4);
  const http = Math.floor(n / 2 / 10) * 10 + 9;
  const base = { hostKind: 'dns' as const, port: 443, scheme: 'https' as const };
  const out: Array<{ name: string; req: DecisionRequestLike }> = [
    { name: 'first rule', req: { ...base, host: 'svc0.example.com', method: 'GET', path: '/' } },
    { name: 'last rule', req: { ...base, host: lastHost, method: 'GET', path: '/api/x' } },
    { name: 'no rule (deny by *)', req: { ...base, host: 'unknown.example.org', method: 'GET', path: '/' } },
    { name: 'CONNECT (tunnel time)', req: { ...base, host: 'svc0.example.com', method: 'CONNECT' } },
  ];
  if (wild < n - 1) out.splice(2, 0, { name: 'wildcard, middle', req: { ...base, host: `a.b.zone${wild}.example.net`, method: 'GET', path: '/' } });
  if (http < n - 1) out.splice(2, 0, { name: 'HTTP rule, middle', req: { ...base, host: `api${http}.example.com`, method: 'POST', path: '/api/items' } });
  return out;
}

function timeDecisions(decide: DecideFn, set: unknown, req: DecisionRequestLike): { ns: number; effect: string } {
  const principal = { team: 'bench' };
  let effect = decide(set, principal, req).effect;
  for (let i = 0; i < 5000; i++) effect = decide(set, principal, req).effect; // warm up (JIT)
  // Five rounds of ~30 ms; the median round is reported (a GC pause lands in one round, not all).
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    let iterations = 0;
    const start = process.hrtime.bigint();
    let now = start;
    while (now - start < 30_000_000n) {
      for (let i = 0; i < 500; i++) decide(set, principal, req);
      iterations += 500;
      now = process.hrtime.bigint();
    }
    rounds.push(Number(now - start) / iterations);
  }
  return { ns: median(rounds), effect };
}

/** Times policy decisions for 10 / 1,000 / 10,000 rules; prints "policy engine not present" without the engine. */
export async function benchDecisions(sizes: readonly number[] = [10, 1_000, 10_000], log: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<DecisionResults> {
  const decideMod = await importOptional<{ decide?: DecideFn }>('src/policy/decide.ts');
  const loadMod = await importOptional<{ loadOrgAndPolicies?: LoadFn }>('src/config/policy-source.ts');
  if (!decideMod?.decide || !loadMod?.loadOrgAndPolicies) {
    log('policy engine not present');
    return { present: false, note: 'policy engine not present', rows: [] };
  }
  const decide = decideMod.decide;
  const load = loadMod.loadOrgAndPolicies;
  const rows: DecisionRow[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-decide-'));
  try {
    for (const n of sizes) {
      mkdirSync(path.join(dir, `${n}`, 'policies'), { recursive: true });
      const orgFile = path.join(dir, `${n}`, 'org.yaml');
      writeFileSync(orgFile, 'organization: Bench\nteams:\n  bench: { name: Bench, idp_groups: [bench], policy: policies/bench.yaml }\n');
      writeFileSync(path.join(dir, `${n}`, 'policies', 'bench.yaml'), policyText(n));
      const t0 = performance.now();
      const loaded = load({ orgFile });
      const compileMs = performance.now() - t0;
      if (!loaded.ok) {
        const p = loaded.problems[0];
        throw new Error(`bench policy of ${n} rules does not compile: ${p ? `${p.file}:${p.line}:${p.col}: ${p.message}` : 'unknown problem'}`);
      }
      const row: DecisionRow = { rules: n, compileMs, cases: [] };
      for (const c of cases(n)) {
        const { ns, effect } = timeDecisions(decide, loaded.bundle, c.req);
        row.cases.push({ name: c.name, effect, nsPerDecision: ns, decisionsPerSec: 1e9 / ns });
      }
      rows.push(row);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { present: true, rows };
}

export function formatDecisions(r: DecisionResults): string {
  if (!r.present) return 'Policy decisions: policy engine not present\n';
  const out = ['Policy decisions (load + compile once, then decide() in a loop; pure, in the bench process):'];
  out.push(`  ${'rules'.padStart(6)}  ${'compile ms'.padStart(10)}  ${'case'.padEnd(24)} ${'effect'.padEnd(7)} ${'ns/decision'.padStart(11)}  ${'decisions/s'.padStart(12)}`);
  for (const row of r.rows) {
    row.cases.forEach((c, i) => {
      out.push(`  ${(i === 0 ? row.rules.toLocaleString('en-US') : '').padStart(6)}  ${(i === 0 ? row.compileMs.toFixed(1) : '').padStart(10)}  ${c.name.padEnd(24)} ${c.effect.padEnd(7)} ${c.nsPerDecision.toFixed(0).padStart(11)}  ${Math.round(c.decisionsPerSec).toLocaleString('en-US').padStart(12)}`);
    });
  }
  return out.join('\n') + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await benchDecisions();
  process.stdout.write(formatDecisions(r));
}
