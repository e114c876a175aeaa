// Owns: the published shapes of org.yaml, policies/<team>.yaml, policies/_org.yaml and
// policies/tests/*.yaml, as TypeBox schemas (which are JSON Schema). Every field is described
// so editors show the text on hover. Semantic checks (globs, cross-file references) live in
// src/policy/compile.ts; these schemas catch unknown keys and wrong types.
import { Type, type Static, type TSchema } from './typebox.ts';

const strict = { additionalProperties: false } as const;

const Name = Type.String({
  pattern: '^[a-z0-9][a-z0-9_-]*$',
  description: 'an identifier in lower case: letters, digits, "-" and "_" (for example "sre")',
});

const SecretName = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]*$',
  description: 'the name of a secret (for example "github-token"); its value comes from TOLLGATE_SECRET_GITHUB_TOKEN or the secrets directory, never from this file',
});

// Spend is counted in integer micro-dollars: a limit above $1e9 would pass 2^53 micro-dollars
// (no longer exact) and 1e308 would become Infinity — an unlimited budget. YAML's .inf and .nan
// are refused by the number type itself.
const MAX_BUDGET_USD = 1_000_000_000;
export const BudgetSchema = Type.Object(
  {
    monthly_usd: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_BUDGET_USD, description: 'spend limit in US dollars per calendar month (UTC), at most 1,000,000,000' })),
    daily_usd: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_BUDGET_USD, description: 'spend limit in US dollars per day (UTC), at most 1,000,000,000' })),
  },
  { ...strict, minProperties: 1, description: 'a spend limit: { monthly_usd: N } and/or { daily_usd: N }' },
);

const HostPattern = Type.String({
  minLength: 1,
  description: 'an exact host (api.github.com), a wildcard (*.example.com: one or more labels before .example.com), "*" (every host), an IP address or a CIDR (10.1.0.0/16)',
});

const Method = Type.String({ pattern: '^(\\*|[A-Z][A-Z0-9_-]*)$', description: 'an HTTP method in upper case (GET), or "*" for any method' });
const Methods = Type.Union([Method, Type.Array(Method, { minItems: 1 })], {
  description: 'must be an HTTP method in upper case (GET), "*", or a list of them',
});
const PathGlob = Type.String({
  pattern: '^/',
  description: 'a path glob starting with "/": "*" matches within one segment, "**" across segments; the query string is not part of the path',
});
const Paths = Type.Union([PathGlob, Type.Array(PathGlob, { minItems: 1 })], {
  description: 'must be a path glob starting with "/" (or a list of them): "*" within one segment, "**" across segments',
});
const Port = Type.Integer({ minimum: 1, maximum: 65535, description: 'a TCP port' });

export const HttpRuleSchema = Type.Object(
  {
    method: Type.Optional(Methods),
    path: Type.Optional(Paths),
    action: Type.Union([Type.Literal('allow'), Type.Literal('deny')], { description: 'must be allow or deny' }),
    description: Type.Optional(Type.String({ description: 'why the rule exists, shown by policy explain' })),
  },
  { ...strict, description: 'an HTTP rule: method and path glob; first match decides, no match denies' },
);

export const HostRuleSchema = Type.Object(
  {
    host: HostPattern,
    action: Type.Union([Type.Literal('allow'), Type.Literal('deny'), Type.Literal('direct')], {
      description: 'must be allow (intercepted: HTTP rules, credentials and metering apply), direct (plain tunnel, no interception) or deny',
    }),
    ports: Type.Optional(Type.Array(Port, { minItems: 1, description: 'ports this rule covers; default 80 and 443 for allow/direct, every port for deny' })),
    http: Type.Optional(Type.Array(HttpRuleSchema, { minItems: 1, description: 'HTTP rules for this host, evaluated top to bottom; no match denies' })),
    case_sensitive_paths: Type.Optional(Type.Boolean({ description: 'match path globs case-sensitively (false: /ADMIN matches /admin/**)', default: false })),
    description: Type.Optional(Type.String({ description: 'why the rule exists, shown by policy explain' })),
  },
  { ...strict, description: 'a host rule; rules are evaluated top to bottom and the first match decides; no match denies' },
);

export const CredentialBindingSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, description: 'a name for this binding, shown by policy explain and in audit rows (default: the secret name)' })),
    host: HostPattern,
    project: Type.Optional(Type.String({ minLength: 1, description: 'apply only when the request acts for this project (proxy username <team>.<project>)' })),
    method: Type.Optional(Methods),
    path: Type.Optional(Paths),
    require_placeholder: Type.Optional(Type.String({ minLength: 8, description: 'inject only when the client sent this placeholder as its key (for example tollgate-placeholder)' })),
    bearer: Type.Optional(Type.Object({ secret: SecretName }, { ...strict, description: 'Authorization: Bearer <secret>' })),
    basic: Type.Optional(Type.Object({
      username: Type.String({ minLength: 1, description: 'the user name sent with the secret' }),
      secret: SecretName,
    }, { ...strict, description: 'Authorization: Basic base64(username:secret)' })),
    header: Type.Optional(Type.Object({
      name: Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', description: 'the header name (for example x-api-key)' }),
      secret: SecretName,
      template: Type.Optional(Type.String({ description: 'the header value with {secret} where the secret goes', default: '{secret}' })),
    }, { ...strict, description: 'a header carrying the secret' })),
    query: Type.Optional(Type.Object({
      name: Type.String({ minLength: 1, description: 'the query parameter name' }),
      secret: SecretName,
    }, { ...strict, description: 'a query parameter carrying the secret' })),
    aws: Type.Optional(Type.Object({
      secret: SecretName,
      region: Type.Optional(Type.String({ description: 'signing region (default: from the host)' })),
      service: Type.Optional(Type.String({ description: 'signing service (default: from the host)' })),
    }, { ...strict, description: 'SigV4 re-signing with the bound keys (the secret holds access key id and secret key)' })),
  },
  { ...strict, description: 'a credential binding: exactly one of bearer, basic, header, query, aws' },
);

export const TeamPolicySchema = Type.Object(
  {
    team: Type.String({ minLength: 1, description: 'the team this policy belongs to (must match the team key in org.yaml)' }),
    description: Type.Optional(Type.String({ description: 'free text' })),
    rules: Type.Array(HostRuleSchema, { description: 'host rules, top to bottom, first match decides, no match denies' }),
    credentials: Type.Optional(Type.Array(CredentialBindingSchema, { description: 'credentials injected for matching requests' })),
  },
  {
    ...strict, $id: 'https://tollgate.dev/schema/policy.schema.json', title: 'Tollgate team policy (policies/<team>.yaml)',
    examples: [{
      team: 'sre',
      description: 'what SRE, people and agents, may reach',
      rules: [
        {
          host: 'api.github.com', action: 'allow', description: 'GitHub: read anything, write to repositories',
          http: [{ method: 'GET', path: '/**', action: 'allow' }, { method: ['POST', 'PATCH', 'PUT'], path: '/repos/**', action: 'allow' }],
        },
        { host: '*.amazonaws.com', action: 'allow', description: 'AWS APIs' },
        { host: 'api.anthropic.com', action: 'allow' },
        { host: '*', action: 'deny' },
      ],
      credentials: [
        { host: 'api.github.com', bearer: { secret: 'github-token' } },
        { host: '*.eu-west-1.amazonaws.com', project: 'production', aws: { secret: 'aws-production' } },
        { name: 'anthropic', host: 'api.anthropic.com', path: '/v1/**', header: { name: 'x-api-key', secret: 'anthropic-api-key' } },
      ],
    }],
  },
);

export const GuardrailHttpSchema = Type.Object(
  {
    method: Type.Optional(Methods),
    path: Type.Optional(Paths),
    action: Type.Optional(Type.Literal('deny', { description: 'guardrails only deny', default: 'deny' })),
    description: Type.Optional(Type.String({ description: 'why' })),
  },
  { ...strict, description: 'deny requests with this method and path' },
);

export const GuardrailRuleSchema = Type.Object(
  {
    host: HostPattern,
    action: Type.Literal('deny', { description: 'org guardrails only deny; no team can override them' }),
    ports: Type.Optional(Type.Array(Port, { minItems: 1, description: 'ports denied (default: every port)' })),
    http: Type.Optional(Type.Array(GuardrailHttpSchema, { minItems: 1, description: 'deny only these methods/paths (default: the whole host)' })),
    case_sensitive_paths: Type.Optional(Type.Boolean({ description: 'match path globs case-sensitively', default: false })),
    description: Type.Optional(Type.String({ description: 'why the guardrail exists, shown in deny messages' })),
  },
  { ...strict, description: 'an org guardrail: a deny no team can override' },
);

export const OrgPolicySchema = Type.Object(
  {
    description: Type.Optional(Type.String({ description: 'free text' })),
    rules: Type.Array(GuardrailRuleSchema, { description: 'deny rules evaluated before every team policy' }),
  },
  {
    ...strict, title: 'Tollgate org guardrails (policies/_org.yaml)',
    examples: [{
      description: 'denies no team can override',
      rules: [
        { host: '169.254.169.254', action: 'deny', description: 'cloud instance metadata' },
        { host: '*.pastebin.com', action: 'deny', description: 'paste site' },
        { host: 'api.github.com', action: 'deny', description: 'repository secrets are managed in the GitHub UI', http: [{ path: '/repos/*/*/actions/secrets/**' }] },
      ],
    }],
  },
);

const ConnectionSchema = Type.Object(
  {
    name: Name,
    kind: Type.Optional(Type.Union([
      Type.Literal('kubernetes'), Type.Literal('aws'), Type.Literal('github'), Type.Literal('saas'), Type.Literal('other'),
    ], { description: 'what the connection is: kubernetes, aws, github, saas or other' })),
    hosts: Type.Array(HostPattern, { minItems: 1, description: 'hosts that belong to this connection (exact, *.suffix, IP or CIDR)' }),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file (relative to org.yaml) of the CA that verifies this connection\'s servers, for example a Kubernetes cluster CA. When set, TLS to the connection\'s hosts trusts exactly this CA, not the public roots' })),
    server: Type.Optional(Type.String({ pattern: '^https://', description: 'kind: kubernetes only: the API server URL (https://host[/path]); its host must match one of hosts, and it names no port but 443, the only port the gateway sends credentials on (an API server on another port: `upstreams:` in tollgate.yaml). `tollgate setup kubectl` writes one cluster per server' })),
    account: Type.Optional(Type.String({ description: 'AWS account id, GitHub organisation or SaaS tenant, for people reading the file' })),
    description: Type.Optional(Type.String({ description: 'free text' })),
  },
  { ...strict, description: 'a connection of a project: the hosts that belong to it' },
);

const ProjectSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'display name' }),
    description: Type.Optional(Type.String({ description: 'free text' })),
    connections: Type.Array(ConnectionSchema, { description: 'the hosts that belong to this project' }),
  },
  { ...strict, description: 'a project' },
);

const TeamSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'display name' }),
    idp_groups: Type.Array(Type.String({ minLength: 1 }), { description: 'IdP groups whose members belong to this team' }),
    projects: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Literal('admin'), Type.Literal('member')], {
      description: 'admin (all methods) or member (GET, HEAD, OPTIONS) on the project\'s connections',
    }), { description: 'project grants: project key → admin or member' })),
    policy: Type.Optional(Type.String({ minLength: 1, description: 'the team policy file, relative to org.yaml (default policies/<team>.yaml)' })),
    budget: Type.Optional(BudgetSchema),
    user_budget: Type.Optional(BudgetSchema),
    description: Type.Optional(Type.String({ description: 'free text' })),
  },
  { ...strict, description: 'a team' },
);

const AgentSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'display name' }),
    team: Type.String({ minLength: 1, description: 'the team whose policy the agent runs under' }),
    project: Type.Optional(Type.String({ minLength: 1, description: 'the project the agent acts for' })),
    every: Type.Optional(Type.String({ pattern: '^[1-9][0-9]*(s|m|h|d)$', description: 'run schedule / heartbeat: 30s, 5m, 1h, 1d' })),
    command: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'argv of the agent process' })),
    budget: Type.Optional(BudgetSchema),
    rules: Type.Optional(Type.Array(HostRuleSchema, { description: 'rules that can only narrow the team policy: a request must be allowed by both' })),
    description: Type.Optional(Type.String({ description: 'free text' })),
  },
  { ...strict, description: 'a managed agent' },
);

const UserSchema = Type.Object(
  { budget: Type.Optional(BudgetSchema), description: Type.Optional(Type.String({ description: 'free text' })) },
  { ...strict, description: 'per-user settings, keyed by e-mail' },
);

export const OrgSchema = Type.Object(
  {
    organization: Type.String({ minLength: 1, description: 'the organisation name' }),
    budget: Type.Optional(BudgetSchema),
    admins: Type.Optional(Type.Object(
      { idp_groups: Type.Array(Type.String({ minLength: 1 }), { description: 'IdP groups of gateway admins' }) },
      { ...strict, description: 'who administers the gateway (dashboard and admin API)' },
    )),
    secrets: Type.Optional(Type.Array(SecretName, { description: 'the secret names bindings may use; policy check refuses any other name' })),
    projects: Type.Optional(Type.Record(Type.String(), ProjectSchema, { description: 'projects by key' })),
    teams: Type.Record(Type.String(), TeamSchema, { description: 'teams by key; the key is the proxy user name' }),
    agents: Type.Optional(Type.Record(Type.String(), AgentSchema, { description: 'managed agents by key' })),
    users: Type.Optional(Type.Record(Type.String(), UserSchema, { description: 'per-user settings by e-mail' })),
  },
  {
    ...strict, $id: 'https://tollgate.dev/schema/org.schema.json', title: 'Tollgate organisation (org.yaml)',
    examples: [{
      organization: 'Acme Corp',
      budget: { monthly_usd: 20_000 },
      admins: { idp_groups: ['tollgate-admins'] },
      secrets: ['github-token', 'anthropic-api-key', 'aws-production'],
      projects: {
        production: {
          name: 'Production',
          connections: [
            { name: 'aws', kind: 'aws', hosts: ['*.eu-west-1.amazonaws.com'], account: '123456789012' },
            { name: 'github', kind: 'github', hosts: ['api.github.com'], account: 'acme' },
          ],
        },
      },
      teams: { sre: { name: 'SRE', idp_groups: ['sre'], projects: { production: 'admin' }, budget: { monthly_usd: 5000 }, user_budget: { daily_usd: 50 } } },
      agents: {
        'sre-monitor': {
          name: 'SRE Monitor', team: 'sre', project: 'production', every: '5m', command: ['node', 'agents/sre-monitor.js'], budget: { daily_usd: 10 },
          rules: [{ host: 'api.github.com', action: 'allow', http: [{ method: 'GET', path: '/repos/**', action: 'allow' }] }],
        },
      },
      users: { 'alice@acme.example': { budget: { daily_usd: 20 } } },
    }],
  },
);

export const PolicyTestCaseSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'what the case shows' })),
    team: Type.String({ minLength: 1, description: 'the team asking' }),
    project: Type.Optional(Type.String({ minLength: 1, description: 'the project scope (<team>.<project>)' })),
    agent: Type.Optional(Type.String({ minLength: 1, description: 'the managed agent asking' })),
    request: Type.String({ pattern: '^[A-Z]+ \\S+$', description: '"METHOD URL", e.g. "GET https://api.github.com/user", or "CONNECT host:port"' }),
    expect: Type.Union([Type.Literal('allow'), Type.Literal('deny'), Type.Literal('direct')], { description: 'allow, deny or direct' }),
    rule: Type.Optional(Type.String({ description: 'the rule expected to decide, as file:line' })),
    reason: Type.Optional(Type.String({ description: 'the expected reason code' })),
    credentials: Type.Optional(Type.Array(Type.String(), { description: 'names of the bindings expected to be injected' })),
  },
  { ...strict, description: 'a policy test case' },
);

export const PolicyTestFileSchema = Type.Object(
  { tests: Type.Array(PolicyTestCaseSchema, { minItems: 1, description: 'test cases' }) },
  {
    ...strict, title: 'Tollgate policy tests (policies/tests/*.yaml)',
    examples: [{
      tests: [
        { name: 'GitHub reads, with the org token', team: 'sre', request: 'GET https://api.github.com/repos/acme/api/pulls', expect: 'allow', credentials: ['github-token'] },
        { name: 'GitHub deletes are denied', team: 'sre', request: 'DELETE https://api.github.com/repos/acme/api', expect: 'deny', reason: 'method_not_allowed' },
        { name: 'repository secrets are off limits (guardrail)', team: 'sre', request: 'GET https://api.github.com/repos/acme/api/actions/secrets/x', expect: 'deny' },
        { name: 'EC2 in production, signed with its keys', team: 'sre', project: 'production', request: 'POST https://ec2.eu-west-1.amazonaws.com/', expect: 'allow', credentials: ['aws-production'] },
        { name: 'the monitor agent only reads repositories', team: 'sre', agent: 'sre-monitor', request: 'POST https://api.github.com/repos/acme/api/issues', expect: 'deny' },
        { name: 'anything else', team: 'sre', request: 'CONNECT example.com:443', expect: 'deny', reason: 'host_not_allowed' },
      ],
    }],
  },
);

export type OrgSource = Static<typeof OrgSchema>;
export type TeamPolicySource = Static<typeof TeamPolicySchema>;
export type OrgPolicySource = Static<typeof OrgPolicySchema>;
export type HostRuleSource = Static<typeof HostRuleSchema>;
export type HttpRuleSource = Static<typeof HttpRuleSchema>;
export type GuardrailRuleSource = Static<typeof GuardrailRuleSchema>;
export type CredentialBindingSource = Static<typeof CredentialBindingSchema>;
export type BudgetSource = Static<typeof BudgetSchema>;
export type PolicyTestCaseSource = Static<typeof PolicyTestCaseSchema>;

/** The schemas published under schema/ (file name → schema). */
export const PUBLISHED_SCHEMAS: ReadonlyArray<{ file: string; schema: TSchema }> = [
  { file: 'schema/org.schema.json', schema: OrgSchema },
  { file: 'schema/policy.schema.json', schema: TeamPolicySchema },
  { file: 'schema/org-policy.schema.json', schema: OrgPolicySchema },
  { file: 'schema/policy-test.schema.json', schema: PolicyTestFileSchema },
];

/** The JSON text of a published schema, stable for diffing. */
export function renderJsonSchema(schema: TSchema): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(schema)) }, null, 2)}\n`;
}
