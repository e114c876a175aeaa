// Owns: the library behind `tollgate policy check | test | explain`: load, compile, run, and
// return text and an exit code. The CLI only parses arguments and prints. Shell: reads files.
import path from 'node:path';
import { formatProblem, type Problem } from '../errors.ts';
import { diffDecisions, explainRequest, formatTestReport, runPolicyTests, type PolicyTestReport } from '../policy/run-policy-tests.ts';
import { readCaFile } from '../upstream/connection-trust.ts';
import type { ParsedOrg } from './org-config.ts';
import { loadOrgAndPolicies, loadPolicyTests } from './policy-source.ts';

export interface PolicyPaths {
  /** org.yaml. */
  readonly orgFile: string;
  /** policies directory; default <org dir>/policies. */
  readonly policiesDir?: string | undefined;
  /** Whether a secret resolves; omit in CI where secret values are absent. */
  readonly secretExists?: ((name: string) => boolean) | undefined;
}

export interface CheckOutcome {
  readonly problems: readonly Problem[];
  readonly warnings: readonly Problem[];
  /** 0 valid, 1 invalid. */
  readonly exitCode: 0 | 1;
  /** problems and warnings as `file:line:col: message` lines, then a summary line. */
  readonly text: string;
}

function render(problems: readonly Problem[], warnings: readonly Problem[], summary: string): string {
  return `${[...problems, ...warnings].map(formatProblem).join('\n')}${problems.length + warnings.length > 0 ? '\n' : ''}${summary}\n`;
}

/**
 * Every connection `ca:` file the gateway could not use — missing, unreadable, not PEM
 * certificates, or holding a key — read and checked as the gateway reads it at start-up (which
 * refuses to start on such a file), reported at the `ca:` key. Paths are relative to org.yaml.
 */
function connectionCaProblems(org: ParsedOrg, orgFile: string): Problem[] {
  const orgDir = path.dirname(path.resolve(orgFile));
  const problems: Problem[] = [];
  for (const [key, project] of Object.entries(org.value.projects ?? {})) {
    for (const [i, c] of project.connections.entries()) {
      if (c.ca === undefined || c.ca === '') continue;
      const r = readCaFile(path.resolve(orgDir, c.ca));
      if (r.ok) continue;
      problems.push({
        ...org.source.positionOf(['projects', key, 'connections', i, 'ca']),
        severity: 'error',
        message: `connection ${key}/${c.name}: ca: ${c.ca}: ${r.problem} (the gateway refuses to start with it)`,
      });
    }
  }
  return problems;
}

/**
 * `tollgate policy check`: validates org.yaml (and the connection CA files it names), _org.yaml,
 * every team policy and every test file.
 */
export function policyCheck(paths: PolicyPaths): CheckOutcome {
  const loaded = loadOrgAndPolicies(paths);
  const tests = loadPolicyTests(paths);
  const caProblems = loaded.parsedOrg ? connectionCaProblems(loaded.parsedOrg, paths.orgFile) : [];
  const problems = [...(loaded.ok ? [] : loaded.problems), ...caProblems, ...(tests.ok ? [] : tests.problems)];
  const warnings = loaded.warnings;
  const exitCode = problems.length > 0 ? 1 : 0;
  const summary = exitCode === 0
    ? `policy OK: ${loaded.ok ? loaded.bundle.teams.size : 0} team policies${warnings.length ? `, ${warnings.length} warning(s)` : ''}`
    : `policy invalid: ${problems.length} error(s)${warnings.length ? `, ${warnings.length} warning(s)` : ''}`;
  return { problems, warnings, exitCode, text: render(problems, warnings, summary) };
}

export interface TestOutcome {
  readonly report: PolicyTestReport | null;
  readonly problems: readonly Problem[];
  /** 0 all passed, 1 a test failed or the policy is invalid. */
  readonly exitCode: 0 | 1;
  readonly text: string;
}

/** `tollgate policy test`: runs policies/tests/*.yaml against the compiled policy. */
export function policyTest(paths: PolicyPaths & { readonly testsDir?: string | undefined }): TestOutcome {
  const loaded = loadOrgAndPolicies(paths);
  if (!loaded.ok) return { report: null, problems: loaded.problems, exitCode: 1, text: render(loaded.problems, [], 'policy invalid; no tests run') };
  const tests = loadPolicyTests(paths);
  if (!tests.ok) return { report: null, problems: tests.problems, exitCode: 1, text: render(tests.problems, [], 'test files invalid; no tests run') };
  if (tests.files.length === 0) return { report: null, problems: [], exitCode: 1, text: 'no test files found under policies/tests/\n' };
  const report = runPolicyTests(loaded.bundle, tests.files);
  return { report, problems: [], exitCode: report.failed === 0 ? 0 : 1, text: formatTestReport(report) };
}

/** `tollgate policy explain --team T [--project P] [--agent A] METHOD URL`. */
export function policyExplain(paths: PolicyPaths, q: { team: string; project?: string | undefined; agent?: string | undefined; method: string; url: string }):
  { exitCode: 0 | 1 | 2; text: string } {
  const loaded = loadOrgAndPolicies(paths);
  if (!loaded.ok) return { exitCode: 1, text: render(loaded.problems, [], 'policy invalid') };
  const r = explainRequest(loaded.bundle, q);
  if (!r.ok) return { exitCode: 2, text: `${r.message}\n` };
  return { exitCode: 0, text: r.text };
}

/**
 * `tollgate policy diff OLD NEW`: runs the test requests of both trees against both policies and
 * lists those whose decision (effect or reason) changes. Exit 0 when nothing changes, 1 otherwise.
 */
export function policyDiff(before: PolicyPaths, after: PolicyPaths): { exitCode: 0 | 1 | 2; text: string } {
  const a = loadOrgAndPolicies(before);
  if (!a.ok) return { exitCode: 2, text: render(a.problems, [], 'the OLD policy is invalid') };
  const b = loadOrgAndPolicies(after);
  if (!b.ok) return { exitCode: 2, text: render(b.problems, [], 'the NEW policy is invalid') };
  const files = [before, after].flatMap((p) => {
    const t = loadPolicyTests(p);
    return t.ok ? t.files : [];
  });
  const seen = new Set<string>();
  const changes = diffDecisions(a.bundle, b.bundle, files).filter((c) => {
    const key = `${c.team} ${c.request}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const distinct = new Set(files.flatMap((f) => f.cases.map((c) => `${c.team} ${c.agent ?? ''} ${c.request}`))).size;
  if (changes.length === 0) return { exitCode: 0, text: `no test request changes decision (${distinct} requests)\n` };
  const lines = changes.map((c) => `${c.where}: ${c.team} ${c.request}\n    ${c.before.effect} (${c.before.reason}, ${c.before.rule ?? 'no rule'}) → ${c.after.effect} (${c.after.reason}, ${c.after.rule ?? 'no rule'})`);
  return { exitCode: 1, text: `${lines.join('\n')}\n${changes.length} request(s) change decision\n` };
}
