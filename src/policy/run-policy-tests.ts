// Owns: `tollgate policy test` and `tollgate policy explain` as pure functions of a compiled
// policy set: reading "METHOD URL" the way the proxy would (same parsers, same normalisation),
// running YAML test cases, reporting failures with file:line and the rules no test exercised.
// PURE (the test files arrive parsed; see src/config/policy-source.ts).
import { normalizePath } from '../classify/normalize-path.ts';
import { parseAbsoluteUrl, parseConnectTarget } from '../classify/parse-target.ts';
import type { PolicyTestCaseSource } from '../config/policy-schemas.ts';
import type { YamlSource } from '../config/yaml-source.ts';
import { decide } from './decide.ts';
import { explainDecision } from './explain.ts';
import type { CompiledPolicySet, Decision, DecisionRequest, Principal } from './types.ts';

export type ParsedTestRequest = { ok: true; request: DecisionRequest; url: string; query: string } | { ok: false; message: string };

/** "GET https://api.github.com/user" or "CONNECT api.github.com:443" → a normalised request. */
export function parseRequestLine(method: string, target: string): ParsedTestRequest {
  if (!/^[A-Z][A-Z0-9_-]*$/.test(method)) return { ok: false, message: `method "${method}" must be an upper-case token (GET, POST, …)` };
  if (method === 'CONNECT') {
    const t = parseConnectTarget(target);
    if (!t.ok) return { ok: false, message: `"${target}": ${t.message}` };
    return { ok: true, request: { host: t.host, hostKind: t.kind, port: t.port, method, scheme: 'https' }, url: target, query: '' };
  }
  const u = parseAbsoluteUrl(target);
  if (!u.ok) return { ok: false, message: `"${target}": ${u.message}` };
  if (u.scheme !== 'http' && u.scheme !== 'https') return { ok: false, message: `"${target}": use http:// or https://` };
  const p = normalizePath(u.rawPath);
  if (!p.ok) return { ok: false, message: `"${target}": ${p.message} (the gateway answers such requests with 400)` };
  return {
    ok: true,
    request: { host: u.host, hostKind: u.kind, port: u.port, method, path: p.path, scheme: u.scheme },
    url: target,
    query: u.query,
  };
}

export interface TestCaseInput {
  readonly file: string;
  readonly source: YamlSource;
  readonly cases: readonly PolicyTestCaseSource[];
}

export interface PolicyTestResult {
  /** "policies/tests/sre.yaml:12" */
  readonly where: string;
  readonly name: string;
  readonly passed: boolean;
  readonly failures: readonly string[];
  readonly decision: Decision | null;
}

export interface PolicyTestReport {
  readonly results: readonly PolicyTestResult[];
  readonly passed: number;
  readonly failed: number;
  /** rule and binding ids (file:line) no test case exercised. */
  readonly uncovered: readonly string[];
}

export function runPolicyTests(set: CompiledPolicySet, files: readonly TestCaseInput[]): PolicyTestReport {
  const results: PolicyTestResult[] = [];
  const covered = new Set<string>();
  for (const f of files) {
    f.cases.forEach((c, i) => {
      const pos = f.source.positionOf(['tests', i]);
      const where = `${pos.file}:${pos.line}`;
      const name = c.name ?? c.request;
      const space = c.request.indexOf(' ');
      const parsed = parseRequestLine(c.request.slice(0, space), c.request.slice(space + 1));
      if (!parsed.ok) {
        results.push({ where, name, passed: false, failures: [parsed.message], decision: null });
        return;
      }
      const principal: Principal = { team: c.team, project: c.project, agent: c.agent };
      const d = decide(set, principal, parsed.request);
      for (const id of d.matched) covered.add(id);
      if (d.rule) covered.add(d.rule);
      const failures: string[] = [];
      if (d.effect !== c.expect) failures.push(`expected ${c.expect}, got ${d.effect} (${d.reason}, rule ${d.rule ?? 'none'}): ${d.explanation}`);
      if (c.rule !== undefined && d.rule !== c.rule) failures.push(`expected rule ${c.rule}, got ${d.rule ?? 'none'}`);
      if (c.reason !== undefined && d.reason !== c.reason) failures.push(`expected reason ${c.reason}, got ${d.reason}`);
      if (c.credentials !== undefined) {
        const got = d.credentials.map((b) => b.name).sort();
        const want = [...c.credentials].sort();
        if (got.join(',') !== want.join(',')) failures.push(`expected credentials [${want.join(', ')}], got [${got.join(', ')}]`);
      }
      results.push({ where, name, passed: failures.length === 0, failures, decision: d });
    });
  }
  const passed = results.filter((r) => r.passed).length;
  return { results, passed, failed: results.length - passed, uncovered: set.ruleIds.filter((id) => !covered.has(id)) };
}

/** Human text of a test report, as `tollgate policy test` prints it. */
export function formatTestReport(report: PolicyTestReport): string {
  const lines: string[] = [];
  for (const r of report.results) {
    if (r.passed) continue;
    lines.push(`FAIL ${r.where}: ${r.name}`);
    for (const f of r.failures) lines.push(`  ${f}`);
  }
  lines.push(`${report.passed} passed, ${report.failed} failed`);
  if (report.uncovered.length > 0) {
    lines.push(`${report.uncovered.length} rule(s) no test exercises:`);
    for (const id of report.uncovered) lines.push(`  ${id}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `tollgate policy explain --team T [--project P] [--agent A] METHOD URL` as text. */
export function explainRequest(set: CompiledPolicySet, q: { team: string; project?: string | undefined; agent?: string | undefined; method: string; url: string }):
  { ok: true; text: string; decision: Decision } | { ok: false; message: string } {
  const parsed = parseRequestLine(q.method, q.url);
  if (!parsed.ok) return parsed;
  const decision = decide(set, { team: q.team, project: q.project, agent: q.agent }, parsed.request);
  return { ok: true, text: explainDecision(decision, { method: q.method, url: q.url }), decision };
}

export interface DecisionChange {
  readonly where: string;
  readonly request: string;
  readonly team: string;
  readonly before: { effect: string; reason: string; rule: string | null };
  readonly after: { effect: string; reason: string; rule: string | null };
}

/** `tollgate policy diff OLD NEW`: the test requests whose decision (effect, reason or rule) changes. */
export function diffDecisions(before: CompiledPolicySet, after: CompiledPolicySet, files: readonly TestCaseInput[]): DecisionChange[] {
  const changes: DecisionChange[] = [];
  for (const f of files) {
    f.cases.forEach((c, i) => {
      const space = c.request.indexOf(' ');
      const parsed = parseRequestLine(c.request.slice(0, space), c.request.slice(space + 1));
      if (!parsed.ok) return;
      const principal: Principal = { team: c.team, project: c.project, agent: c.agent };
      const a = decide(before, principal, parsed.request);
      const b = decide(after, principal, parsed.request);
      // A decision changes when its effect or reason does; a rule that only moved (line numbers) does not count.
      if (a.effect === b.effect && a.reason === b.reason) return;
      const pos = f.source.positionOf(['tests', i]);
      changes.push({
        where: `${pos.file}:${pos.line}`,
        request: c.request,
        team: c.team,
        before: { effect: a.effect, reason: a.reason, rule: a.rule },
        after: { effect: b.effect, reason: b.reason, rule: b.rule },
      });
    });
  }
  return changes;
}
