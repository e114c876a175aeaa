// Owns: the decision — a pure, synchronous function of the compiled policy, the principal and the
// normalised request. Order: org guardrails (cannot be overridden) → team rules (first match
// decides, no match denies) → HTTP rules under the host → the agent's own rules (only narrow) →
// project grants (member = read-only) → credential bindings. PURE: no I/O, no clock, no globals.
import type { ReasonCode } from '../errors.ts';
import { describePorts } from './explain.ts';
import { explainHostPattern, hostPatternMatches } from './match/host-pattern.ts';
import { parseRequestIp, type ParsedIp } from './match/address.ts';
import type {
  CompiledBinding, CompiledHttpRule, CompiledPolicySet, CompiledRule, CompiledTeamPolicy, CredentialBindingRef,
  Decision, DecisionRequest, Principal, Role, RuleTable,
} from './types.ts';

const READ_ONLY: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
const NONE: readonly never[] = Object.freeze([]);

interface Lookup {
  rule: CompiledRule | null;
  /** the earliest rule before `rule` that matched the host but not the port. */
  portMiss: CompiledRule | null;
}

function scanList(table: RuleTable, list: readonly number[] | undefined, port: number, host: string, ip: ParsedIp | null, checkHost: boolean, best: { at: number; miss: number }): void {
  if (!list) return;
  for (let k = 0; k < list.length; k++) {
    const at = list[k] as number;
    if (at >= best.at) return;
    const rule = table.rules[at] as CompiledRule;
    if (checkHost && !hostPatternMatches(rule.host, host, ip)) continue;
    if (rule.ports === null || rule.ports.has(port)) {
      best.at = at;
      return;
    }
    if (at < best.miss) best.miss = at;
  }
}

/** First rule of the table matching host and port, by position; uses the exact and suffix indexes. */
export function lookupRule(table: RuleTable, host: string, ip: ParsedIp | null, port: number): Lookup {
  const best = { at: Number.MAX_SAFE_INTEGER, miss: Number.MAX_SAFE_INTEGER };
  if (ip === null) {
    scanList(table, table.exact.get(host), port, host, ip, false, best);
    if (table.suffix.size > 0) {
      let dot = host.indexOf('.');
      while (dot >= 0 && dot < host.length - 1) {
        scanList(table, table.suffix.get(host.slice(dot + 1)), port, host, ip, false, best);
        dot = host.indexOf('.', dot + 1);
      }
    }
  } else {
    scanList(table, table.addresses, port, host, ip, true, best);
  }
  scanList(table, table.any, port, host, ip, false, best);
  const rule = best.at === Number.MAX_SAFE_INTEGER ? null : (table.rules[best.at] as CompiledRule);
  const portMiss = best.miss < best.at ? (table.rules[best.miss] as CompiledRule) : null;
  return { rule, portMiss };
}

function pathMatches(rule: { paths: readonly { test(p: string): boolean }[] | null }, path: string): boolean {
  if (rule.paths === null) return true;
  for (const p of rule.paths) if (p.test(path)) return true;
  return false;
}

/** First HTTP rule matching method and path; when none, whether some rule's path matched (→ method is the problem). */
function lookupHttp(rules: readonly CompiledHttpRule[], method: string, path: string): { rule: CompiledHttpRule | null; pathHit: CompiledHttpRule | null } {
  let pathHit: CompiledHttpRule | null = null;
  for (const r of rules) {
    const pm = pathMatches(r, path);
    if (!pm) continue;
    if (r.methods === null || r.methods.has(method)) return { rule: r, pathHit };
    if (!pathHit && r.action === 'allow') pathHit = r;
  }
  return { rule: null, pathHit };
}

function httpDenyReason(r: CompiledHttpRule): ReasonCode {
  return r.paths === null && r.methods !== null ? 'method_not_allowed' : 'path_not_allowed';
}

function target(req: DecisionRequest): string {
  const host = req.hostKind === 'ipv6' ? `[${req.host}]` : req.host;
  const defaultPort = req.scheme === 'https' ? 443 : 80;
  const hp = req.port === defaultPort ? host : `${host}:${req.port}`;
  return req.path === undefined ? `CONNECT ${host}:${req.port}` : `${req.method} ${req.scheme}://${hp}${req.path}`;
}

interface Ctx {
  set: CompiledPolicySet;
  principal: Principal;
  req: DecisionRequest;
  matched: string[];
}

function deny(ctx: Ctx, reason: ReasonCode, rule: string | null, explanation: string, project?: string): Decision {
  return {
    effect: 'deny',
    reason,
    rule,
    matched: ctx.matched,
    team: ctx.principal.team,
    explanation: `Denied: ${target(ctx.req)}. ${explanation}`,
    intercept: false,
    credentials: NONE,
    hostBound: false,
    ...(project !== undefined ? { project } : {}),
  };
}

function addProjects(out: string[] | null, list: readonly string[] | undefined): string[] | null {
  if (!list) return out;
  for (let i = 0; i < list.length; i++) {
    const p = list[i] as string;
    if (!out) out = [p];
    else if (!out.includes(p)) out.push(p);
  }
  return out;
}

function projectsForHost(set: CompiledPolicySet, host: string, ip: ParsedIp | null): readonly string[] {
  const idx = set.projectHosts;
  let out: string[] | null = null;
  if (ip === null) {
    out = addProjects(out, idx.exact.get(host));
    if (idx.suffix.size > 0) {
      let dot = host.indexOf('.');
      while (dot >= 0) {
        out = addProjects(out, idx.suffix.get(host.slice(dot + 1)));
        dot = host.indexOf('.', dot + 1);
      }
    }
  } else {
    for (const a of idx.addresses) if (hostPatternMatches(a.pattern, host, ip)) out = addProjects(out, [a.project]);
  }
  return out ?? NONE;
}

function bindingMatches(b: CompiledBinding, host: string, ip: ParsedIp | null, method: string, path: string): boolean {
  return hostPatternMatches(b.host, host, ip) && (b.methods === null || b.methods.has(method)) && pathMatches(b, path);
}

function portMissText(r: CompiledRule): string {
  return ` The rule at ${r.id} allows this host only ${describePorts(r.ports)}.`;
}

/** Decides one request (or, with `path` undefined, one CONNECT) for one principal. */
export function decide(set: CompiledPolicySet, principal: Principal, req: DecisionRequest): Decision {
  const ctx: Ctx = { set, principal, req, matched: [] };
  const teamPolicy: CompiledTeamPolicy | undefined = set.teams.get(principal.team);
  if (!teamPolicy) return deny(ctx, 'principal_unknown', null, `Team "${principal.team}" is not defined in ${set.org.file}.`);
  const team = set.org.teams.get(principal.team);
  let projectScope = principal.project;
  let agentTable: RuleTable | undefined;
  if (principal.agent !== undefined) {
    const agent = set.org.agents.get(principal.agent);
    if (!agent || agent.team !== principal.team) {
      return deny(ctx, 'principal_unknown', null, `Agent "${principal.agent}" is not an agent of team ${principal.team} in ${set.org.file}.`);
    }
    agentTable = set.agentRules.get(principal.agent);
    if (projectScope === undefined) projectScope = agent.project;
  }
  const atConnect = req.path === undefined;
  const path = req.path ?? '';
  const method = req.method;
  const ip = req.hostKind === 'dns' ? null : parseRequestIp(req.host);
  if (req.hostKind !== 'dns' && ip === null) return deny(ctx, 'malformed_request', null, `"${req.host}" is not a valid address.`);

  // 1. Org guardrails: a matching deny cannot be overridden.
  let guardrailNeedsInspection: CompiledRule | null = null;
  const g = set.guardrails.rules.length > 0 ? findGuardrail(set.guardrails, req.host, ip, req.port, method, path, atConnect) : null;
  if (g) {
    if (g.decided) {
      ctx.matched.push(g.rule.id);
      if (g.http) ctx.matched.push(g.http.id);
      const why = g.rule.description ? ` — ${g.rule.description}` : '';
      return deny(ctx, g.http ? httpDenyReason(g.http) : 'host_not_allowed', g.http?.id ?? g.rule.id,
        `The organisation's guardrail at ${g.http?.id ?? g.rule.id} denies ${g.http ? `${g.http.explanation.replace(/^deny /, '')} on ${explainHostPattern(g.rule.host)}` : explainHostPattern(g.rule.host)}${why}; no team policy can override it.`);
    }
    guardrailNeedsInspection = g.rule;
  }

  // 2. Team rules: first match decides; no match denies.
  const file = teamPolicy.file;
  const { rule, portMiss } = lookupRule(teamPolicy.table, req.host, ip, req.port);
  if (!rule) {
    if (portMiss) {
      ctx.matched.push(portMiss.id);
      return deny(ctx, 'port_not_allowed', portMiss.id, `Port ${req.port} is not allowed for ${req.host} by the ${principal.team} policy.${portMissText(portMiss)} Add ports: to that rule to allow more.`);
    }
    return deny(ctx, 'host_not_allowed', null, `No rule in ${file} (team ${principal.team}) allows ${req.host}; hosts that no rule names are denied.`);
  }
  ctx.matched.push(rule.id);
  if (rule.action === 'deny') {
    if (portMiss) {
      return deny(ctx, 'port_not_allowed', rule.id, `Port ${req.port} is not allowed for ${req.host} by the ${principal.team} policy.${portMissText(portMiss)} The rule at ${rule.id} (${rule.explanation}) denies the rest.`);
    }
    const why = rule.description ? ` — ${rule.description}` : '';
    return deny(ctx, 'host_not_allowed', rule.id, `The ${principal.team} policy denies ${req.host}: the rule at ${rule.id} says "${rule.explanation}"${why}.`);
  }
  if (rule.action === 'direct' && guardrailNeedsInspection) {
    return deny(ctx, 'host_not_allowed', guardrailNeedsInspection.id, `The organisation's guardrail at ${guardrailNeedsInspection.id} must inspect requests to ${req.host}, but the ${principal.team} policy's rule at ${rule.id} sends it as a direct (uninspected) tunnel. Change that rule to action: allow.`);
  }

  // 3. HTTP rules under the host (request time only).
  let decidingId = rule.id;
  if (!atConnect && rule.http) {
    const h = lookupHttp(rule.http, method, path);
    if (!h.rule) {
      if (h.pathHit) {
        ctx.matched.push(h.pathHit.id);
        return deny(ctx, 'method_not_allowed', h.pathHit.id, `${method} is not allowed on ${path} at ${req.host} by the ${principal.team} policy: the rule at ${h.pathHit.id} says "${h.pathHit.explanation}", and no HTTP rule under ${rule.id} allows ${method} there.`);
      }
      return deny(ctx, 'path_not_allowed', rule.id, `No HTTP rule under ${rule.id} (team ${principal.team}) allows ${method} ${path} on ${req.host}; requests that no HTTP rule names are denied.`);
    }
    ctx.matched.push(h.rule.id);
    decidingId = h.rule.id;
    if (h.rule.action === 'deny') {
      const why = h.rule.description ? ` — ${h.rule.description}` : '';
      return deny(ctx, httpDenyReason(h.rule), h.rule.id, `The ${principal.team} policy denies ${method} ${path} on ${req.host}: the rule at ${h.rule.id} says "${h.rule.explanation}"${why}.`);
    }
  }

  // 4. Agent rules only narrow: the request must be allowed by them too.
  if (agentTable) {
    const a = lookupRule(agentTable, req.host, ip, req.port);
    if (!a.rule || a.rule.action === 'deny') {
      if (a.rule) ctx.matched.push(a.rule.id);
      return deny(ctx, a.portMiss && !a.rule ? 'port_not_allowed' : 'host_not_allowed', a.rule?.id ?? null,
        `Agent ${principal.agent}'s own rules in ${set.org.file} ${a.rule ? `deny ${req.host} (rule at ${a.rule.id})` : `do not allow ${req.host}${a.portMiss ? ` on port ${req.port}` : ''}`}; an agent's rules can only narrow its team's policy.`);
    }
    ctx.matched.push(a.rule.id);
    if (!atConnect && a.rule.http && rule.action === 'allow') {
      const h = lookupHttp(a.rule.http, method, path);
      if (!h.rule || h.rule.action === 'deny') {
        if (h.rule) ctx.matched.push(h.rule.id);
        const reason = h.rule ? httpDenyReason(h.rule) : h.pathHit ? 'method_not_allowed' : 'path_not_allowed';
        return deny(ctx, reason, h.rule?.id ?? a.rule.id, `Agent ${principal.agent}'s own rules do not allow ${method} ${path} on ${req.host}${h.rule ? ` (rule at ${h.rule.id})` : ''}; an agent's rules can only narrow its team's policy.`);
      }
      ctx.matched.push(h.rule.id);
    }
  }

  // 5. Projects: the hosts of a project's connections need a grant; member grants are read-only.
  let project: string | undefined;
  let role: Role | undefined;
  const hostProjects = projectsForHost(set, req.host, ip);
  if (projectScope !== undefined) {
    const grant = team?.grants.get(projectScope);
    if (!grant) {
      return deny(ctx, 'project_not_granted', null, `Team ${principal.team} has no grant on project "${projectScope}" (named in the proxy user name ${principal.team}.${projectScope}).`);
    }
    if (hostProjects.length > 0 && !hostProjects.includes(projectScope)) {
      return deny(ctx, 'project_not_granted', null, `${req.host} belongs to project ${hostProjects.join(', ')}, not to ${projectScope}, the project this request acts for. Use ${principal.team}.${hostProjects[0]} as the proxy user name if team ${principal.team} is granted it.`);
    }
    project = projectScope;
    if (hostProjects.length > 0) role = grant;
  } else if (hostProjects.length > 0) {
    const candidates = hostProjects.filter((p) => team?.grants.has(p));
    if (candidates.length === 0) {
      return deny(ctx, 'project_not_granted', null, `${req.host} belongs to project ${hostProjects.join(', ')}, and team ${principal.team} has no grant on ${hostProjects.length > 1 ? 'any of them' : 'it'}.`);
    }
    if (candidates.length === 1) {
      project = candidates[0];
      role = team?.grants.get(candidates[0] as string);
    } else if (!atConnect) {
      const scoped = teamPolicy.bindings.some((b) => b.ref.project !== undefined && candidates.includes(b.ref.project) && bindingMatches(b, req.host, ip, method, path));
      const roles = candidates.map((p) => team?.grants.get(p));
      const allSame = roles.every((r) => r === roles[0]);
      if (scoped || (!READ_ONLY.has(method) && !allSame)) {
        return deny(ctx, 'project_ambiguous', null, `${req.host} belongs to several projects team ${principal.team} is granted (${candidates.join(', ')})${scoped ? ', each with its own credentials' : ' with different roles'}. Choose one with the proxy user name: ${candidates.map((p) => `${principal.team}.${p}`).join(' or ')}.`);
      }
      role = roles.includes('member') ? 'member' : 'admin';
    }
  }
  if (!atConnect && role === 'member' && !READ_ONLY.has(method)) {
    return deny(ctx, 'method_not_allowed', decidingId, `Team ${principal.team} is a member of project ${project ?? hostProjects.join(', ')}, which allows only GET, HEAD and OPTIONS on its connections (${req.host}); ${method} needs an admin grant.`, project);
  }

  if (rule.action === 'direct') {
    return allowed(principal.team, req, 'direct', decidingId, ctx.matched, NONE, false, project, role, rule, hostProjects);
  }
  if (atConnect) return allowed(principal.team, req, 'connect', decidingId, ctx.matched, NONE, false, project, role, rule, hostProjects);

  // 6. Credentials that apply: exact host, https on 443 only, narrowed by method, path and project.
  let credentials: CredentialBindingRef[] | null = null;
  let hostBound = false;
  const bindings = teamPolicy.bindings;
  for (let i = 0; i < bindings.length; i++) {
    const b = bindings[i] as CompiledBinding;
    if (!hostBound && hostPatternMatches(b.host, req.host, ip)) hostBound = true;
    if (b.ref.project !== undefined && b.ref.project !== project) continue;
    if (!bindingMatches(b, req.host, ip, method, path)) continue;
    if (req.scheme !== 'https' || req.port !== 443) {
      if (b.ref.kind === 'aws') continue;
      return deny(ctx, 'credential_insecure', b.ref.id, `Team ${principal.team} injects a credential for ${req.host} (binding ${b.ref.name} at ${b.ref.id}), and credentials are only sent over https on port 443. Use https://${req.host}${path}.`, project);
    }
    (credentials ??= []).push(b.ref);
    ctx.matched.push(b.ref.id);
  }
  return allowed(principal.team, req, 'request', decidingId, ctx.matched, credentials ?? NONE, hostBound, project, role, rule, hostProjects);
}

/** An allow or direct decision; its explanation is built only when read (most allows are never explained). */
function allowed(
  team: string,
  req: DecisionRequest,
  kind: 'direct' | 'connect' | 'request',
  decidingId: string,
  matched: readonly string[],
  credentials: readonly CredentialBindingRef[],
  hostBound: boolean,
  project: string | undefined,
  role: Role | undefined,
  rule: CompiledRule,
  hostProjects: readonly string[],
): Decision {
  return {
    effect: kind === 'direct' ? 'direct' : 'allow',
    reason: kind === 'direct' ? 'direct' : 'allowed',
    rule: decidingId,
    matched,
    team,
    get explanation(): string {
      return explainAllowed(team, req, kind, decidingId, rule, project, role, hostProjects);
    },
    intercept: kind !== 'direct',
    credentials,
    hostBound,
    project,
    role,
  };
}

function explainAllowed(team: string, req: DecisionRequest, kind: 'direct' | 'connect' | 'request', decidingId: string, rule: CompiledRule, project: string | undefined, role: Role | undefined, hostProjects: readonly string[]): string {
  if (kind === 'direct') {
    return `Allowed as a direct tunnel: ${target(req)}, by the rule at ${rule.id} of the ${team} policy (${rule.explanation}). The traffic is not inspected and no credentials are injected.`;
  }
  if (kind === 'connect') {
    return `Allowed: ${target(req)}, by the rule at ${rule.id} of the ${team} policy (${rule.explanation}). The tunnel is intercepted and each request inside it is decided again.`;
  }
  const http = rule.http?.find((h) => h.id === decidingId);
  const what = http ? `the HTTP rule at ${decidingId} (under ${rule.id})` : `the rule at ${rule.id}`;
  const member = role === 'member' ? `; read-only as a member of project ${project ?? hostProjects.join(', ')}` : '';
  return `Allowed: ${target(req)}, by ${what} of the ${team} policy (${http ? http.explanation : rule.explanation})${member}.`;
}

/** A guardrail that matches host and port: `decided` when it denies now; otherwise it needs the tunnel inspected. */
function findGuardrail(table: RuleTable, host: string, ip: ParsedIp | null, port: number, method: string, path: string, atConnect: boolean):
  { rule: CompiledRule; http: CompiledHttpRule | null; decided: boolean } | null {
  let pending: CompiledRule | null = null;
  for (const r of table.rules) {
    if (!hostPatternMatches(r.host, host, ip)) continue;
    if (r.ports !== null && !r.ports.has(port)) continue;
    if (r.http === null) return { rule: r, http: null, decided: true };
    if (atConnect) {
      pending ??= r;
      continue;
    }
    for (const h of r.http) {
      if ((h.methods === null || h.methods.has(method)) && pathMatches(h, path)) return { rule: r, http: h, decided: true };
    }
  }
  return pending ? { rule: pending, http: null, decided: false } : null;
}

/**
 * Whether an IP or CIDR rule of this team names `ip` (a non-public address passes only when a
 * rule names it). Rules are taken in order: a deny naming the address first wins, and org
 * guardrails naming it always win. `*` and host-name rules never count.
 */
export function addressAllowedByRule(set: CompiledPolicySet, team: string, ip: ParsedIp, port: number): { allowed: boolean; rule: string | null } {
  const onPort = (r: CompiledRule) => r.ports === null || r.ports.has(port);
  for (const r of set.guardrails.rules) {
    if ((r.host.kind === 'ip' || r.host.kind === 'cidr') && r.http === null && onPort(r) && hostPatternMatches(r.host, '', ip)) return { allowed: false, rule: r.id };
  }
  const policy = set.teams.get(team);
  if (!policy) return { allowed: false, rule: null };
  for (const at of policy.table.addresses) {
    const r = policy.table.rules[at] as CompiledRule;
    // A rule names an address only on its ports: `10.20.0.0/16 ... ports: [8443]` lets a name
    // resolve into that range for port 8443, not for 443.
    if (!onPort(r) || !hostPatternMatches(r.host, '', ip)) continue;
    return { allowed: r.action !== 'deny', rule: r.id };
  }
  return { allowed: false, rule: null };
}
