// Owns: the coverage gate of a whole test run (scripts/run-tests.mjs). The run writes every
// process's V8 coverage (NODE_V8_COVERAGE) into one directory; the gate then
//   1. reports src/ as a whole (text summary) and holds it above the floor in .c8rc.json, and
//   2. reports the pure core (.c8rc.pure.json) from the unit-test processes ALONE and holds
//      every file there at 100 % of lines and branches: the unit tests are what covers pure code.
// Either failing fails the run. The raw dumps are large and are removed once read.
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = path.resolve(import.meta.dirname, '..');
const C8 = path.join(ROOT, 'node_modules', '.bin', 'c8');

/** Where one run's dumps go: its own directory, so runs in the same tree never share one. */
export function coverageRunDir(root = ROOT, id = process.pid) {
  return path.join(root, 'test-artifacts', 'coverage', `run-${id}`);
}

/** Removes the dump directories of runs whose process is gone (interrupted before cleaning up). */
export function removeStaleRuns(root = ROOT) {
  const base = path.join(root, 'test-artifacts', 'coverage');
  let names = [];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = /^run-(\d+)$/.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    rmSync(path.join(base, name), { recursive: true, force: true });
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** `c8 report` with a config file, over one directory of dumps; status and output. */
export function c8Report({ config, tempDirectory, cwd = ROOT, check = true, reportDir }) {
  const args = ['report', '--config', config, '--temp-directory', tempDirectory];
  if (!check) args.push('--check-coverage=false');
  if (reportDir !== undefined) args.push('--report-dir', reportDir);
  const r = spawnSync(C8, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? 1, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/**
 * Links (no copy) into `to` the dumps that contain `marker` — for the `"url":"file:///…/test/unit/`
 * prefix of a script, the processes that ran a unit test file. Returns how many.
 */
export function selectDumps(from, to, marker) {
  mkdirSync(to, { recursive: true });
  let n = 0;
  for (const name of readdirSync(from)) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(from, name);
    if (!readFileSync(file).includes(marker)) continue;
    linkSync(file, path.join(to, name));
    n++;
  }
  return n;
}

/**
 * Runs both reports over `dir/all` and prints them; `check: false` reports without thresholds
 * (a partial run cannot meet them). Report files go where the configs say unless `reportDir` is
 * given. Returns true when every threshold held.
 */
export function runCoverageGate(dir, { check = true, log = (s) => process.stdout.write(s), reportDir } = {}) {
  const all = path.join(dir, 'all');
  const unit = path.join(dir, 'unit');
  try {
    const units = selectDumps(all, unit, `"url":"${pathToFileURL(path.join(ROOT, 'test', 'unit')).href}/`);
    log('\n# Coverage of src/ over every process of this run (floor: .c8rc.json)\n');
    const whole = c8Report({ config: '.c8rc.json', tempDirectory: all, check, reportDir });
    log(whole.output);
    log(`\n# Pure core from the ${units} unit-test processes alone (.c8rc.pure.json: 100 % lines and branches per file; files at 100 % are not listed)\n`);
    const pure = c8Report({ config: '.c8rc.pure.json', tempDirectory: unit, check, reportDir });
    log(pure.output);
    const ok = whole.status === 0 && pure.status === 0;
    if (check) log(ok ? '# coverage gate: passed\n' : '# coverage gate: FAILED (see the ERROR lines above)\n');
    return ok;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
