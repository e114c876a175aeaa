// Owns: the price table's shape, model resolution (exact id, alias, dated snapshot → its base
// model) and cost arithmetic in integer micro-dollars. Prices are held as integer pico-dollars per
// token ($/MTok × 10^6) so that sums are exact; a cost is rounded UP to the next micro-dollar, so a
// call with any usage never costs $0. PURE.
import type { TokenCounts } from './usage-parser.ts';

/** Integer pico-dollars per token for each kind of token. */
export interface TokenPrice {
  input: number;
  output: number;
  /** 5-minute cache writes (OpenAI has none: equal to input) */
  cacheWrite: number;
  /** 1-hour cache writes */
  cacheWrite1h: number;
  cacheRead: number;
}

export interface ModelPrice {
  /** the canonical id in prices.yaml */
  id: string;
  provider: string;
  price: TokenPrice;
  /** a request whose prompt (input + cache reads + cache writes) exceeds the threshold pays these rates on every token */
  longContext: { thresholdTokens: number; price: TokenPrice } | undefined;
  /** what the model can emit at most; the reservation when a request sets no cap */
  maxOutputTokens: number;
  /** true for the configured fallback (unknown model): the charge is flagged estimated */
  fallback: boolean;
  /** integer pico-dollars per server-side web search (the section's web_search_per_1k); 0 when not priced */
  webSearch: number;
  /** rates of OpenAI priority processing (`service_tier: "priority"`), when prices.yaml lists them */
  priority?: TokenPrice | undefined;
}

/** The processing tier a call is billed at: 'priority' (OpenAI priority processing) or the standard rates. */
export type ServiceTier = 'priority' | undefined;

export interface PriceTable {
  asOf: string;
  sources: readonly string[];
  /** price-table section (provider) → model id or alias (lower case) → price */
  sections: ReadonlyMap<string, ReadonlyMap<string, ModelPrice>>;
  /** section → integer pico-dollars per server-side web search (sections that price them) */
  webSearch: ReadonlyMap<string, number>;
}

/** $/MTok (a decimal from prices.yaml) → integer pico-dollars per token. */
export function perMillionToPico(usdPerMillion: number): number {
  return Math.round(usdPerMillion * 1e6);
}

/** $ per 1,000 calls (a decimal from prices.yaml) → integer pico-dollars per call. */
export function perThousandToPico(usdPerThousand: number): number {
  return Math.round(usdPerThousand * 1e9);
}

export function usdToMicros(usd: number): number {
  return Math.round(usd * 1e6);
}

/** "$1.23" — micro-dollars shown to people: cents, or more digits below a cent. */
export function formatUsd(micros: number): string {
  const usd = micros / 1e6;
  if (micros !== 0 && Math.abs(usd) < 0.01) return `$${usd.toFixed(6).replace(/0+$/, '')}`;
  return `$${usd.toFixed(2)}`;
}

const DATED = /-(\d{4}-\d{2}-\d{2}|\d{8})$/;

/** The model's price: exact id or alias, then the same with a trailing date (snapshot) removed. */
export function resolveModelPrice(table: PriceTable, section: string, model: string): ModelPrice | undefined {
  const models = table.sections.get(section);
  if (!models) return undefined;
  const m = model.trim().toLowerCase();
  const exact = models.get(m);
  if (exact) return exact;
  const undated = m.replace(DATED, '');
  if (undated !== m) return models.get(undated);
  return undefined;
}

function priceFor(model: ModelPrice, promptTokens: number, tier: ServiceTier): TokenPrice {
  if (tier === 'priority' && model.priority) return model.priority;
  return model.longContext && promptTokens > model.longContext.thresholdTokens ? model.longContext.price : model.price;
}

function ceilDiv(n: bigint, d: bigint): bigint {
  return n <= 0n ? 0n : (n + d - 1n) / d;
}

/** The cost of reported usage, in micro-dollars (rounded up); `tier` 'priority' uses the priority rates when the model has them. */
export function usageCostMicros(model: ModelPrice, t: TokenCounts, tier?: ServiceTier): number {
  const prompt = t.inputTokens + t.cacheReadTokens + t.cacheWriteTokens;
  const p = priceFor(model, prompt, tier);
  const h1 = Math.min(t.cacheWrite1hTokens, t.cacheWriteTokens);
  const pico =
    BigInt(t.inputTokens) * BigInt(p.input) +
    BigInt(t.outputTokens) * BigInt(p.output) +
    BigInt(t.cacheReadTokens) * BigInt(p.cacheRead) +
    BigInt(t.cacheWriteTokens - h1) * BigInt(p.cacheWrite) +
    BigInt(h1) * BigInt(p.cacheWrite1h) +
    BigInt(t.webSearches ?? 0) * BigInt(model.webSearch);
  return Number(ceilDiv(pico, 1_000_000n));
}

/**
 * The most a request can cost: every estimated input token at the dearest input rate (a cache
 * write may cost more than plain input) and the full output cap at the output rate, using the
 * long-context rates when the estimate crosses their threshold (the priority rates for `tier`
 * 'priority'), plus `webSearches` server-side searches at the section's fee.
 */
export function worstCaseMicros(model: ModelPrice, inputTokenEstimate: number, maxOutputTokens: number, webSearches = 0, tier?: ServiceTier): number {
  const p = priceFor(model, inputTokenEstimate, tier);
  const dearestInput = Math.max(p.input, p.cacheWrite, p.cacheWrite1h);
  const pico = BigInt(inputTokenEstimate) * BigInt(dearestInput) + BigInt(maxOutputTokens) * BigInt(p.output) + BigInt(webSearches) * BigInt(model.webSearch);
  return Math.max(1, Number(ceilDiv(pico, 1_000_000n)));
}
