// Owns: budget arithmetic — which budget lines (scope × window) a request is charged to, the UTC
// calendar windows and their reset times, the admission rule with in-flight reservations, and the
// threshold crossings (50/80/100 %). Spend is attributed to the window in which the request was
// ADMITTED: a request admitted at 23:59:59.9 that finishes after midnight counts for the old day.
// A new window is a new counter that starts at 0; nothing is ever "reset". PURE (time is an argument).
import type { Budget, OrgConfig } from '../policy/types.ts';
import { formatUsd, usdToMicros } from './prices.ts';

export type WindowKind = 'month' | 'day';

export interface BudgetWindow {
  readonly kind: WindowKind;
  /** "month:2026-11" or "day:2026-11-26" — the counter key */
  key: string;
  startsAt: number;
  resetsAt: number;
}

// The last window of each kind: nearly every request falls in the same month and day.
const lastWindow: Record<WindowKind, BudgetWindow | undefined> = { month: undefined, day: undefined };

export function budgetWindow(kind: WindowKind, atMs: number): BudgetWindow {
  const last = lastWindow[kind];
  if (last !== undefined && atMs >= last.startsAt && atMs < last.resetsAt) return last;
  const w = Object.freeze(computeWindow(kind, atMs));
  lastWindow[kind] = w;
  return w;
}

function computeWindow(kind: WindowKind, atMs: number): BudgetWindow {
  const d = new Date(atMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (kind === 'month') {
    return { kind, key: `month:${y}-${String(m + 1).padStart(2, '0')}`, startsAt: Date.UTC(y, m, 1), resetsAt: Date.UTC(y, m + 1, 1) };
  }
  const day = d.getUTCDate();
  return {
    kind,
    key: `day:${y}-${String(m + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
    startsAt: Date.UTC(y, m, day),
    resetsAt: Date.UTC(y, m, day + 1),
  };
}

export type ScopeKind = 'org' | 'team' | 'agent' | 'user';

export interface BudgetLine {
  /** "org", "team:sre", "agent:sre-monitor", "user:alice@acme.example" */
  scope: string;
  scopeKind: ScopeKind;
  /** "team sre" — how a person reads the scope */
  label: string;
  window: BudgetWindow;
  /** undefined: spend is tracked, nothing is enforced */
  limitMicros: number | undefined;
}

export interface LineState {
  spentMicros: number;
  reservedMicros: number;
}

export interface ChargePrincipal {
  kind: 'user' | 'agent' | 'anonymous';
  subject: string;
  team: string;
  agent?: string | undefined;
}

function limitOf(b: Budget | undefined, kind: WindowKind): number | undefined {
  const usd = kind === 'month' ? b?.monthlyUsd : b?.dailyUsd;
  return usd === undefined ? undefined : usdToMicros(usd);
}

/** Scope ids a principal is charged to: org, team, and the agent or the user. */
export function scopesFor(p: ChargePrincipal): Array<{ scope: string; scopeKind: ScopeKind; label: string }> {
  const out: Array<{ scope: string; scopeKind: ScopeKind; label: string }> = [
    { scope: 'org', scopeKind: 'org', label: 'the organisation' },
    { scope: `team:${p.team}`, scopeKind: 'team', label: `team ${p.team}` },
  ];
  if (p.kind === 'agent') {
    const a = p.agent ?? p.subject;
    out.push({ scope: `agent:${a}`, scopeKind: 'agent', label: `agent ${a}` });
  } else if (p.kind === 'user') {
    const u = p.subject.toLowerCase();
    out.push({ scope: `user:${u}`, scopeKind: 'user', label: `user ${u}` });
  }
  return out;
}

/** The limit for one scope from org.yaml (a user: `users.<email>.budget`, else the team's `user_budget`). */
export function limitFor(org: OrgConfig, scope: string, team: string | undefined, kind: WindowKind): number | undefined {
  if (scope === 'org') return limitOf(org.budget, kind);
  const [k, name = ''] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
  if (k === 'team') return limitOf(org.teams.get(name)?.budget, kind);
  if (k === 'agent') return limitOf(org.agents.get(name)?.budget, kind);
  if (k === 'user') {
    const own = org.users.get(name)?.budget;
    if (own) return limitOf(own, kind);
    return team === undefined ? undefined : limitOf(org.teams.get(team)?.userBudget, kind);
  }
  return undefined;
}

/**
 * Every line a request is charged to: each scope in both windows (month and day), so spend is
 * tracked even where no limit is set and a limit added later sees the spend already made.
 */
export function budgetLinesFor(org: OrgConfig, p: ChargePrincipal, atMs: number): BudgetLine[] {
  const lines: BudgetLine[] = [];
  for (const s of scopesFor(p)) {
    for (const kind of ['month', 'day'] as const) {
      lines.push({ ...s, window: budgetWindow(kind, atMs), limitMicros: limitFor(org, s.scope, p.team, kind) });
    }
  }
  return lines;
}

export type AdmissionResult<L = BudgetLine> =
  | { ok: true }
  | { ok: false; line: L; state: LineState; amountMicros: number };

/**
 * A request may start when, on every line with a limit, spend + in-flight reservations + its own
 * worst case stays within the limit. Concurrent admissions serialise in the store, so the limit
 * can only be overshot by what a request costs beyond its reservation.
 */
export function checkAdmission<L extends { limitMicros: number | undefined } = BudgetLine>(lines: ReadonlyArray<{ line: L; state: LineState }>, amountMicros: number): AdmissionResult<L> {
  for (const { line, state } of lines) {
    if (line.limitMicros === undefined) continue;
    if (state.spentMicros + state.reservedMicros + amountMicros > line.limitMicros) {
      return { ok: false, line, state, amountMicros };
    }
  }
  return { ok: true };
}

/** What a refused client reads: the scope, the limit, the spend, and when it resets. */
export function refusalMessage(r: Extract<AdmissionResult, { ok: false }>): string {
  const { line, state, amountMicros } = r;
  const period = line.window.kind === 'month' ? 'monthly' : 'daily';
  const limit = line.limitMicros ?? 0;
  const inFlight = state.reservedMicros > 0 ? ` (plus ${formatUsd(state.reservedMicros)} held by requests in flight)` : '';
  const remaining = Math.max(0, limit - state.spentMicros - state.reservedMicros);
  return (
    `Budget exceeded for ${line.label}: the ${period} limit is ${formatUsd(limit)}, ${formatUsd(state.spentMicros)} is spent${inFlight}, ` +
    `${formatUsd(remaining)} remains and this request could cost up to ${formatUsd(amountMicros)}. ` +
    `The budget resets at ${new Date(line.window.resetsAt).toISOString()}.`
  );
}

export const DEFAULT_THRESHOLDS: readonly number[] = Object.freeze([50, 80, 100]);

/** Percentages whose line was crossed by spend going from `before` to `after` (micro-dollars). */
export function crossedThresholds(limitMicros: number | undefined, beforeMicros: number, afterMicros: number, percents: readonly number[]): number[] {
  if (limitMicros === undefined) return [];
  const out: number[] = [];
  for (const p of percents) {
    const mark = limitMicros * p; // compare spend × 100 with limit × p: no rounding
    if (beforeMicros * 100 < mark && afterMicros * 100 >= mark) out.push(p);
  }
  return out;
}

export interface ThresholdEvent {
  scope: string;
  label: string;
  window: WindowKind;
  windowKey: string;
  percent: number;
  limitMicros: number;
  spentMicros: number;
  resetsAt: string;
  /** "spend": settled spend crossed the line; "refused": a request was refused at this line */
  cause: 'spend' | 'refused';
  at: string;
}
