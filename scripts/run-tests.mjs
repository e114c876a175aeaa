// Runs the tap suite over every test/**/*.test.ts (TypeScript loaded through tsx; tap's own
// TypeScript plugin is disabled, so tap is handed the file list explicitly). Extra arguments
// narrow the run: `npm test -- test/unit/classify`.
//
// Coverage: a whole run is measured (every process writes V8 coverage, NODE_V8_COVERAGE) and then
// gated by scripts/coverage-gate.mjs — src/ above the floor of .c8rc.json, and every pure file at
// 100 % of lines and branches from the unit tests alone (.c8rc.pure.json). `--no-coverage` skips
// it; `--coverage` measures a narrowed run too and reports without the thresholds.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { coverageRunDir, removeStaleRuns, runCoverageGate } from './coverage-gate.mjs';

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const OWN_FLAGS = ['--coverage', '--no-coverage'];
const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-') && !OWN_FLAGS.includes(a));
const files = (roots.length ? roots : ['test']).flatMap((r) => (statSync(r).isDirectory() ? collect(r, []) : [r])).sort();
const whole = roots.length === 0;
const measure = !args.includes('--no-coverage') && (whole || args.includes('--coverage'));

if (!measure) {
  const res = spawnSync('node_modules/.bin/tap', [...flags, ...files], { stdio: 'inherit' });
  process.exit(res.status ?? 1);
}

removeStaleRuns();
const dir = coverageRunDir();
rmSync(dir, { recursive: true, force: true });
mkdirSync(path.join(dir, 'all'), { recursive: true });
const res = spawnSync('node_modules/.bin/tap', [...flags, ...files], {
  stdio: 'inherit',
  env: { ...process.env, NODE_V8_COVERAGE: path.join(dir, 'all') },
});
const covered = runCoverageGate(dir, { check: whole });
process.exit(res.status !== 0 ? (res.status ?? 1) : covered ? 0 : 1);
