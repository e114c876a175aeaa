// Owns: the reference pages of the configuration files under docs/reference/ (tollgate.yaml,
// org.yaml, policies/<team>.yaml, policies/_org.yaml, policies/tests/*.yaml, prices.yaml),
// generated from the TypeBox schemas the loaders validate with: every key with its type and
// bounds, whether it is required, its `default` and its `description`, then the schema's
// `examples`. A key without a description, or a schema without an example, is an error, so a new
// key cannot ship undocumented. test/unit/docs/config-docs.test.ts regenerates the pages and
// compares, and loads every example; config-defaults.test.ts checks the declared defaults against
// what the loaders apply.
//
//   node --import tsx scripts/generate-config-docs.ts          write docs/reference/*-yaml.md
//   node --import tsx scripts/generate-config-docs.ts --check  exit 1 if a page is stale
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Document, isScalar, visit } from 'yaml';
import { GatewayConfigSchema } from '../src/config/gateway-config.ts';
import { OrgPolicySchema, OrgSchema, PolicyTestFileSchema, TeamPolicySchema } from '../src/config/policy-schemas.ts';
import { PriceTableSchema } from '../src/config/price-config.ts';
import { cell, code, isMain, prose, REPO_ROOT, writeOrCheck, type DocsPage } from './docs-page.ts';

const REGENERATE = 'node --import tsx scripts/generate-config-docs.ts';

export interface ConfigPage {
  /** Page file name under docs/reference/. */
  readonly page: string;
  /** The configuration file as people name it. */
  readonly configFile: string;
  readonly schema: TSchema;
  /** Where the schema is defined, for the generated-by note. */
  readonly schemaSource: string;
  /** Published JSON Schema for editors, when there is one. */
  readonly jsonSchema?: string;
  /** What reads the file and where the prose guide is. */
  readonly intro: readonly string[];
  /** A fuller, commented example file in the repository, linked under the examples. */
  readonly fullExample?: string;
}

export const CONFIG_PAGES: readonly ConfigPage[] = [
  {
    page: 'tollgate-yaml.md', configFile: 'tollgate.yaml', schema: GatewayConfigSchema,
    schemaSource: 'GatewayConfigSchema in src/config/gateway-config.ts (alerts: AlertsSchema in src/alerts/alerts-config.ts)',
    intro: [
      'The gateway configuration, read by every verb (`--config FILE`, `$TOLLGATE_CONFIG`, or',
      '`./tollgate.yaml`). `${NAME}` in any string is replaced by the environment variable `NAME`;',
      'relative paths are resolved against the folder of the file. Guide: [configuration.md](../configuration.md).',
    ],
  },
  {
    page: 'org-yaml.md', configFile: 'org.yaml', schema: OrgSchema, schemaSource: 'OrgSchema in src/config/policy-schemas.ts',
    jsonSchema: 'schema/org.schema.json', fullExample: 'org.yaml',
    intro: [
      'The organisation: projects and their connections, teams, managed agents, users, budgets and',
      'admins (path: `org:` in tollgate.yaml). Reloaded on change. Guide: [policy.md](../policy.md).',
    ],
  },
  {
    page: 'policy-yaml.md', configFile: 'policies/<team>.yaml', schema: TeamPolicySchema, schemaSource: 'TeamPolicySchema in src/config/policy-schemas.ts',
    jsonSchema: 'schema/policy.schema.json', fullExample: 'policies/sre.yaml',
    intro: [
      'A team policy: the team\'s ordered host rules and its credential bindings (default file',
      '`policies/<team>.yaml`, or the team\'s `policy:` in org.yaml). Reloaded on change. Guide:',
      '[policy.md](../policy.md).',
    ],
  },
  {
    page: 'org-policy-yaml.md', configFile: 'policies/_org.yaml', schema: OrgPolicySchema, schemaSource: 'OrgPolicySchema in src/config/policy-schemas.ts',
    jsonSchema: 'schema/org-policy.schema.json', fullExample: 'policies/_org.yaml',
    intro: [
      'Org guardrails: deny rules checked before every team policy, which no team can override',
      '(optional). Reloaded on change. Guide: [policy.md](../policy.md).',
    ],
  },
  {
    page: 'policy-tests-yaml.md', configFile: 'policies/tests/*.yaml', schema: PolicyTestFileSchema, schemaSource: 'PolicyTestFileSchema in src/config/policy-schemas.ts',
    jsonSchema: 'schema/policy-test.schema.json', fullExample: 'policies/tests/sre.yaml',
    intro: [
      'Policy test cases, run by `tollgate policy test` (not read by the gateway). Guide:',
      '[policy.md](../policy.md).',
    ],
  },
  {
    page: 'prices-yaml.md', configFile: 'prices.yaml', schema: PriceTableSchema, schemaSource: 'PriceTableSchema in src/config/price-config.ts',
    fullExample: 'prices.yaml',
    intro: [
      'Model prices for metering (path: `prices:` in tollgate.yaml; when that file does not exist the',
      'bundled `prices.yaml` is used). Guide: [metering.md](../metering.md).',
    ],
  },
];

export const REFERENCE_DIR = path.join(REPO_ROOT, 'docs/reference');

/** The JSON Schema view of a schema node (what TypeBox builds is JSON Schema). */
interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  examples?: unknown[];
  const?: unknown;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  required?: string[];
  patternProperties?: Record<string, Node>;
  items?: Node;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  minProperties?: number;
}

/** What the `<placeholder>` of a map's keys is called, by the map's key name. */
const MAP_KEY_NAMES: Readonly<Record<string, string>> = {
  upstreams: 'host', group_map: 'idp-group', projects: 'project', teams: 'team', agents: 'agent',
  users: 'email', providers: 'provider', models: 'model',
};

const ANY_KEY = '^(.*)$';

function json(v: unknown): string {
  return JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ').replace(/\[ /g, '[').replace(/ \]/g, ']').replace(/\{ /g, '{').replace(/ \}/g, '}');
}

function bounds(n: Node): string {
  const parts: string[] = [];
  if (n.exclusiveMinimum !== undefined) parts.push(`> ${n.exclusiveMinimum}`);
  if (n.minimum !== undefined && n.maximum !== undefined) return [...parts, `${n.minimum} to ${n.maximum}`].join(', ');
  if (n.minimum !== undefined) parts.push(`≥ ${n.minimum}`);
  if (n.maximum !== undefined) parts.push(`≤ ${n.maximum}`);
  return parts.join(', ');
}

function mapEntry(n: Node): [string, Node] {
  const entries = Object.entries(n.patternProperties ?? {});
  const [entry] = entries;
  if (entries.length !== 1 || !entry) throw new Error('a map schema must have exactly one key pattern');
  return entry;
}

/** The type of a node in words: `integer, 1 to 50`, `list of string`, one of `a`, `b`. */
export function typeText(n: Node): string {
  if (n.const !== undefined) return code(String(n.const));
  if (n.anyOf) {
    if (n.anyOf.every((v) => v.const !== undefined)) return `one of ${n.anyOf.map((v) => code(String(v.const))).join(', ')}`;
    const [one, list] = n.anyOf;
    if (n.anyOf.length === 2 && one && list?.items && typeText(list.items) === typeText(one)) {
      return `${typeText(one)}, or a list of them${list.minItems ? ` (at least ${list.minItems})` : ''}`;
    }
    return n.anyOf.map(typeText).join(', or ');
  }
  const extra: string[] = [];
  switch (n.type) {
    case 'string':
      if (n.pattern !== undefined) extra.push(`matching ${code(n.pattern)}`);
      else if (n.minLength === 1) extra.push('not empty');
      else if (n.minLength !== undefined) extra.push(`at least ${n.minLength} characters`);
      if (n.maxLength !== undefined) extra.push(`at most ${n.maxLength} characters`);
      break;
    case 'integer':
    case 'number': {
      const b = bounds(n);
      if (b) extra.push(b);
      break;
    }
    case 'array':
      if (!n.items) throw new Error('an array schema needs items');
      return `list of ${n.items.properties ? 'objects' : typeText(n.items)}${n.minItems ? ` (at least ${n.minItems})` : ''}`;
    case 'object':
      if (n.patternProperties) {
        const [keyPattern, value] = mapEntry(n);
        const keys = keyPattern === ANY_KEY ? 'string' : `string matching ${code(keyPattern)}`;
        return `map of ${keys} to ${value.properties ? 'object' : typeText(value)}`;
      }
      if (n.minProperties) extra.push(`at least ${n.minProperties} key${n.minProperties > 1 ? 's' : ''}`);
      break;
    case 'boolean':
      break;
    default:
      throw new Error(`unsupported schema node ${json(n)}`);
  }
  return [n.type, ...extra].join(', ');
}

export interface KeyRow {
  /** Dotted key path: `listen.proxy`, `sso.issuers[].name`, `teams.<team>.name`. */
  readonly key: string;
  readonly type: string;
  readonly required: boolean;
  readonly default: unknown;
  readonly description: string | undefined;
  readonly examples: readonly unknown[] | undefined;
}

/** Every key of a schema, depth first in declaration order. */
export function keyRows(schema: TSchema): KeyRow[] {
  const root = JSON.parse(JSON.stringify(schema)) as Node;
  const rows: KeyRow[] = [];
  const visitObject = (n: Node, prefix: string): void => {
    for (const [k, v] of Object.entries(n.properties ?? {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      rows.push({ key, type: typeText(v), required: (n.required ?? []).includes(k), default: v.default, description: v.description, examples: v.examples });
      visitChildren(v, key, k);
    }
  };
  const visitChildren = (n: Node, key: string, name: string): void => {
    if (n.properties) visitObject(n, key);
    else if (n.type === 'array' && n.items) visitChildren(n.items, `${key}[]`, name);
    else if (n.patternProperties) visitChildren(mapEntry(n)[1], `${key}.<${MAP_KEY_NAMES[name] ?? 'key'}>`, name);
    else if (n.anyOf?.some((v) => v.properties || v.patternProperties)) throw new Error(`${key}: a union of objects is not supported by the docs generator`);
  };
  visitObject(root, '');
  return rows;
}

/** An example value as YAML, with lists of scalars on one line ([50, 80, 100]). */
function exampleYaml(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq(_key, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** Thrown when a schema has keys without a description: the page would not say what they mean. */
export class UndocumentedKeysError extends Error {
  constructor(readonly configFile: string, readonly keys: readonly string[]) {
    super(`${configFile}: every key needs a description in its schema; missing for ${keys.join(', ')}`);
  }
}

/** The whole page of one configuration file (pure: a function of the schema). */
export function renderConfigPage(p: ConfigPage): string {
  const rows = keyRows(p.schema);
  const missing = rows.filter((r) => !r.description?.trim()).map((r) => r.key);
  if (missing.length > 0) throw new UndocumentedKeysError(p.configFile, missing);
  const root = p.schema as Node;
  const out: string[] = [
    `# ${code(p.configFile)} reference`,
    '',
    `<!-- Generated by scripts/generate-config-docs.ts from ${p.schemaSource}; do not edit.`,
    `     Regenerate: ${REGENERATE} -->`,
    '',
    ...p.intro,
    '',
    'Unknown keys and wrong types are errors reported as `file:line:col: message`. A key marked',
    'required is required whenever the object holding it is present; `[]` stands for every item of',
    'a list and `<name>` for every key of a map. A default is what applies when the key is absent.',
    ...(p.jsonSchema ? ['', `JSON Schema for editors: [\`${p.jsonSchema}\`](../../${p.jsonSchema}).`] : []),
    '',
    '## Keys',
    '',
    '| Key | Type | Required | Default | Description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const examples = r.examples?.length ? ` Example: ${r.examples.map((e) => code(json(e))).join(', ')}.` : '';
    const dflt = r.default === undefined ? '' : code(json(r.default));
    out.push(`| ${code(r.key)} | ${cell(r.type)} | ${r.required ? 'yes' : 'no'} | ${cell(dflt)} | ${cell(prose(r.description ?? '') + examples)} |`);
  }
  const examples = root.examples ?? [];
  if (examples.length === 0) throw new Error(`${p.configFile}: the schema has no examples`);
  out.push('', examples.length > 1 ? '## Examples' : '## Example', '');
  for (const e of examples) out.push('```yaml', exampleYaml(e).trimEnd(), '```', '');
  if (p.fullExample) out.push(`A fuller, commented example: [\`${p.fullExample}\`](../../${p.fullExample}) in this repository.`);
  return `${out.join('\n').trimEnd()}\n`;
}

/** Every configuration reference page. */
export function renderConfigDocs(): DocsPage[] {
  return CONFIG_PAGES.map((p) => ({ path: path.join(REFERENCE_DIR, p.page), text: renderConfigPage(p) }));
}

if (isMain(import.meta.url)) {
  writeOrCheck(renderConfigDocs(), REGENERATE);
}
