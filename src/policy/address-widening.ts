// Owns: which rules of a compiled policy set let the gateway dial non-public addresses — an IP or
// CIDR rule that allows (or passes through) a range that is not entirely public — and which of
// those a new policy set adds over the one in force: what a hot reload must not do on its own
// (security case 7.05: a reload that would weaken invariants, for example by allowing private
// ranges, is refused unless an explicit flag is set). PURE.
import type { Problem } from '../errors.ts';
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
  const out: NonPublicGrant[] = [];
  for (const rule of table.rules) {
    if (rule.action === 'deny' || (rule.host.kind !== 'ip' && rule.host.kind !== 'cidr')) continue;
    if (!entirelyPublic(rule.host.cidr)) out.push({ scope, rule, cidr: rule.host.cidr });
  }
  return out;
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

/** "every port", "port 80", "ports 80, 443". */
export function describePorts(ports: ReadonlySet<number> | null): string {
  if (ports === null) return 'every port';
  return `port${ports.size === 1 ? '' : 's'} ${[...ports].sort((a, b) => a - b).join(', ')}`;
}

/**
 * The rules of `next` that reach non-public addresses `current` did not let the same scope reach
 * (the same or a wider range, on the same or more ports), as problems at each rule. Rule order is
 * not considered: a new allow listed after a deny that hides it still counts (a false alarm in the
 * safe direction).
 */
export function nonPublicWidening(current: CompiledPolicySet, next: CompiledPolicySet): Problem[] {
  const before = nonPublicGrants(current);
  const problems: Problem[] = [];
  for (const g of nonPublicGrants(next)) {
    const held = before.some((p) => p.scope === g.scope && cidrCoversCidr(p.cidr, g.cidr) && portsCover(p.rule.ports, g.rule.ports));
    if (held) continue;
    const where = position(g.rule.id);
    const ports = describePorts(g.rule.ports);
    problems.push({
      file: where.file, line: where.line, col: 1, severity: 'error',
      message: `this change would newly let team ${g.scope} reach non-public addresses (${formatCidr(g.cidr)} on ${ports}); a hot reload never widens into private, loopback, link-local or other non-public address space — restart the gateway to apply it, or set policy_reload.allow_non_public: true in tollgate.yaml`,
    });
  }
  return problems;
}
