// Owns: reading spend from the audit trail — metered rows (cost_micros not null) summed per
// (UTC day, team, agent, user, provider, model) over a time window, the cells src/reporting/
// groups and trends. One statement, so one consistent snapshot. Read-only.
import type { CostCell } from '../reporting/group-costs.ts';
import type { Database } from './database.ts';

interface CellRow {
  day: string; team: string | null; agent: string | null; user: string | null; provider: string | null; model: string | null;
  requests: number; cost: number; input: number; output: number; cache_read: number; cache_write: number; estimated: number;
}

/** `since` inclusive, `until` exclusive (ms). */
export function costCells(db: Database, w: { since: number; until: number }): CostCell[] {
  const rows = db.prepare<{ since: number; until: number }, CellRow>(`
    SELECT strftime('%Y-%m-%d', time / 1000, 'unixepoch') AS day, team, agent,
           CASE WHEN principal_kind = 'user' THEN subject END AS user, provider, model,
           count(*) AS requests, total(cost_micros) AS cost,
           total(input_tokens) AS input, total(output_tokens) AS output,
           total(cache_read_tokens) AS cache_read, total(cache_write_tokens) AS cache_write,
           total(estimated) AS estimated
      FROM audit_requests
     WHERE time >= @since AND time < @until AND cost_micros IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6`).all({ since: Math.floor(w.since), until: Math.ceil(w.until) });
  return rows.map((r) => ({
    day: r.day, team: r.team, agent: r.agent, user: r.user, provider: r.provider, model: r.model,
    requests: r.requests, costMicros: r.cost, inputTokens: r.input, outputTokens: r.output,
    cacheReadTokens: r.cache_read, cacheWriteTokens: r.cache_write, estimatedRequests: r.estimated,
  }));
}
