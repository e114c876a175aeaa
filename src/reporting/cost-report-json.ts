// Owns: the JSON (snake_case) and CSV shapes of a cost report, shared by `GET /api/v1/costs` and
// `tollgate costs --json|--csv`. PURE.
import { csvLine } from '../audit/export-format.ts';
import type { CostGroup, CostReport } from './group-costs.ts';

export function costGroupJson(g: Omit<CostGroup, 'key'> & { key?: string | null }): Record<string, unknown> {
  return {
    ...(g.key !== undefined ? { key: g.key } : {}),
    cost_micros: g.costMicros, cost_usd: g.costMicros / 1_000_000, requests: g.requests,
    input_tokens: g.inputTokens, output_tokens: g.outputTokens, cache_read_tokens: g.cacheReadTokens,
    cache_write_tokens: g.cacheWriteTokens, estimated_requests: g.estimatedRequests,
  };
}

export function costReportJson(report: CostReport, window: { since: number; until: number }): Record<string, unknown> {
  return {
    by: report.by, since: new Date(window.since).toISOString(), until: new Date(window.until).toISOString(), currency: 'USD',
    total: costGroupJson(report.total), groups: report.groups.map(costGroupJson),
  };
}

const CSV_COLUMNS = ['cost_micros', 'cost_usd', 'requests', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'estimated_requests'] as const;

/** Header and one line per group (key first, named after the dimension); RFC 4180, formula-safe. */
export function costReportCsv(report: CostReport): string[] {
  return [
    csvLine([report.by, ...CSV_COLUMNS]),
    ...report.groups.map((g) => {
      const j = costGroupJson(g);
      return csvLine([g.key, ...CSV_COLUMNS.map((c) => (c === 'cost_usd' ? (g.costMicros / 1_000_000).toFixed(6) : j[c]))]);
    }),
  ];
}
