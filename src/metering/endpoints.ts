// Owns: which requests are metered — host + method + path → the provider, its API and its error
// shape. Only model endpoints are metered (and refused when a budget is exhausted); every other
// path of an LLM host passes untouched. PURE.

import { asciiLower } from '../classify/request-framing.ts';

export type LlmApi = 'anthropic_messages' | 'openai_chat' | 'openai_responses' | 'openai_completions' | 'openai_embeddings';
export type ErrorShape = 'anthropic' | 'openai';

/** An OpenAI-compatible base URL from `metering.openai_compatible` (already parsed). */
export interface OpenAiCompatibleBase {
  /** provider name used in usage rows and audit (e.g. "together") */
  name: string;
  host: string;
  port: number;
  /** path prefix without a trailing slash ("/v1", or "" for the root) */
  pathPrefix: string;
  /** section of prices.yaml whose models this base serves */
  priceTable: string;
}

export interface MeteredEndpoint {
  provider: string;
  api: LlmApi;
  shape: ErrorShape;
  /** section of the price table to price the model with */
  priceTable: string;
}

const OPENAI_PATHS: ReadonlyArray<[string, LlmApi]> = [
  ['/chat/completions', 'openai_chat'],
  ['/responses', 'openai_responses'],
  ['/completions', 'openai_completions'],
  ['/embeddings', 'openai_embeddings'],
];

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * The metered endpoint a request targets, or undefined. `path` is the normalised path without the
 * query. `/v1/messages/count_tokens` and batch endpoints are not metered (see docs/metering.md;
 * billable endpoints that cannot be metered are refused by default: unmetered-spend.ts).
 */
export function detectEndpoint(
  req: { host: string; port: number; method: string; path: string | undefined },
  compatible: readonly OpenAiCompatibleBase[] = [],
): MeteredEndpoint | undefined {
  if (req.method !== 'POST' || req.path === undefined) return undefined;
  if (req.host !== 'api.anthropic.com' && req.host !== 'api.openai.com' && !compatible.some((b) => b.host === req.host && b.port === req.port)) return undefined;
  // Compared without case: a provider that routes /V1/Messages like /v1/messages must not be a way
  // around the meter (a mistyped path then costs one 404, settled at $0).
  const path = asciiLower(trimSlash(req.path));
  if (req.host === 'api.anthropic.com') {
    return path === '/v1/messages' ? { provider: 'anthropic', api: 'anthropic_messages', shape: 'anthropic', priceTable: 'anthropic' } : undefined;
  }
  if (req.host === 'api.openai.com') {
    for (const [suffix, api] of OPENAI_PATHS) {
      if (path === `/v1${suffix}`) return { provider: 'openai', api, shape: 'openai', priceTable: 'openai' };
    }
    return undefined;
  }
  for (const base of compatible) {
    if (base.host !== req.host || base.port !== req.port) continue;
    for (const [suffix, api] of OPENAI_PATHS) {
      if (path === `${asciiLower(base.pathPrefix)}${suffix}`) return { provider: base.name, api, shape: 'openai', priceTable: base.priceTable };
    }
  }
  return undefined;
}
