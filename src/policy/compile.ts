// Owns: validated sources (org.yaml, policies/_org.yaml, policies/<team>.yaml) → one frozen
// CompiledPolicySet: ordered host rules with an index for first-match lookup, HTTP rules with
// compiled path globs, credential bindings, agent narrowing rules, project host index. Refuses
// what is invalid or ambiguous with a file:line:col message that gives the fix; warns about rules
// that can never match. PURE: files arrive as parsed sources.
import type { Problem } from '../errors.ts';
import type { ParsedOrg } from '../config/org-config.ts';
import type {
  CredentialBindingSource, GuardrailRuleSource, HostRuleSource, OrgPolicySource, TeamPolicySource,
} from '../config/policy-schemas.ts';
import type { PathSegment, YamlSource } from '../config/yaml-source.ts';
import { explainBinding, explainHostRule, explainHttpRule } from './explain.ts';
import {
  hostPatternCovers, hostPatternsOverlap, multiTenantSuffixOf, parseHostPattern,
} from './match/host-pattern.ts';
import { compilePathGlob, pathGlobCovers } from './match/path-pattern.ts';
import type {
  CompiledBinding, CompiledHttpRule, CompiledPolicySet, CompiledRule, CompiledTeamPolicy, CredentialBindingRef,
  CredentialKind, HostPattern, PathMatcher, ProjectHostIndex, RuleTable,
} from './types.ts';

export const DEFAULT_PLACEHOLDER = 'tollgate-placeholder';
const DEFAULT_PORTS: ReadonlySet<number> = new Set([80, 443]);
const SECRET_ON_WIRE: ReadonlySet<CredentialKind> = new Set(['bearer', 'basic', 'header', 'query']);
const FORBIDDEN_BINDING_HEADERS = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer',
  'proxy-authorization', 'proxy-authenticate', 'proxy-connection', 'cookie',
]);

export interface PolicyFileInput<T> {
  readonly source: YamlSource;
  readonly value: T;
}

export interface CompileInputs {
  readonly org: ParsedOrg;
  readonly guardrails?: PolicyFileInput<OrgPolicySource> | undefined;
  /** team key → its policy file (already parsed and schema-checked). */
  readonly teamPolicies: ReadonlyMap<string, PolicyFileInput<TeamPolicySource>>;
  /** Whether a secret of this name can be resolved; omit to skip the check (CI without secrets). */
  readonly secretExists?: ((name: string) => boolean) | undefined;
  /** Where the secret would come from, for the message ("TOLLGATE_SECRET_X or secrets/x"). */
  readonly describeSecretSource?: ((name: string) => string) | undefined;
}

export type CompileResult =
  | { ok: true; set: CompiledPolicySet; warnings: Problem[] }
  | { ok: false; problems: Problem[]; warnings: Problem[] };

/** Compiled globs are shared within one compilation: real policies repeat "/**" and "/v1/**" a lot. */
type GlobCache = Map<string, ReturnType<typeof compilePathGlob>>;

class Sink {
  readonly problems: Problem[] = [];
  readonly warnings: Problem[] = [];
  constructor(readonly source: YamlSource, readonly globs: GlobCache = new Map()) {}
  glob(glob: string, caseSensitive: boolean): ReturnType<typeof compilePathGlob> {
    const key = `${caseSensitive ? 'C' : 'i'}${glob}`;
    let r = this.globs.get(key);
    if (!r) {
      r = compilePathGlob(glob, caseSensitive);
      this.globs.set(key, r);
    }
    return r;
  }
  error(path: readonly PathSegment[], message: string, key = false): void {
    this.problems.push({ ...this.source.positionOf(path, { key }), severity: 'error', message });
  }
  warn(path: readonly PathSegment[], message: string, key = false): void {
    this.warnings.push({ ...this.source.positionOf(path, { key }), severity: 'warning', message });
  }
  id(path: readonly PathSegment[]): string {
    const p = this.source.positionOf(path);
    return `${p.file}:${p.line}`;
  }
}

function toList<T>(v: T | readonly T[] | undefined): readonly T[] | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? (v as readonly T[]) : [v as T];
}

function compileMethods(sink: Sink, path: readonly PathSegment[], method: string | readonly string[] | undefined): ReadonlySet<string> | null {
  const list = toList(method);
  if (!list) return null;
  if (list.includes('*')) {
    if (list.length > 1) sink.error(path, 'method "*" already means any method; remove the other methods');
    return null;
  }
  const set = new Set(list);
  if (set.size !== list.length) sink.warn(path, 'a method is listed twice');
  // GET covers HEAD: a HEAD is a GET without the body, and clients send it to probe what they may GET.
  if (set.has('GET')) set.add('HEAD');
  return set;
}

type PendingWarning = { at: readonly PathSegment[]; glob: string; message: string };

function compilePaths(sink: Sink, path: readonly PathSegment[], paths: string | readonly string[] | undefined, caseSensitive: boolean, pending?: PendingWarning[]): PathMatcher[] | null {
  const list = toList(paths);
  if (!list) return null;
  const out: PathMatcher[] = [];
  list.forEach((glob, i) => {
    const where = Array.isArray(paths) ? [...path, i] : path;
    const r = sink.glob(glob, caseSensitive);
    if (!r.ok) sink.error(where, r.message);
    else {
      if (r.warning && pending) pending.push({ at: where, glob, message: r.warning });
      else if (r.warning) sink.warn(where, r.warning);
      out.push(r.matcher);
    }
  });
  return out;
}

function methodsCover(outer: ReadonlySet<string> | null, inner: ReadonlySet<string> | null): boolean {
  if (outer === null) return true;
  if (inner === null) return false;
  for (const m of inner) if (!outer.has(m)) return false;
  return true;
}

function pathsCover(outer: readonly PathMatcher[] | null, inner: readonly PathMatcher[] | null): boolean {
  if (outer === null) return true;
  if (inner === null || outer.length === 0 || inner.length === 0) return false;
  return inner.every((i) => outer.some((o) => pathGlobCovers(o.glob, i.glob)));
}

function portsCover(outer: ReadonlySet<number> | null, inner: ReadonlySet<number> | null): boolean {
  if (outer === null) return true;
  if (inner === null) return false;
  for (const p of inner) if (!outer.has(p)) return false;
  return true;
}

interface TableBuilder {
  rules: CompiledRule[];
  exact: Map<string, number[]>;
  suffix: Map<string, number[]>;
  any: number[];
  addresses: number[];
}

function push(map: Map<string, number[]>, key: string, i: number): void {
  const list = map.get(key);
  if (list) list.push(i);
  else map.set(key, [i]);
}

/** Earlier rules that cover every host `p` matches (via the index, not a full scan). */
function coveringEarlier(t: TableBuilder, p: HostPattern): number[] {
  const out: number[] = [...t.any];
  if (p.kind === 'exact' || p.kind === 'suffix') {
    const name = p.kind === 'exact' ? p.host : p.suffix;
    if (p.kind === 'exact') out.push(...(t.exact.get(name) ?? []));
    else out.push(...(t.suffix.get(name) ?? []));
    let dot = name.indexOf('.');
    while (dot >= 0) {
      out.push(...(t.suffix.get(name.slice(dot + 1)) ?? []));
      dot = name.indexOf('.', dot + 1);
    }
  } else if (p.kind === 'ip' || p.kind === 'cidr') {
    for (const i of t.addresses) if (hostPatternCovers((t.rules[i] as CompiledRule).host, p)) out.push(i);
  }
  return out.sort((a, b) => a - b);
}

type AnyRule = HostRuleSource | GuardrailRuleSource;

function compileRuleTable(
  sink: Sink,
  base: readonly PathSegment[],
  rules: readonly AnyRule[],
  origin: 'org' | 'team' | 'agent',
): RuleTable {
  const t: TableBuilder = { rules: [], exact: new Map(), suffix: new Map(), any: [], addresses: [] };
  rules.forEach((rule, i) => {
    const at = [...base, i];
    const hp = parseHostPattern(rule.host);
    if (!hp.ok) {
      sink.error([...at, 'host'], hp.message);
      return;
    }
    const host = hp.pattern;
    const action = rule.action;
    if (rule.ports) {
      const set = new Set(rule.ports);
      if (set.size !== rule.ports.length) sink.warn([...at, 'ports'], 'a port is listed twice');
    }
    const ports: ReadonlySet<number> | null = rule.ports ? new Set(rule.ports) : action === 'deny' ? null : DEFAULT_PORTS;
    if (action === 'direct' && rule.http) {
      sink.error([...at, 'http'], `HTTP rules cannot apply to a direct host: a direct tunnel is not inspected. Use action: allow for ${rule.host} to enforce them`);
    }
    if (action === 'deny' && rule.http && origin !== 'org') {
      sink.error([...at, 'http'], `HTTP rules under a denied host never apply; use action: allow with HTTP rules that deny`);
    }
    if (action === 'direct' && origin === 'team') {
      const mt = multiTenantSuffixOf(host);
      if (mt) {
        sink.warn([...at, 'host'], mt === '*'
          ? 'a direct tunnel to every host cannot be inspected: any host can be reached by domain fronting; prefer action: allow'
          : `${rule.host} is under the multi-tenant suffix ${mt}: anyone can host there, and a direct (uninspected) tunnel cannot tell tenants apart (domain fronting). Use action: allow so requests are inspected, or name exact hosts`);
      }
    }
    const caseSensitive = rule.case_sensitive_paths === true;
    let http: CompiledHttpRule[] | null = null;
    if (rule.http) {
      http = [];
      const pending: PendingWarning[] = [];
      rule.http.forEach((h, j) => {
        const hAt = [...at, 'http', j];
        const methods = compileMethods(sink, [...hAt, 'method'], h.method);
        const paths = compilePaths(sink, [...hAt, 'path'], h.path, caseSensitive, pending);
        const hAction = (h.action ?? 'deny') as 'allow' | 'deny';
        const compiled: CompiledHttpRule = {
          id: sink.id(hAt),
          methods,
          paths,
          action: hAction,
          description: h.description,
          explanation: explainHttpRule({ action: hAction, methods, paths }),
        };
        const shadow = (http as CompiledHttpRule[]).find((e) => methodsCover(e.methods, methods) && pathsCover(e.paths, paths));
        if (shadow) sink.warn(hAt, `this HTTP rule can never match: every request it covers is already decided by the rule at ${shadow.id}`);
        (http as CompiledHttpRule[]).push(compiled);
      });
      // "/items/*" next to a rule for "/items" itself reads as intended (one item vs the
      // collection); warn about a trailing "/*" only when it stands alone.
      const globs = new Set(http.flatMap((h) => (h.paths ?? []).map((p) => p.glob.toLowerCase())));
      for (const w of pending) if (!globs.has(w.glob.slice(0, -2).toLowerCase())) sink.warn(w.at, w.message);
    }
    const compiled: CompiledRule = {
      id: sink.id(at),
      origin,
      host,
      action,
      ports,
      http,
      description: rule.description,
      explanation: explainHostRule({ action, host, ports, httpCount: http?.length ?? 0, origin }),
    };
    // Shadowing: an earlier rule that covers every host and port of this one decides first.
    for (const e of coveringEarlier(t, host)) {
      const earlier = t.rules[e] as CompiledRule;
      const earlierIsPartialGuardrail = origin === 'org' && earlier.http !== null;
      if (!earlierIsPartialGuardrail && portsCover(earlier.ports, ports)) {
        sink.warn(at, `this rule can never match: every request it covers is already decided by the rule at ${earlier.id} (${earlier.explanation})`);
        break;
      }
    }
    const index = t.rules.length;
    t.rules.push(compiled);
    switch (host.kind) {
      case 'exact':
        push(t.exact, host.host, index);
        break;
      case 'suffix':
        push(t.suffix, host.suffix, index);
        break;
      case 'any':
        t.any.push(index);
        break;
      default:
        t.addresses.push(index);
    }
  });
  return { file: sink.source.file, rules: t.rules, exact: t.exact, suffix: t.suffix, any: t.any, addresses: t.addresses };
}

const EMPTY_TABLE = (file: string): RuleTable => ({ file, rules: [], exact: new Map(), suffix: new Map(), any: [], addresses: [] });

/** The first rule of `table` that would decide `host` regardless of port and path (for binding checks). */
function firstRuleFor(table: RuleTable, host: HostPattern): CompiledRule | undefined {
  return table.rules.find((r) => hostPatternCovers(r.host, host));
}

function compileBindings(
  sink: Sink,
  team: string,
  policy: TeamPolicySource,
  table: RuleTable,
  inputs: CompileInputs,
): CompiledBinding[] {
  const org = inputs.org.org;
  const out: CompiledBinding[] = [];
  (policy.credentials ?? []).forEach((b: CredentialBindingSource, i) => {
    const at = ['credentials', i];
    const kinds = (['bearer', 'basic', 'header', 'query', 'aws'] as const).filter((k) => b[k] !== undefined);
    if (kinds.length !== 1) {
      sink.error(at, kinds.length === 0
        ? 'a credential binding needs exactly one of bearer, basic, header, query or aws'
        : `a credential binding takes exactly one of bearer, basic, header, query or aws (found ${kinds.join(' and ')})`);
      return;
    }
    const kind = kinds[0] as CredentialKind;
    const hp = parseHostPattern(b.host);
    if (!hp.ok) {
      sink.error([...at, 'host'], hp.message);
      return;
    }
    const host = hp.pattern;
    if (SECRET_ON_WIRE.has(kind) && (host.kind === 'suffix' || host.kind === 'any' || host.kind === 'cidr')) {
      sink.error([...at, 'host'], `a ${kind} binding puts the secret on the wire, so it must name an exact host: "${b.host}" also matches hosts that belong to anyone. List each host in its own binding (only aws signing may use a wildcard)`);
      return;
    }
    const secret = (b[kind] as { secret: string }).secret;
    if (org.declaredSecrets && !org.declaredSecrets.includes(secret)) {
      sink.error([...at, kind, 'secret'], `unknown secret "${secret}": it is not listed under secrets: in ${org.file} (${org.declaredSecrets.join(', ') || 'none listed'})`);
    } else if (inputs.secretExists && !inputs.secretExists(secret)) {
      const where = inputs.describeSecretSource?.(secret)
        ?? `TOLLGATE_SECRET_${secret.toUpperCase().replace(/[^A-Z0-9]/g, '_')} or a file named ${secret} in the secrets directory`;
      sink.error([...at, kind, 'secret'], `unknown secret "${secret}": no value is configured (set ${where})`);
    }
    if (b.project !== undefined) {
      if (!org.projects.has(b.project)) sink.error([...at, 'project'], `unknown project "${b.project}"; projects are ${[...org.projects.keys()].join(', ')}`);
      else if (!org.teams.get(team)?.grants.has(b.project)) sink.error([...at, 'project'], `team ${team} has no grant on project ${b.project}, so this binding could never apply`);
    }
    let headerName: string | undefined;
    let template: string | undefined;
    if (kind === 'bearer') {
      headerName = 'authorization';
      template = 'Bearer {secret}';
    } else if (kind === 'basic') {
      headerName = 'authorization';
    } else if (kind === 'header' && b.header) {
      headerName = b.header.name.toLowerCase();
      template = b.header.template ?? '{secret}';
      if (FORBIDDEN_BINDING_HEADERS.has(headerName)) sink.error([...at, 'header', 'name'], `the ${b.header.name} header cannot carry a credential`);
      if (template.split('{secret}').length !== 2) sink.error([...at, 'header', 'template'], 'the template must contain {secret} exactly once');
      // eslint-disable-next-line no-control-regex
      if (/[\r\n\x00]/.test(template)) sink.error([...at, 'header', 'template'], 'the template may not contain line breaks or NUL');
    }
    const methods = compileMethods(sink, [...at, 'method'], b.method);
    const paths = compilePaths(sink, [...at, 'path'], b.path, false);
    // The binding's host must be reachable through an intercepted rule.
    const rule = firstRuleFor(table, host);
    const overlapsDirect = table.rules.find((r) => r.action === 'direct' && hostPatternsOverlap(r.host, host));
    if (rule?.action === 'direct' || (overlapsDirect && !rule)) {
      sink.error([...at, 'host'], `credentials cannot be injected for ${b.host}: the rule at ${(rule ?? overlapsDirect)?.id} sends it as a direct tunnel, which is not inspected. Use action: allow`);
    } else if (!table.rules.some((r) => r.action === 'allow' && hostPatternsOverlap(r.host, host))) {
      sink.warn([...at, 'host'], `no rule in this policy allows ${b.host}, so this binding is never used`);
    }
    const ref: CredentialBindingRef = {
      name: b.name ?? secret,
      id: sink.id(at),
      kind,
      secret,
      host: host.text,
      project: b.project,
      headerName,
      template,
      username: b.basic?.username,
      queryName: b.query?.name,
      awsRegion: b.aws?.region,
      awsService: b.aws?.service,
      requirePlaceholder: b.require_placeholder,
    };
    out.push({ ref, host, methods, paths, explanation: explainBinding(ref, host, methods, paths) });
  });
  return out;
}

function buildProjectIndex(inputs: CompileInputs): ProjectHostIndex {
  const exact = new Map<string, string[]>();
  const suffix = new Map<string, string[]>();
  const addresses: { pattern: HostPattern; project: string }[] = [];
  const add = (map: Map<string, string[]>, k: string, p: string) => {
    const l = map.get(k);
    if (!l) map.set(k, [p]);
    else if (!l.includes(p)) l.push(p);
  };
  for (const project of inputs.org.org.projects.values()) {
    for (const c of project.connections) {
      // org-config.ts has refused connection hosts that do not parse, and "*": what is left is a
      // name, a *.suffix, an address or a CIDR.
      for (const { pattern: p } of c.hosts.map(parseHostPattern).filter((r) => r.ok)) {
        if (p.kind === 'exact') add(exact, p.host, project.key);
        else if (p.kind === 'suffix') add(suffix, p.suffix, project.key);
        else addresses.push({ pattern: p, project: project.key });
      }
    }
  }
  return { exact, suffix, addresses };
}

function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (ArrayBuffer.isView(value)) return value; // typed arrays cannot be frozen; never exposed for writing
  Object.freeze(value);
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
  } else if (value instanceof Set) {
    for (const v of value) deepFreeze(v);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  } else {
    for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  }
  return value;
}

/** Compiles every source into one frozen CompiledPolicySet, or returns every problem found. */
export function compilePolicySet(inputs: CompileInputs): CompileResult {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const org = inputs.org.org;
  const globs: GlobCache = new Map();
  const orgSink = new Sink(inputs.org.source, globs);

  let guardrails = EMPTY_TABLE('policies/_org.yaml');
  if (inputs.guardrails) {
    const sink = new Sink(inputs.guardrails.source, globs);
    guardrails = compileRuleTable(sink, ['rules'], inputs.guardrails.value.rules, 'org');
    problems.push(...sink.problems);
    warnings.push(...sink.warnings);
  }

  const teams = new Map<string, CompiledTeamPolicy>();
  const ruleIds: string[] = [...guardrails.rules.flatMap((r) => [r.id, ...(r.http ?? []).map((h) => h.id)])];
  const placeholders = new Set<string>([DEFAULT_PLACEHOLDER]);
  const seenFiles = new Map<string, string>();
  for (const team of org.teams.values()) {
    const input = inputs.teamPolicies.get(team.key);
    if (!input) {
      orgSink.error(['teams', team.key, 'policy'], `team ${team.key} has no policy file (${team.policyFile}); create it with team: ${team.key} and its rules`);
      continue;
    }
    const sink = new Sink(input.source, globs);
    const other = seenFiles.get(input.source.file);
    if (other) orgSink.error(['teams', team.key, 'policy'], `teams ${other} and ${team.key} use the same policy file ${input.source.file}; each team has its own`);
    seenFiles.set(input.source.file, team.key);
    if (input.value.team !== team.key) {
      sink.error(['team'], `this file belongs to team "${input.value.team}", but ${org.file} uses it for team ${team.key}; set team: ${team.key}`);
    }
    const table = compileRuleTable(sink, ['rules'], input.value.rules, 'team');
    if (input.value.rules.length === 0) sink.warn(['rules'], `team ${team.key} has no rules, so every request is denied`);
    const bindings = compileBindings(sink, team.key, input.value, table, inputs);
    for (const b of bindings) if (b.ref.requirePlaceholder) placeholders.add(b.ref.requirePlaceholder);
    problems.push(...sink.problems);
    warnings.push(...sink.warnings);
    teams.set(team.key, { team: team.key, file: input.source.file, table, bindings });
    ruleIds.push(...table.rules.flatMap((r) => [r.id, ...(r.http ?? []).map((h) => h.id)]), ...bindings.map((b) => b.ref.id));
  }

  const agentRules = new Map<string, RuleTable>();
  for (const [key, a] of Object.entries(inputs.org.value.agents ?? {})) {
    if (!a.rules) continue;
    const table = compileRuleTable(orgSink, ['agents', key, 'rules'], a.rules, 'agent');
    const teamTable = teams.get(a.team)?.table;
    table.rules.forEach((r, i) => {
      if (r.action === 'direct' && teamTable && firstRuleFor(teamTable, r.host)?.action === 'allow') {
        orgSink.warn(['agents', key, 'rules', i, 'action'], `agent rules only narrow: ${r.host.text} stays intercepted because team ${a.team} allows it with inspection`);
      }
    });
    agentRules.set(key, table);
    ruleIds.push(...table.rules.flatMap((r) => [r.id, ...(r.http ?? []).map((h) => h.id)]));
  }
  problems.push(...orgSink.problems);
  warnings.push(...orgSink.warnings);

  if (problems.length > 0) return { ok: false, problems: sortProblems(problems), warnings: sortProblems(warnings) };
  const set: CompiledPolicySet = {
    org,
    guardrails,
    teams,
    agentRules,
    projectHosts: buildProjectIndex(inputs),
    placeholders: [...placeholders],
    ruleIds,
  };
  return { ok: true, set: deepFreeze(set), warnings: sortProblems(warnings) };
}

function sortProblems(list: Problem[]): Problem[] {
  return list.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}
