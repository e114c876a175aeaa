// docs/reference/*-yaml.md are generated from the config schemas; this fails when a page is stale.
// Fix by running `node --import tsx scripts/generate-config-docs.ts` and committing the pages.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Type } from '../../../src/config/typebox.ts';
import { parse } from 'yaml';
import { parseGatewayConfig } from '../../../src/config/gateway-config.ts';
import { parseOrgConfig } from '../../../src/config/org-config.ts';
import { OrgPolicySchema, OrgSchema, PolicyTestFileSchema, TeamPolicySchema } from '../../../src/config/policy-schemas.ts';
import { parsePolicyDocument } from '../../../src/config/policy-source.ts';
import { parsePriceTable } from '../../../src/config/price-config.ts';
import { compilePolicySet } from '../../../src/policy/compile.ts';
import { runPolicyTests } from '../../../src/policy/run-policy-tests.ts';
import {
  CONFIG_PAGES, keyRows, REFERENCE_DIR, renderConfigDocs, renderConfigPage, UndocumentedKeysError, type ConfigPage,
} from '../../../scripts/generate-config-docs.ts';
import { REPO_ROOT } from '../../../scripts/docs-page.ts';

t.test('docs/reference/*-yaml.md match the schemas', async (t) => {
  for (const page of renderConfigDocs()) {
    const current = readFileSync(page.path, 'utf8');
    t.ok(current === page.text, `${path.relative(REPO_ROOT, page.path)} is stale: run node --import tsx scripts/generate-config-docs.ts`);
  }
});

t.test('every key of every schema has a row with a description', async (t) => {
  for (const p of CONFIG_PAGES) {
    const page = readFileSync(path.join(REFERENCE_DIR, p.page), 'utf8');
    const rows = keyRows(p.schema);
    t.ok(rows.length > 5, `${p.configFile} has its keys`);
    for (const r of rows) {
      t.ok(r.description?.trim(), `${p.configFile} ${r.key} is described`);
      t.ok(page.includes(`| \`${r.key}\` |`), `${p.configFile} ${r.key} has a row`);
    }
  }
});

t.test('the generator refuses a key without a description', async (t) => {
  const page: ConfigPage = {
    page: 'x.md', configFile: 'x.yaml', schemaSource: 'a test', intro: [],
    schema: Type.Object({
      described: Type.Optional(Type.String({ description: 'has one' })),
      nested: Type.Optional(Type.Object({ bare: Type.Integer() }, { description: 'has one' })),
      list: Type.Optional(Type.Array(Type.Object({ bare: Type.Boolean() }), { description: 'has one' })),
    }),
  };
  let thrown: unknown;
  try {
    renderConfigPage(page);
  } catch (err) {
    thrown = err;
  }
  t.ok(thrown instanceof UndocumentedKeysError, 'an UndocumentedKeysError');
  t.same((thrown as UndocumentedKeysError).keys, ['nested.bare', 'list[].bare'], 'naming every undocumented key');
});

/** The YAML of each `## Example` block of a page. */
function examplesOf(page: string): string[] {
  return [...page.matchAll(/```yaml\n([\s\S]*?)\n```/g)].map((m) => m[1] ?? '');
}

t.test('the policy examples make one policy set whose test cases pass', async (t) => {
  const example = (schema: { examples?: unknown[] }) => JSON.stringify(schema.examples?.[0]);
  const org = parseOrgConfig('org.yaml', example(OrgSchema));
  const team = parsePolicyDocument('policies/sre.yaml', example(TeamPolicySchema), TeamPolicySchema, 'team policy');
  const guardrails = parsePolicyDocument('policies/_org.yaml', example(OrgPolicySchema), OrgPolicySchema, 'guardrail file');
  const tests = parsePolicyDocument('policies/tests/sre.yaml', example(PolicyTestFileSchema), PolicyTestFileSchema, 'test file');
  if (!org.ok || !team.ok || !guardrails.ok || !tests.ok) return t.fail('an example does not parse', { org, team, guardrails, tests });
  const set = compilePolicySet({ org: org.parsed, guardrails: guardrails.input, teamPolicies: new Map([['sre', team.input]]) });
  if (!set.ok) return t.fail('the examples do not compile', { problems: set.problems });
  const report = runPolicyTests(set.set, [{ file: 'policies/tests/sre.yaml', source: tests.input.source, cases: tests.input.value.tests }]);
  t.equal(report.failed, 0, 'every example test case passes', { failures: report.results.filter((r) => !r.passed) });
  t.ok(report.passed >= 5, 'the cases ran');
});

t.test('every example on the pages is accepted by its loader', async (t) => {
  const accept: Record<string, (text: string) => { ok: boolean }> = {
    'tollgate.yaml': (text) => parseGatewayConfig('/srv/tollgate/tollgate.yaml', text, { SLACK_WEBHOOK_URL: 'https://hooks.slack.example/services/x' }),
    'org.yaml': (text) => parseOrgConfig('org.yaml', text),
    'policies/<team>.yaml': (text) => parsePolicyDocument('policies/sre.yaml', text, TeamPolicySchema, 'team policy'),
    'policies/_org.yaml': (text) => parsePolicyDocument('policies/_org.yaml', text, OrgPolicySchema, 'guardrail file'),
    'policies/tests/*.yaml': (text) => parsePolicyDocument('policies/tests/sre.yaml', text, PolicyTestFileSchema, 'test file'),
    'prices.yaml': (text) => parsePriceTable('prices.yaml', text),
  };
  for (const p of CONFIG_PAGES) {
    const check = accept[p.configFile];
    if (!check) {
      t.fail(`no loader for the examples of ${p.configFile}`);
      continue;
    }
    const examples = examplesOf(renderConfigPage(p));
    t.ok(examples.length > 0, `${p.configFile} has an example`);
    for (const e of examples) {
      t.ok(parse(e), `${p.configFile}: the example is YAML`);
      const r = check(e);
      t.ok(r.ok, `${p.configFile}: the example loads`, r);
    }
  }
});
