// Owns: moving the exchange counters of the metric catalogue once per ended exchange (called from
// the composition root's `onExchangeEnd`; the proxy never imports prom-client). Cheap: label
// objects for the closed kind × decision and reason sets are built once; the only per-call
// objects are the ones carrying a team, provider or model, which prom-client needs.
import { REASONS, type ReasonCode } from '../errors.ts';
import type { Exchange } from '../proxy/exchange.ts';
import { OTHER, type LabelSets } from './label-sets.ts';
import { DECISIONS, EXCHANGE_KINDS, UPSTREAM_REASONS, type MetricCatalogue } from './metric-catalogue.ts';

type Kind = (typeof EXCHANGE_KINDS)[number];
type Decision = (typeof DECISIONS)[number];

export type ExchangeRecorder = (ex: Exchange, now?: number) => void;

/** Builds the recorder for one catalogue; `labels` folds teams, providers and models into closed sets. */
export function exchangeRecorder(m: MetricCatalogue, labels: LabelSets): ExchangeRecorder {
  const byKind = new Map<string, { kind: Kind }>(EXCHANGE_KINDS.map((kind) => [kind, Object.freeze({ kind })]));
  const byKindDecision = new Map<string, Map<string, { kind: Kind; decision: Decision }>>(
    EXCHANGE_KINDS.map((kind) => [kind, new Map(DECISIONS.map((decision) => [decision, Object.freeze({ kind, decision })]))]),
  );
  const byReason = new Map<string, { reason: string }>(Object.keys(REASONS).map((reason) => [reason, Object.freeze({ reason })]));
  const otherReason = Object.freeze({ reason: OTHER });
  const upstream = new Set<string>(UPSTREAM_REASONS);

  return (ex, now = Date.now()) => {
    const kind: Kind = ex.kind;
    const decision: Decision = ex.decision?.effect ?? 'none';
    const kd = byKindDecision.get(kind)?.get(decision);
    if (!kd) return; // unreachable: both sets are closed
    m.requests.inc({ kind, decision, team: labels.team(ex.principal?.team) });
    m.requestDuration.observe(kd, Math.max(0, now - ex.startedAt) / 1000);
    const k = byKind.get(kind);
    if (k) {
      if (ex.outcome.bytesIn > 0) m.bytesIn.inc(k, ex.outcome.bytesIn);
      if (ex.outcome.bytesOut > 0) m.bytesOut.inc(k, ex.outcome.bytesOut);
    }
    const reason: ReasonCode | undefined = ex.outcome.reason;
    if (reason !== undefined) {
      const r = byReason.get(reason) ?? otherReason;
      m.refusals.inc(r);
      if (upstream.has(reason)) m.upstreamErrors.inc(r);
    }
    const u = ex.usage;
    if (u) {
      const provider = labels.provider(u.provider);
      const model = labels.model(u.provider, u.model);
      m.llmRequests.inc({ provider, model });
      if (u.estimated) m.llmEstimated.inc({ provider });
      if (u.inputTokens > 0) m.llmTokens.inc({ provider, model, kind: 'input' }, u.inputTokens);
      if (u.outputTokens > 0) m.llmTokens.inc({ provider, model, kind: 'output' }, u.outputTokens);
      if (u.cacheReadTokens > 0) m.llmTokens.inc({ provider, model, kind: 'cache_read' }, u.cacheReadTokens);
      if (u.cacheWriteTokens > 0) m.llmTokens.inc({ provider, model, kind: 'cache_write' }, u.cacheWriteTokens);
      if (u.costMicros > 0) m.llmSpend.inc({ provider, model }, u.costMicros / 1e6);
    }
  };
}
