// Owns: which rules of a compiled policy set let the gateway dial non-public addresses — an IP or
// CIDR rule that allows (or passes through) a range that is not entirely public — and which of
// those a new policy set adds over the one in force: what a hot reload must not do on its own
// (security case 7.05: a reload that would weaken invariants, for example by allowing private
// ranges, is refused unless an explicit flag is set). PURE.
import type { Problem } from '../errors.ts';
import { describePorts } from './explain.ts';
import { cidrCoversCidr, formatCidr, parseAddressRule, type Cidr } from './match/address.ts';
import type { CompiledPolicySet, CompiledRule, RuleTable } from './types.ts';

/** Parses built-in ranges (exported for its test: a typo in the tables below must fail loudly). */
export function cidrs(texts: readonly string[]): Cidr[] {
  return texts.map((t) => {
    const r = parseAddressRule(t);
    if (!r?.ok) throw new Error(`address-widening: bad built-in range ${t}`);
    return r.cidr;
  });
}

/**
 * IPv4 ranges holding every address src/classify/classify-address.ts does not call public
 * (unspecified, private, CGNAT, loopback, link-local and metadata, IETF, documentation, 6to4
 * relay, benchmarking, multicast, reserved and broadcast). Kept equal by a unit test.
 */
export const NON_PUBLIC_V4: readonly Cidr[] = cidrs([
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15',
  '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/3',
]);
/** IPv6: only global unicast is public, less these (Teredo and 6to4 embed IPv4 of any class). */
const GLOBAL_V6 = cidrs(['2000::/3'])[0] as Cidr;
export const NON_PUBLIC_IN_GLOBAL_V6: readonly Cidr[] = cidrs([
  '2001::/32', '2001:2::/48', '2001:10::/28', '2001:20::/28', '2001:db8::/32', '2002::/16', '3fff::/20',
]);

const overlaps = (a: Cidr, b: Cidr) => cidrCoversCidr(a, b) || cidrCoversCidr(b, a);

/** Whether every address in `c` is public (a CIDR either holds a special range, lies in one, or misses it). */
export function entirelyPublic(c: Cidr): boolean {
  if (c.family === 4) return !NON_PUBLIC_V4.some((r) => overlaps(r, c));
  return cidrCoversCidr(GLOBAL_V6, c) && !NON_PUBLIC_IN_GLOBAL_V6.some((r) => overlaps(r, c));
}

/** One rule that lets the gateway dial non-public addresses. */
export interface NonPublicGrant {
  /** The team key. */
  readonly scope: string;
  readonly rule: CompiledRule;
  readonly cidr: Cidr;
}

function grantsOf(scope: string, table: RuleTable): NonPublicGrant[] {
  return addressRules(table, (r) => r.action !== 'deny').map((a) => ({ scope, rule: a.rule, cidr: a.cidr }));
}

/**
 * Every allow or direct IP/CIDR rule over non-public addresses, team by team. (The org guardrails
 * only deny, and agents' rules only narrow their team's: neither can grant an address.)
 */
export function nonPublicGrants(set: CompiledPolicySet): NonPublicGrant[] {
  const out: NonPublicGrant[] = [];
  for (const [team, policy] of set.teams) out.push(...grantsOf(team, policy.table));
  return out;
}

/** `a` admits every port `b` does (null: every port). */
export function portsCover(a: ReadonlySet<number> | null, b: ReadonlySet<number> | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  for (const p of b) if (!a.has(p)) return false;
  return true;
}

/** Where a rule id ("policies/sre.yaml:14") points. */
export function position(ruleId: string): { file: string; line: number } {
  const m = /^(.*):(\d+)$/.exec(ruleId);
  return m ? { file: m[1] as string, line: Number(m[2]) } : { file: ruleId, line: 1 };
}

const portsOverlap = (a: ReadonlySet<number> | null, b: ReadonlySet<number> | null): boolean =>
  a === null || b === null || [...a].some((p) => b.has(p));

interface AddressRule { readonly rule: CompiledRule; readonly cidr: Cidr; readonly at: number }

/** The IP/CIDR rules of a table over non-public space that pass `keep`, with their places in the table. */
function addressRules(table: RuleTable, keep: (r: CompiledRule) => boolean): AddressRule[] {
  const out: AddressRule[] = [];
  table.rules.forEach((rule, at) => {
    if ((rule.host.kind === 'ip' || rule.host.kind === 'cidr') && keep(rule) && !entirelyPublic(rule.host.cidr)) out.push({ rule, cidr: rule.host.cidr, at });
  });
  return out;
}
/** Guardrails the dial path applies to an address: whole-host ones (no `http:`); guardrails only deny. */
const addressGuardrails = (set: CompiledPolicySet) => addressRules(set.guardrails, (r) => r.http === null);
const teamDenies = (table: RuleTable) => addressRules(table, (r) => r.action === 'deny');

function problemAt(ruleId: string, message: string): Problem {
  const where = position(ruleId);
  return { file: where.file, line: where.line, col: 1, severity: 'error', message };
}

const HOW = 'a hot reload never widens into private, loopback, link-local or other non-public address space — restart the gateway to apply it, or set policy_reload.allow_non_public: true in tollgate.yaml';

/**
 * What `next` lets a team dial among non-public addresses that `current` did not — the address
 * check of the dial path (decide.ts addressAllowedByRule: org guardrails first, then the team's
 * IP/CIDR rules in order) — as problems at the rule concerned:
 * - an allow or direct rule over a range (or ports) no rule of the team's covered before;
 * - a guardrail that kept such a range from the teams removed or narrowed while a team grants it;
 * - a team's deny that came before a grant it overlaps removed, narrowed or moved after it.
 * Conservative: an allow hidden behind an earlier deny still counts as new (a false alarm in the
 * safe direction). Agents' rules and project grants only narrow what a team may reach and are not
 * compared.
 */
export function nonPublicWidening(current: CompiledPolicySet, next: CompiledPolicySet): Problem[] {
  const before = nonPublicGrants(current);
  const after = nonPublicGrants(next);
  const problems: Problem[] = [];
  for (const g of after) {
    const held = before.some((p) => p.scope === g.scope && cidrCoversCidr(p.cidr, g.cidr) && portsCover(p.rule.ports, g.rule.ports));
    if (held) continue;
    problems.push(problemAt(g.rule.id, `this change would newly let team ${g.scope} reach non-public addresses (${formatCidr(g.cidr)} ${describePorts(g.rule.ports)}); ${HOW}`));
  }
  const guardsNext = addressGuardrails(next);
  for (const d of addressGuardrails(current)) {
    const kept = guardsNext.some((n) => cidrCoversCidr(n.cidr, d.cidr) && portsCover(n.rule.ports, d.rule.ports));
    const exposed = after.filter((g) => overlaps(g.cidr, d.cidr) && portsOverlap(g.rule.ports, d.rule.ports));
    if (kept || exposed.length === 0) continue;
    const teams = [...new Set(exposed.map((g) => g.scope))].join(', ');
    problems.push(problemAt(d.rule.id, `this change removes or narrows the guardrail that kept every team from ${formatCidr(d.cidr)} ${describePorts(d.rule.ports)}, which would let team ${teams} reach it; ${HOW}`));
  }
  for (const [team, policy] of current.teams) {
    const nextTable = next.teams.get(team)?.table;
    if (!nextTable) continue;
    const denies = teamDenies(policy.table);
    if (denies.length === 0) continue;
    const denyNext = teamDenies(nextTable);
    for (const g of after) {
      if (g.scope !== team) continue;
      const at = nextTable.rules.indexOf(g.rule);
      for (const d of denies) {
        if (!overlaps(d.cidr, g.cidr) || !portsOverlap(d.rule.ports, g.rule.ports)) continue;
        const kept = denyNext.some((n) => n.at < at && cidrCoversCidr(n.cidr, d.cidr) && portsCover(n.rule.ports, d.rule.ports));
        if (kept) continue;
        problems.push(problemAt(g.rule.id, `this change would let team ${team} reach ${formatCidr(d.cidr)} ${describePorts(d.rule.ports)} through this rule: the deny that came before it (${d.rule.id}) is gone, narrower or after it now; ${HOW}`));
      }
    }
  }
  return problems;
}
