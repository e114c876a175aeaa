// Owns: reading org.yaml, policies/_org.yaml, every team's policy file and policies/tests/*.yaml
// from disk, and handing them to the pure checks and the compiler. The only file I/O of the policy
// engine. All names in problems and rule ids are relative to the directory of org.yaml.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Problem } from '../errors.ts';
import { compilePolicySet, type PolicyFileInput } from '../policy/compile.ts';
import type { CompiledPolicySet } from '../policy/types.ts';
import { parseOrgConfig, type ParsedOrg } from './org-config.ts';
import {
  OrgPolicySchema, PolicyTestFileSchema, TeamPolicySchema,
  type OrgPolicySource, type PolicyTestCaseSource, type TeamPolicySource,
} from './policy-schemas.ts';
import type { TSchema, Static } from '@sinclair/typebox';
import { validateAgainstSchema } from './validate-schema.ts';
import { parseYamlSource, type YamlSource } from './yaml-source.ts';

export interface LoadOptions {
  readonly orgFile: string;
  /** The policies directory (holds _org.yaml, default team files and tests/). Default: <org dir>/policies. */
  readonly policiesDir?: string | undefined;
  /** Whether a secret of this name resolves; omit to skip (CI without secret values). */
  readonly secretExists?: ((name: string) => boolean) | undefined;
  /** Where a secret would come from, for messages ("TOLLGATE_SECRET_X or secrets/x"). */
  readonly describeSecretSource?: ((name: string) => string) | undefined;
}

export type LoadResult =
  | { ok: true; bundle: CompiledPolicySet; warnings: Problem[]; parsedOrg: ParsedOrg }
  /** `parsedOrg` is there when org.yaml itself parsed and the problems lie elsewhere. */
  | { ok: false; problems: Problem[]; warnings: Problem[]; parsedOrg?: ParsedOrg | undefined };

const MAX_FILE_BYTES = 4 * 1024 * 1024;

function display(root: string, abs: string): string {
  const rel = path.relative(root, abs);
  return rel === '' || rel.startsWith('..') ? abs : rel.split(path.sep).join('/');
}

function readText(abs: string, shown: string): { ok: true; text: string } | { ok: false; problem: Problem } {
  try {
    const st = statSync(abs);
    if (!st.isFile()) return { ok: false, problem: { file: shown, line: 1, col: 1, severity: 'error', message: 'not a regular file' } };
    if (st.size > MAX_FILE_BYTES) return { ok: false, problem: { file: shown, line: 1, col: 1, severity: 'error', message: `the file is larger than ${MAX_FILE_BYTES} bytes` } };
    return { ok: true, text: readFileSync(abs, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, problem: { file: shown, line: 1, col: 1, severity: 'error', message: code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})` } };
  }
}

/** Parses and schema-checks one YAML document that must be a mapping. Pure given the text. */
export function parsePolicyDocument<T extends TSchema>(
  shown: string,
  text: string,
  schema: T,
  what: string,
): { ok: true; input: PolicyFileInput<Static<T>> } | { ok: false; problems: Problem[] } {
  if (text.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) {
    return { ok: false, problems: [{ file: shown, line: 1, col: 1, severity: 'error', message: `the file is empty; a ${what} needs at least ${what === 'team policy' ? 'team: and rules:' : 'rules:'}` }] };
  }
  const parsed = parseYamlSource(shown, text);
  if (!parsed.ok) return parsed;
  const source: YamlSource = parsed.source;
  if (source.value === null || typeof source.value !== 'object' || Array.isArray(source.value)) {
    return { ok: false, problems: [{ ...source.positionOf([]), severity: 'error', message: `a ${what} must be a YAML mapping (key: value), not ${Array.isArray(source.value) ? 'a list' : typeof source.value === 'string' ? 'plain text' : String(source.value)}` }] };
  }
  const checked = validateAgainstSchema(source, schema);
  if (!checked.ok) return checked;
  return { ok: true, input: { source, value: checked.value } };
}

/** Loads and compiles org.yaml and every policy file; never throws for bad input. */
export function loadOrgAndPolicies(opts: LoadOptions): LoadResult {
  const orgAbs = path.resolve(opts.orgFile);
  const root = path.dirname(orgAbs);
  const policiesAbs = path.resolve(opts.policiesDir ?? path.join(root, 'policies'));
  const orgShown = display(root, orgAbs) || 'org.yaml';
  const problems: Problem[] = [];
  const warnings: Problem[] = [];

  const orgText = readText(orgAbs, orgShown);
  if (!orgText.ok) return { ok: false, problems: [orgText.problem], warnings };
  const defaultPolicy = (team: string) => display(root, path.join(policiesAbs, `${team}.yaml`));
  const org = parseOrgConfig(orgShown, orgText.text, defaultPolicy);
  if (!org.ok) return { ok: false, problems: org.problems.filter((p) => p.severity === 'error'), warnings: org.problems.filter((p) => p.severity === 'warning') };
  warnings.push(...org.warnings);

  const teamPolicies = new Map<string, PolicyFileInput<TeamPolicySource>>();
  const used = new Set<string>();
  for (const team of org.parsed.org.teams.values()) {
    const abs = path.resolve(root, team.policyFile);
    used.add(abs);
    const shown = display(root, abs);
    const text = readText(abs, shown);
    if (!text.ok) {
      const at = org.parsed.source.positionOf(['teams', team.key, ...(org.parsed.value.teams[team.key]?.policy ? ['policy'] : [])]);
      problems.push({ ...at, severity: 'error', message: `team ${team.key}: policy file ${shown}: ${text.problem.message}` });
      continue;
    }
    const doc = parsePolicyDocument(shown, text.text, TeamPolicySchema, 'team policy');
    if (!doc.ok) problems.push(...doc.problems);
    else teamPolicies.set(team.key, doc.input);
  }

  let guardrails: PolicyFileInput<OrgPolicySource> | undefined;
  const orgPolicyAbs = path.join(policiesAbs, '_org.yaml');
  used.add(orgPolicyAbs);
  if (existsSync(orgPolicyAbs)) {
    const shown = display(root, orgPolicyAbs);
    const text = readText(orgPolicyAbs, shown);
    if (!text.ok) problems.push(text.problem);
    else {
      const doc = parsePolicyDocument(shown, text.text, OrgPolicySchema, 'guardrail file');
      if (!doc.ok) problems.push(...doc.problems);
      else guardrails = doc.input;
    }
  }
  if (existsSync(policiesAbs)) {
    for (const name of readdirSync(policiesAbs)) {
      if (!/\.ya?ml$/.test(name)) continue;
      const abs = path.join(policiesAbs, name);
      if (!used.has(abs)) warnings.push({ file: display(root, abs), line: 1, col: 1, severity: 'warning', message: `no team in ${orgShown} uses this policy file` });
    }
  }
  if (problems.length > 0) return { ok: false, problems, warnings, parsedOrg: org.parsed };

  const compiled = compilePolicySet({ org: org.parsed, guardrails, teamPolicies, secretExists: opts.secretExists, describeSecretSource: opts.describeSecretSource });
  if (!compiled.ok) return { ok: false, problems: compiled.problems, warnings: [...warnings, ...compiled.warnings], parsedOrg: org.parsed };
  return { ok: true, bundle: compiled.set, warnings: [...warnings, ...compiled.warnings], parsedOrg: org.parsed };
}

export interface LoadedTestFile {
  readonly file: string;
  readonly source: YamlSource;
  readonly cases: readonly PolicyTestCaseSource[];
}

/** Reads every policies/tests/*.yaml (sorted by name). */
export function loadPolicyTests(opts: { orgFile: string; policiesDir?: string | undefined; testsDir?: string | undefined }):
  { ok: true; files: LoadedTestFile[] } | { ok: false; problems: Problem[] } {
  const root = path.dirname(path.resolve(opts.orgFile));
  const dir = path.resolve(opts.testsDir ?? path.join(opts.policiesDir ?? path.join(root, 'policies'), 'tests'));
  if (!existsSync(dir)) return { ok: true, files: [] };
  const files: LoadedTestFile[] = [];
  const problems: Problem[] = [];
  for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    const abs = path.join(dir, name);
    const shown = display(root, abs);
    const text = readText(abs, shown);
    if (!text.ok) {
      problems.push(text.problem);
      continue;
    }
    const doc = parsePolicyDocument(shown, text.text, PolicyTestFileSchema, 'test file');
    if (!doc.ok) problems.push(...doc.problems);
    else files.push({ file: shown, source: doc.input.source, cases: doc.input.value.tests });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, files };
}
