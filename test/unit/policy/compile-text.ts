// Test-only: compiles an org.yaml and team policies given as text, without touching the disk
// (the same pure parsers the loader uses), so a table row can carry its whole configuration.
import { parseOrgConfig } from '../../../src/config/org-config.ts';
import { parsePolicyDocument } from '../../../src/config/policy-source.ts';
import { OrgPolicySchema, TeamPolicySchema } from '../../../src/config/policy-schemas.ts';
import { formatProblem } from '../../../src/errors.ts';
import { compilePolicySet, type CompileInputs, type CompileResult } from '../../../src/policy/compile.ts';
import type { CompiledPolicySet } from '../../../src/policy/types.ts';

export interface PolicyTexts {
  /** org.yaml */
  org: string;
  /** team key → its policy text (as policies/<team>.yaml), or the file it is read from and its text */
  teams: Record<string, string | { file: string; text: string }>;
  /** policies/_org.yaml */
  guardrails?: string | undefined;
}

export function compileTexts(texts: PolicyTexts, opts: Pick<CompileInputs, 'secretExists' | 'describeSecretSource'> = {}): CompileResult {
  const org = parseOrgConfig('org.yaml', texts.org);
  if (!org.ok) throw new Error(org.problems.map(formatProblem).join('\n'));
  const teamPolicies = new Map(Object.entries(texts.teams).map(([team, given]) => {
    const { file, text } = typeof given === 'string' ? { file: `policies/${team}.yaml`, text: given } : given;
    const doc = parsePolicyDocument(file, text, TeamPolicySchema, 'team policy');
    if (!doc.ok) throw new Error(doc.problems.map(formatProblem).join('\n'));
    return [team, doc.input] as const;
  }));
  let guardrails: CompileInputs['guardrails'];
  if (texts.guardrails !== undefined) {
    const doc = parsePolicyDocument('policies/_org.yaml', texts.guardrails, OrgPolicySchema, 'guardrail file');
    if (!doc.ok) throw new Error(doc.problems.map(formatProblem).join('\n'));
    guardrails = doc.input;
  }
  return compilePolicySet({ org: org.parsed, guardrails, teamPolicies, ...opts });
}

export function mustCompileTexts(texts: PolicyTexts): CompiledPolicySet {
  const r = compileTexts(texts);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.set;
}
