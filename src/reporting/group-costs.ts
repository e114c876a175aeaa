// Owns: spend grouped by one dimension (team, agent, user, model, provider or UTC day), computed
// from cost cells — audit rows with a cost, pre-summed by the store per (day, team, agent, user,
// provider, model). The same arithmetic feeds `GET /api/v1/costs`, `tollgate costs` and the
// dashboard. PURE.

export const COST_DIMENSIONS = ['team', 'agent', 'user', 'model', 'provider', 'day'] as const;
export type CostDimension = (typeof COST_DIMENSIONS)[number];

export const DAY_MS = 86_400_000;

/** Request count, spend and tokens: what every cell and group sums. */
export interface CostTotals {
  requests: number;
  costMicros: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Requests whose usage was estimated (stream cut short, no usage reported). */
  estimatedRequests: number;
}

/** Metered audit rows (cost_micros not null) summed per (UTC day, team, agent, user, provider, model). */
export interface CostCell extends CostTotals {
  /** UTC calendar day, `YYYY-MM-DD`. */
  day: string;
  team: string | null;
  /** Managed agent name (agent tokens); null for people. */
  agent: string | null;
  /** User e-mail (user tokens); null for agents. */
  user: string | null;
  provider: string | null;
  model: string | null;
}

export interface CostGroup extends CostTotals {
  /** The team, agent, … or day; null: the rows had none (e.g. `agent` for requests made by people). */
  key: string | null;
}

export interface CostReport {
  by: CostDimension;
  total: Omit<CostGroup, 'key'>;
  groups: CostGroup[];
}

export function isCostDimension(v: string): v is CostDimension {
  return (COST_DIMENSIONS as readonly string[]).includes(v);
}

/** `YYYY-MM-DD` of a time (ms) in UTC. */
export function dayKey(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

/** The `n` UTC days ending with the day of `endMs`, oldest first. */
export function dayRange(endMs: number, n: number): string[] {
  const end = Math.floor(endMs / DAY_MS);
  return Array.from({ length: n }, (_, i) => new Date((end - n + 1 + i) * DAY_MS).toISOString().slice(0, 10));
}

export function keyOf(cell: CostCell, by: CostDimension): string | null {
  return cell[by];
}

const zero = (): Omit<CostGroup, 'key'> => ({
  requests: 0, costMicros: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, estimatedRequests: 0,
});

function add(into: Omit<CostGroup, 'key'>, c: CostCell): void {
  into.requests += c.requests;
  into.costMicros += c.costMicros;
  into.inputTokens += c.inputTokens;
  into.outputTokens += c.outputTokens;
  into.cacheReadTokens += c.cacheReadTokens;
  into.cacheWriteTokens += c.cacheWriteTokens;
  into.estimatedRequests += c.estimatedRequests;
}

/** null keys sort last; otherwise by code unit order (stable across locales). */
function compareKeys(a: string | null, b: string | null): number {
  if (a === null || b === null) return Number(a === null) - Number(b === null);
  return Number(a > b) - Number(a < b);
}

/**
 * Sums the cells per value of `by`. Days come oldest first; every other dimension dearest first
 * (ties by key). Sums are exact: micro-dollars are integers.
 */
export function groupCosts(cells: readonly CostCell[], by: CostDimension): CostReport {
  const groups = new Map<string | null, CostGroup>();
  const total = zero();
  for (const c of cells) {
    const key = keyOf(c, by);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, ...zero() }));
    add(g, c);
    add(total, c);
  }
  const list = [...groups.values()];
  list.sort(by === 'day' ? (a, b) => compareKeys(a.key, b.key) : (a, b) => b.costMicros - a.costMicros || compareKeys(a.key, b.key));
  return { by, total, groups: list };
}

export interface DailySeries {
  key: string | null;
  /** Spend per day (micro-dollars), aligned with the `days` given. */
  daily: number[];
  totalMicros: number;
}

/** Spend per day for each value of `by` (never `day`), over `days` (oldest first); dearest series first. */
export function dailySeries(cells: readonly CostCell[], by: Exclude<CostDimension, 'day'>, days: readonly string[]): DailySeries[] {
  const index = new Map(days.map((d, i) => [d, i]));
  const series = new Map<string | null, DailySeries>();
  for (const c of cells) {
    const i = index.get(c.day);
    if (i === undefined) continue;
    const key = keyOf(c, by);
    let s = series.get(key);
    if (!s) series.set(key, (s = { key, daily: days.map(() => 0), totalMicros: 0 }));
    s.daily[i] = (s.daily[i] as number) + c.costMicros; // i indexes days, and daily has one entry per day
    s.totalMicros += c.costMicros;
  }
  return [...series.values()].sort((a, b) => b.totalMicros - a.totalMicros || compareKeys(a.key, b.key));
}
