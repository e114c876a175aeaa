// Owns: the pilot verification report of `tollgate pilot verify --team T` — from a team's audit
// rows over a window: the members seen with their actions (method × host) and last sighting, the
// token holders not seen, the team's agents, the requests denied by policy grouped by host, method
// and rule with examples, the other refusals, the anomalous rows, and the verdict. The report is
// its own JSON shape (snake_case, ISO times), printed by `--json`. PURE: rows, org facts and token
// records are arguments; the rows are consumed once, as they stream.
import type { AuditRequestRow } from '../audit/audit-record.ts';

/** The columns of an audit row the report reads. */
export type PilotAuditRow = Pick<AuditRequestRow,
  'request_id' | 'time' | 'principal_kind' | 'subject' | 'agent' | 'team' | 'kind' | 'method' | 'host' | 'path' | 'decision' | 'rule' | 'reason' | 'status'>;

/** A gateway token as `tollgate token list` shows it (times ISO 8601); never the token itself. */
export interface PilotTokenRecord {
  kind: 'user' | 'agent';
  subject: string;
  teams: readonly string[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface PilotInput {
  team: { key: string; name: string; idpGroups: readonly string[] };
  /** Every agent of org.yaml (the team's are picked out). */
  agents: ReadonlyArray<{ key: string; name: string; team: string }>;
  /** Every token in the store (users holding a token for the team during the window are its known members). */
  tokens: readonly PilotTokenRecord[];
  /** The team's audit rows in the window, in any order. */
  rows: Iterable<PilotAuditRow>;
  window: { since: number; until: number };
  /** Examples kept per denial group (default 3). */
  examples?: number;
  /** Anomalous rows listed (default 50; all are counted). */
  maxAnomalies?: number;
}

/** Denial reasons that come from the policy (a rule, the default deny, a project grant, a credential binding). */
export const POLICY_DENY_REASONS: ReadonlySet<string> = new Set([
  'host_not_allowed', 'port_not_allowed', 'path_not_allowed', 'method_not_allowed', 'ip_not_allowed', 'upgrade_not_allowed',
  'self_connection', 'project_not_granted', 'project_ambiguous', 'principal_unknown', 'credential_insecure',
  'credential_reflected', 'placeholder_required',
]);

export interface PilotAction { method: string; host: string; requests: number; allowed: number; denied: number; refused: number }

export interface PilotActor {
  /** Requests other than the intercepted CONNECT that carried them. */
  requests: number;
  allowed: number;
  denied: number;
  refused: number;
  last_seen: string;
  actions: PilotAction[];
}

export interface PilotMember extends PilotActor { user: string }
export interface PilotAgent extends PilotActor { agent: string; declared: boolean }

export interface PilotDenialExample { time: string; request_id: string; who: string | null; path: string | null; status: number | null }

export interface PilotDenial {
  host: string;
  method: string;
  /** `file:line` of the deciding rule; null when no rule matched (the default deny) or a grant decided. */
  rule: string | null;
  reason: string | null;
  requests: number;
  /** Distinct users and agents. */
  subjects: number;
  examples: PilotDenialExample[];
}

export type PilotAnomalyKind = 'unattributed' | 'forwarded_without_rule';

export interface PilotAnomaly extends PilotDenialExample {
  kind: PilotAnomalyKind;
  method: string;
  host: string;
  decision: string;
  reason: string | null;
}

export type PilotCheckCode = 'member_seen' | 'policy_accounted';

export interface PilotReport {
  team: string;
  team_name: string;
  since: string;
  until: string;
  /** Every row of the team in the window. */
  requests: number;
  membership: { source: 'idp_groups'; idp_groups: string[]; token_holders: number; note: string };
  members: PilotMember[];
  /** Users who held a token for the team during the window and made no request for it. */
  members_not_seen: Array<{ user: string; last_token_use: string | null }>;
  agents: PilotAgent[];
  /** The team's agents in org.yaml that made no request. */
  agents_not_seen: string[];
  /** Refused by the team's policy. */
  denials: PilotDenial[];
  /** Refused for another reason (budget, malformed request, rate limit, gateway fault). */
  refusals: Array<{ reason: string | null; status: number | null; requests: number }>;
  anomaly_count: number;
  anomalies: PilotAnomaly[];
  verdict: { pass: boolean; checks: Array<{ code: PilotCheckCode; ok: boolean; detail: string }> };
}

type Outcome = 'allowed' | 'denied' | 'refused';

interface ActorAcc { requests: number; allowed: number; denied: number; refused: number; last: number; actions: Map<string, PilotAction> }

const iso = (ms: number) => new Date(ms).toISOString();

function outcomeOf(r: PilotAuditRow): Outcome {
  if (r.decision === 'allow' || r.decision === 'direct') return 'allowed';
  if (r.decision === 'deny' && (r.reason === null ? r.rule !== null : POLICY_DENY_REASONS.has(r.reason))) return 'denied';
  return 'refused';
}

function newActor(): ActorAcc {
  return { requests: 0, allowed: 0, denied: 0, refused: 0, last: -Infinity, actions: new Map() };
}

function count(acc: ActorAcc, r: PilotAuditRow, outcome: Outcome): void {
  acc.last = Math.max(acc.last, r.time);
  // An intercepted tunnel's CONNECT only carries the requests inside it, which have rows of their own.
  if (r.kind === 'tunnel' && r.decision === 'allow') return;
  acc.requests++;
  acc[outcome]++;
  const a = entry(acc.actions, `${r.method} ${r.host}`, () => ({ method: r.method, host: r.host, requests: 0, allowed: 0, denied: 0, refused: 0 }));
  a.requests++;
  a[outcome]++;
}

function actorJson(acc: ActorAcc): PilotActor {
  return {
    requests: acc.requests, allowed: acc.allowed, denied: acc.denied, refused: acc.refused, last_seen: iso(acc.last),
    actions: [...acc.actions.values()].sort((a, b) => b.requests - a.requests || a.host.localeCompare(b.host) || a.method.localeCompare(b.method)),
  };
}

function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

const byRequestsThen = <T extends { requests: number }>(key: (x: T) => string) => (a: T, b: T) => b.requests - a.requests || key(a).localeCompare(key(b));

/** Users with a token for the team that was usable at some time in the window. */
function tokenHolders(tokens: readonly PilotTokenRecord[], team: string, w: { since: number; until: number }): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const t of tokens) {
    if (t.kind !== 'user' || !t.teams.includes(team)) continue;
    const ends = Math.min(Date.parse(t.expiresAt), t.revokedAt === null ? Infinity : Date.parse(t.revokedAt));
    if (Date.parse(t.createdAt) >= w.until || ends < w.since) continue;
    const used = t.lastUsedAt === null ? null : Date.parse(t.lastUsedAt);
    const prev = out.get(t.subject);
    out.set(t.subject, prev === undefined || prev === null ? used : used === null ? prev : Math.max(prev, used));
  }
  return out;
}

export function buildPilotReport(input: PilotInput): PilotReport {
  const team = input.team.key;
  const maxExamples = input.examples ?? 3;
  const maxAnomalies = input.maxAnomalies ?? 50;
  const members = new Map<string, ActorAcc>();
  const agents = new Map<string, ActorAcc>();
  const denials = new Map<string, PilotDenial & { who: Set<string> }>();
  const refusals = new Map<string, { reason: string | null; status: number | null; requests: number }>();
  const anomalies: PilotAnomaly[] = [];
  let anomalyCount = 0;
  let requests = 0;

  const anomaly = (kind: PilotAnomalyKind, r: PilotAuditRow, who: string | null) => {
    anomalyCount++;
    if (anomalies.length < maxAnomalies) {
      anomalies.push({ kind, time: iso(r.time), request_id: r.request_id, who, method: r.method, host: r.host, path: r.path, decision: r.decision, reason: r.reason, status: r.status });
    }
  };

  for (const r of input.rows) {
    if (r.team !== team) continue;
    requests++;
    const outcome = outcomeOf(r);
    const agentName = r.principal_kind === 'agent' ? (r.agent ?? r.subject) : null;
    const who = r.principal_kind === 'user' ? r.subject : agentName;
    if (r.principal_kind === 'user' && r.subject !== null) {
      count(entry(members, r.subject, newActor), r, outcome);
    } else if (agentName !== null) {
      count(entry(agents, agentName, newActor), r, outcome);
    } else {
      anomaly('unattributed', r, null);
    }
    if (outcome === 'allowed' && r.rule === null) anomaly('forwarded_without_rule', r, who);
    if (outcome === 'denied') {
      const d = entry(denials, JSON.stringify([r.host, r.method, r.rule, r.reason]),
        () => ({ host: r.host, method: r.method, rule: r.rule, reason: r.reason, requests: 0, subjects: 0, examples: [], who: new Set<string>() }));
      d.requests++;
      if (who !== null) d.who.add(who);
      if (d.examples.length < maxExamples) d.examples.push({ time: iso(r.time), request_id: r.request_id, who, path: r.path, status: r.status });
    } else if (outcome === 'refused') {
      entry(refusals, JSON.stringify([r.reason, r.status]), () => ({ reason: r.reason, status: r.status, requests: 0 })).requests++;
    }
  }

  const holders = tokenHolders(input.tokens, team, input.window);
  const teamAgents = input.agents.filter((a) => a.team === team);
  const memberList = [...members].map(([user, acc]) => ({ user, ...actorJson(acc) })).sort(byRequestsThen((m) => m.user));
  const active = memberList.filter((m) => m.requests > 0);
  const actions = active.reduce((n, m) => n + m.requests, 0);
  const memberSeen = active.length > 0;
  const accounted = anomalyCount === 0;
  const groups = input.team.idpGroups.join(', ');

  return {
    team,
    team_name: input.team.name,
    since: iso(input.window.since),
    until: iso(input.window.until),
    requests,
    membership: {
      source: 'idp_groups',
      idp_groups: [...input.team.idpGroups],
      token_holders: holders.size,
      note: `org.yaml lists no members: team ${team} is whoever the identity provider puts in ${groups ? `the group(s) ${groups}` : 'its groups'}. ` +
        'The members seen are the users whose requests were attributed to the team; the members not seen are users who held a token for the team during the window.',
    },
    members: memberList,
    members_not_seen: [...holders].filter(([user]) => !members.has(user)).sort(([a], [b]) => a.localeCompare(b))
      .map(([user, used]) => ({ user, last_token_use: used === null ? null : iso(used) })),
    agents: [...agents].map(([agent, acc]) => ({ agent, declared: teamAgents.some((a) => a.key === agent), ...actorJson(acc) })).sort(byRequestsThen((a) => a.agent)),
    agents_not_seen: teamAgents.filter((a) => !agents.has(a.key)).map((a) => a.key),
    denials: [...denials.values()].map(({ who, ...d }) => ({ ...d, subjects: who.size }))
      .sort(byRequestsThen((d) => `${d.host} ${d.method} ${d.rule ?? ''}`)),
    refusals: [...refusals.values()].sort(byRequestsThen((f) => f.reason ?? '')),
    anomaly_count: anomalyCount,
    anomalies,
    verdict: {
      pass: memberSeen && accounted,
      checks: [
        {
          code: 'member_seen', ok: memberSeen,
          detail: memberSeen ? `${active.length} member(s) seen with ${actions} attributed request(s)` : `no member of team ${team} made a request in the window`,
        },
        {
          code: 'policy_accounted', ok: accounted,
          detail: accounted ? `every one of the ${requests} request(s) was attributed and either allowed by a rule or refused`
            : `${anomalyCount} request(s) were not attributed to a user or agent, or were forwarded without a policy rule`,
        },
      ],
    },
  };
}
