// Owns: org.yaml text → a validated OrgConfig (camelCase, frozen by the compiler), with every
// problem reported as file:line:col. Checks what org.yaml alone can know: names, grants naming
// real projects, agents naming real teams, connection hosts, Kubernetes API server URLs. Reads no
// files (the shell is policy-source.ts; connection CA files are read by src/upstream).
import type { Problem } from '../errors.ts';
import { parseRequestIp } from '../policy/match/address.ts';
import { hostPatternMatches, parseHostPattern } from '../policy/match/host-pattern.ts';
import type { Agent, Budget, Connection, OrgConfig, Project, Role, Team } from '../policy/types.ts';
import { OrgSchema, type BudgetSource, type OrgSource } from './policy-schemas.ts';
import { validateAgainstSchema } from './validate-schema.ts';
import { findCycle } from './yaml-cycles.ts';
import { parseYamlSource, type YamlSource } from './yaml-source.ts';

const KEY = /^[a-z0-9][a-z0-9_-]*$/;

export interface ParsedOrg {
  readonly org: OrgConfig;
  readonly source: YamlSource;
  readonly value: OrgSource;
}

export type OrgParseResult = { ok: true; parsed: ParsedOrg; warnings: Problem[] } | { ok: false; problems: Problem[] };

/** Reads and checks YAML text of org.yaml. `defaultPolicyFile(team)` names a team's policy when `policy:` is absent. */
export function parseOrgConfig(
  file: string,
  text: string,
  defaultPolicyFile: (team: string) => string = (team) => `policies/${team}.yaml`,
): OrgParseResult {
  if (text.trim() === '') return { ok: false, problems: [{ file, line: 1, col: 1, severity: 'error', message: 'the file is empty; org.yaml needs at least organization: and teams:' }] };
  const parsed = parseYamlSource(file, text);
  if (!parsed.ok) return parsed;
  const source = parsed.source;
  const cycle = findCycle(source.value);
  if (cycle) return { ok: false, problems: [{ ...source.positionOf(cycle), severity: 'error', message: 'this alias refers to a node that contains it (a cycle); write the value out instead' }] };
  if (source.value === null || typeof source.value !== 'object' || Array.isArray(source.value)) {
    return { ok: false, problems: [{ ...source.positionOf([]), severity: 'error', message: 'org.yaml must be a mapping with organization:, teams: and projects:' }] };
  }
  const checked = validateAgainstSchema(source, OrgSchema);
  if (!checked.ok) return checked;
  const result = buildOrgConfig(source, checked.value, defaultPolicyFile);
  return result;
}

function budgetOf(b: BudgetSource | undefined): Budget | undefined {
  return b ? { monthlyUsd: b.monthly_usd, dailyUsd: b.daily_usd } : undefined;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

function everySeconds(every: string | undefined): number | undefined {
  if (!every) return undefined;
  const unit = every.slice(-1);
  return Number(every.slice(0, -1)) * (UNIT_SECONDS[unit] ?? 0);
}

/**
 * Why a kubernetes connection's `server:` is unusable, or null: it must be an https URL on port
 * 443 (the only port the gateway sends credentials on: decide.ts refuses any other with
 * credential_insecure) without credentials, query or fragment whose host is one of the
 * connection's `hosts` (so the gateway's policy, credentials and CA pinning for the connection
 * apply to it). PURE.
 */
export function connectionServerProblem(server: string, hosts: readonly string[]): string | null {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return `server "${server}" is not a URL; write https://host[:port]`;
  }
  if (url.protocol !== 'https:') return `server "${server}" must use https:// (the gateway intercepts and verifies the API server's TLS)`;
  if (url.username !== '' || url.password !== '') return 'server must not carry credentials; the gateway injects the bound token';
  if (url.search !== '' || url.hash !== '') return `server "${server}" must not have a query or fragment`;
  const bare = url.hostname.replace(/^\[|\]$/g, ''); // an IPv6 literal without its brackets
  if (url.port !== '') {
    return `server "${server}" names port ${url.port}, but the gateway sends credentials only over https on port 443 ` +
      '(any other port is refused as credential_insecure), so kubectl could not reach it through the gateway; ' +
      `write https://${url.hostname}${url.pathname === '/' ? '' : url.pathname} and, since the API server listens on ${url.port}, ` +
      `have the gateway dial it there with upstreams: { ${bare}: <address>:${url.port} } in tollgate.yaml`;
  }
  const host = bare.replace(/\.$/, '');
  const ip = parseRequestIp(host);
  for (const h of hosts) {
    const r = parseHostPattern(h);
    if (r.ok && hostPatternMatches(r.pattern, host, ip)) return null;
  }
  return `server host ${host} is not one of this connection's hosts (${hosts.join(', ')}); add it to hosts: or fix the URL`;
}

export function buildOrgConfig(
  source: YamlSource,
  value: OrgSource,
  defaultPolicyFile: (team: string) => string,
): OrgParseResult {
  const file = source.file;
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const err = (path: (string | number)[], message: string, key = false) =>
    problems.push({ ...source.positionOf(path, { key }), severity: 'error', message });
  const warn = (path: (string | number)[], message: string, key = false) =>
    warnings.push({ ...source.positionOf(path, { key }), severity: 'warning', message });

  const projects = new Map<string, Project>();
  for (const [key, p] of Object.entries(value.projects ?? {})) {
    if (!KEY.test(key)) err(['projects', key], `project key "${key}" must be lower case letters, digits, "-" or "_"`, true);
    const seen = new Set<string>();
    const connections: Connection[] = p.connections.map((c, ci) => {
      if (seen.has(c.name)) err(['projects', key, 'connections', ci, 'name'], `connection "${c.name}" appears twice in project ${key}`);
      seen.add(c.name);
      c.hosts.forEach((h, hi) => {
        const r = parseHostPattern(h);
        if (!r.ok) err(['projects', key, 'connections', ci, 'hosts', hi], r.message);
        else if (r.pattern.kind === 'any') err(['projects', key, 'connections', ci, 'hosts', hi], `a connection cannot own every host ("*"); list the hosts that belong to ${key}`);
      });
      if (c.server !== undefined) {
        const at = ['projects', key, 'connections', ci, 'server'];
        if (c.kind !== 'kubernetes') err(at, `server: belongs to kind: kubernetes connections (connection ${c.name} is ${c.kind === undefined ? 'of no kind' : `kind: ${c.kind}`})`);
        else {
          const problem = connectionServerProblem(c.server, c.hosts);
          if (problem !== null) err(at, problem);
        }
      }
      return { name: c.name, kind: c.kind, hosts: c.hosts.map((h) => h.replace(/\.$/, '')), ca: c.ca, server: c.server, account: c.account };
    });
    projects.set(key, { key, name: p.name, connections });
  }

  const teams = new Map<string, Team>();
  const groupOwner = new Map<string, string>();
  for (const [key, t] of Object.entries(value.teams)) {
    if (!KEY.test(key)) err(['teams', key], `team key "${key}" must be lower case letters, digits, "-" or "_" (it is the proxy user name)`, true);
    if (key.startsWith('_')) err(['teams', key], `team key "${key}" may not start with "_" (reserved for _org.yaml)`, true);
    const grants = new Map<string, Role>();
    for (const [project, role] of Object.entries(t.projects ?? {})) {
      if (!projects.has(project)) {
        err(['teams', key, 'projects', project], `team ${key} is granted unknown project "${project}"; projects are ${[...projects.keys()].join(', ') || '(none defined)'}`, true);
      }
      grants.set(project, role);
    }
    for (const g of t.idp_groups) {
      const other = groupOwner.get(g);
      if (other) warn(['teams', key, 'idp_groups'], `IdP group "${g}" maps to teams ${other} and ${key}; its members will have to name the team in the proxy user name`);
      else groupOwner.set(g, key);
    }
    teams.set(key, {
      key,
      name: t.name,
      idpGroups: t.idp_groups,
      grants,
      policyFile: t.policy ?? defaultPolicyFile(key),
      budget: budgetOf(t.budget),
      userBudget: budgetOf(t.user_budget),
    });
  }
  if (teams.size === 0) err(['teams'], 'no teams are defined; every request is decided by a team policy');

  const agents = new Map<string, Agent>();
  for (const [key, a] of Object.entries(value.agents ?? {})) {
    if (!KEY.test(key)) err(['agents', key], `agent key "${key}" must be lower case letters, digits, "-" or "_"`, true);
    const team = teams.get(a.team);
    if (!team) err(['agents', key, 'team'], `agent ${key} names unknown team "${a.team}"; teams are ${[...teams.keys()].join(', ')}`);
    if (a.project !== undefined) {
      if (!projects.has(a.project)) err(['agents', key, 'project'], `agent ${key} names unknown project "${a.project}"`);
      else if (team && !team.grants.has(a.project)) err(['agents', key, 'project'], `agent ${key} acts for project ${a.project}, but team ${a.team} has no grant on it`);
    }
    agents.set(key, {
      key,
      name: a.name,
      team: a.team,
      project: a.project,
      every: a.every,
      everySeconds: everySeconds(a.every),
      command: a.command,
      budget: budgetOf(a.budget),
    });
  }

  const users = new Map<string, { budget: Budget | undefined }>();
  for (const [email, u] of Object.entries(value.users ?? {})) {
    if (!/^[^@\s]+@[^@\s]+$/.test(email)) err(['users', email], `users are keyed by e-mail address; "${email}" is not one`, true);
    users.set(email.toLowerCase(), { budget: budgetOf(u.budget) });
  }

  if (problems.length > 0) return { ok: false, problems: [...problems, ...warnings] };
  const org: OrgConfig = {
    file,
    organization: value.organization,
    budget: budgetOf(value.budget),
    adminGroups: value.admins?.idp_groups ?? [],
    declaredSecrets: value.secrets,
    projects,
    teams,
    agents,
    users,
  };
  return { ok: true, parsed: { org, source, value }, warnings };
}

/** Teams whose IdP groups intersect `groups`, in org.yaml order. */
export function teamsForGroups(org: OrgConfig, groups: readonly string[]): string[] {
  const set = new Set(groups);
  return [...org.teams.values()].filter((t) => t.idpGroups.some((g) => set.has(g))).map((t) => t.key);
}

/** Whether any of `groups` is an admin group. */
export function isAdminGroup(org: OrgConfig, groups: readonly string[]): boolean {
  return groups.some((g) => org.adminGroups.includes(g));
}
