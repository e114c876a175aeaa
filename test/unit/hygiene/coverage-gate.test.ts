// The coverage gate shown firing (scripts/coverage-gate.mjs). A fixture module with one
// conditional on one line (test/fixtures/coverage-gate) is run under NODE_V8_COVERAGE taking one
// branch, then both; the dumps are checked with the pure core's real thresholds (.c8rc.pure.json,
// pointed at the fixture), so a missing branch must fail the check and full coverage must pass
// it. Assertions are on the exit status and on which threshold and file the check names.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { c8Report, coverageRunDir, ROOT, runCoverageGate, selectDumps } from '../../../scripts/coverage-gate.mjs';

const FIXTURE = path.join(ROOT, 'test/fixtures/coverage-gate');
const PURE = JSON.parse(readFileSync(path.join(ROOT, '.c8rc.pure.json'), 'utf8')) as Record<string, unknown>;

/** A copy of the fixture in a fresh directory, with the pure config retargeted at it. */
function project(t: Test): string {
  const dir = t.testdir({
    src: { 'pick.mjs': readFileSync(path.join(FIXTURE, 'src/pick.mjs'), 'utf8') },
    'exercise.mjs': readFileSync(path.join(FIXTURE, 'exercise.mjs'), 'utf8'),
  });
  const config = { ...PURE, src: ['src'], include: ['src/**/*.mjs'], exclude: [], extension: ['.mjs'], 'report-dir': 'report', 'temp-directory': 'dumps' };
  writeFileSync(path.join(dir, 'pure.json'), JSON.stringify(config));
  return dir;
}

/** Runs the fixture script under coverage, writing its dump into `dumps`. */
function exercise(dir: string, dumps: string, ...args: string[]): string {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_V8_COVERAGE: dumps };
  const r = spawnSync(process.execPath, ['exercise.mjs', ...args], { cwd: dir, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

t.test('the real thresholds are per file, 100 % of lines and branches', async (t) => {
  t.match(PURE, { 'check-coverage': true, 'per-file': true, lines: 100, branches: 100 });
});

t.test('one branch of two: the gate fails and names the file', async (t) => {
  const dir = project(t);
  const dumps = path.join(dir, 'dumps');
  t.equal(exercise(dir, dumps, 'true', 'true'), 'yes\nyes\n');
  const r = c8Report({ config: 'pure.json', tempDirectory: dumps, cwd: dir });
  t.not(r.status, 0, 'non-zero exit');
  t.match(r.output, /\bbranches\b.*\bsrc\/pick\.mjs\b/, 'the branch check names the file');
  t.notMatch(r.output, /\blines\b[^\n]*src\/pick\.mjs/, 'every line ran: only branches fall short');
});

t.test('no call at all: lines fail too', async (t) => {
  const dir = project(t);
  const dumps = path.join(dir, 'dumps');
  exercise(dir, dumps);
  const r = c8Report({ config: 'pure.json', tempDirectory: dumps, cwd: dir });
  t.not(r.status, 0);
  t.match(r.output, /\blines\b[^\n]*src\/pick\.mjs/);
});

t.test('both branches: the gate passes', async (t) => {
  const dir = project(t);
  const dumps = path.join(dir, 'dumps');
  t.equal(exercise(dir, dumps, 'true', 'false'), 'yes\nno\n');
  const r = c8Report({ config: 'pure.json', tempDirectory: dumps, cwd: dir });
  t.equal(r.status, 0, r.output);
  t.equal(c8Report({ config: 'pure.json', tempDirectory: path.join(dir, 'dumps'), cwd: dir, check: false }).status, 0, 'a report without thresholds never fails');
});

t.test('a missing branch without thresholds is reported, not failed', async (t) => {
  const dir = project(t);
  const dumps = path.join(dir, 'dumps');
  exercise(dir, dumps, 'false');
  const r = c8Report({ config: 'pure.json', tempDirectory: dumps, cwd: dir, check: false });
  t.equal(r.status, 0);
  t.match(r.output, /pick\.mjs/, 'the file with a gap is listed');
});

t.test('selectDumps keeps the processes that loaded a marked script', async (t) => {
  const dir = project(t);
  const dumps = path.join(dir, 'dumps');
  exercise(dir, dumps, 'true');
  exercise(dir, dumps, 'false');
  // Under tap every child also runs tap's process-info hooks (a loader thread with its own dump):
  // only the two main threads loaded the fixture.
  const withPick = readdirSync(dumps).filter((f) => readFileSync(path.join(dumps, f), 'utf8').includes('/src/pick.mjs'));
  t.equal(withPick.length, 2, 'one dump per process that ran the fixture');
  t.equal(selectDumps(dumps, path.join(dir, 'none'), '/no/such/marker/'), 0);
  t.equal(selectDumps(dumps, path.join(dir, 'picked'), '/src/pick.mjs'), 2);
  t.same(readdirSync(path.join(dir, 'picked')).sort(), withPick.sort());
});

t.test('runCoverageGate fails a run whose unit tests leave a pure file short, and cleans up', async (t) => {
  // The real configs over a run that covered nothing: the whole-tree floor and the pure check
  // both fail, and the run's dumps are removed.
  const root = t.testdir({});
  const dir = coverageRunDir(root, 1);
  const all = path.join(dir, 'all');
  exercise(project(t), all, 'true');
  const out: string[] = [];
  t.equal(runCoverageGate(dir, { log: (s) => out.push(s), reportDir: path.join(root, 'report') }), false);
  const text = out.join('');
  t.match(text, /ERROR: [^\n]*\blines\b[^\n]*global threshold/, 'the whole-tree floor of .c8rc.json fails');
  t.match(text, /ERROR: [^\n]*\bbranches\b[^\n]*src\/policy\/decide\.ts/, 'a pure file is named');
  t.match(text, /coverage gate: FAILED/);
  t.throws(() => readdirSync(dir), { code: 'ENOENT' }, 'the dumps are gone');
});
