// Owns: the settlement rule — what a metered request is charged once its response has ended,
// from what the usage parser read. PURE.
//   - the upstream never answered (no response head)       → release the reservation in full
//   - the provider reported its final usage                → charge it exactly (an explicit zero
//                                                            with nothing relayed is respected)
//   - usage began but the stream was cut (Anthropic        → reported input + max(reported, relayed)
//     message_start without message_delta)                   output, flagged estimated
//   - no usage, error status (>= 400)                      → $0: providers do not bill failed calls
//   - no usage, success status, body readable              → input estimate + relayed output,
//                                                            flagged estimated (never $0)
//   - no usage, body unreadable (unknown encoding, cut     → the full reservation, flagged estimated
//     before any event)
// Token charges use the OpenAI priority-processing rates when the response (or, without one, the
// request) names service_tier "priority".
import type { LlmRequest } from './llm-request.ts';
import { usageCostMicros, type ModelPrice, type ServiceTier } from './prices.ts';
import { ZERO_TOKENS, type TokenCounts, type UsageReading } from './usage-parser.ts';

export type Settlement =
  | { action: 'release' }
  | { action: 'charge'; tokens: TokenCounts; costMicros: number; estimated: boolean; model: string | undefined };

export interface SettlementInput {
  responseStarted: boolean;
  status: number | undefined;
  reading: UsageReading | undefined;
  request: LlmRequest;
  price: ModelPrice;
  reservedMicros: number;
}

export function settleCharge(s: SettlementInput): Settlement {
  if (!s.responseStarted) return { action: 'release' };
  const r = s.reading;
  const model = r?.model;
  // The tier the response reports prices the call (else the one the request asked for); a priority
  // answer for a model without priority rates is charged at the standard rates, flagged estimated.
  const tier: ServiceTier = (r?.serviceTier ?? s.request.serviceTier) === 'priority' ? 'priority' : undefined;
  const unpricedTier = tier === 'priority' && !s.price.priority;
  const flagged = s.price.fallback || unpricedTier;
  if (r?.usage) {
    if (r.usageFinal) {
      const explicitZero = r.usage.inputTokens + r.usage.outputTokens + r.usage.cacheReadTokens + r.usage.cacheWriteTokens === 0;
      if (explicitZero && r.relayedOutputTokens > 0) {
        const tokens = { ...ZERO_TOKENS, inputTokens: s.request.inputTokenEstimate, outputTokens: r.relayedOutputTokens };
        return { action: 'charge', tokens, costMicros: Math.max(1, usageCostMicros(s.price, tokens, tier)), estimated: true, model };
      }
      return { action: 'charge', tokens: r.usage, costMicros: usageCostMicros(s.price, r.usage, tier), estimated: flagged, model };
    }
    const tokens = { ...r.usage, outputTokens: Math.max(r.usage.outputTokens, r.relayedOutputTokens) };
    return { action: 'charge', tokens, costMicros: Math.max(1, usageCostMicros(s.price, tokens, tier)), estimated: true, model };
  }
  if (s.status !== undefined && s.status >= 400) {
    return { action: 'charge', tokens: { ...ZERO_TOKENS }, costMicros: 0, estimated: false, model };
  }
  if (!r || !r.readable) {
    return { action: 'charge', tokens: { ...ZERO_TOKENS, inputTokens: s.request.inputTokenEstimate }, costMicros: Math.max(1, s.reservedMicros), estimated: true, model };
  }
  const tokens = { ...ZERO_TOKENS, inputTokens: s.request.inputTokenEstimate, outputTokens: r.relayedOutputTokens };
  return { action: 'charge', tokens, costMicros: Math.max(1, usageCostMicros(s.price, tokens, tier)), estimated: true, model };
}
