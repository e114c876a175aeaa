// Owns: reading what metering needs from an LLM request body — model, the output-token cap,
// `n`, streaming and `stream_options.include_usage` — and a cheap, deliberately high estimate of
// the input tokens (for the worst-case reservation). PURE.
import type { LlmApi } from './endpoints.ts';
import type { ServiceTier } from './prices.ts';

export interface LlmRequest {
  model: string;
  /** the client's output cap (max_tokens / max_output_tokens / max_completion_tokens); undefined when absent */
  maxOutputTokens: number | undefined;
  /** completions generated per request (OpenAI `n`, or `best_of` for legacy completions) */
  choices: number;
  stream: boolean;
  /** OpenAI chat/completions: the client asked for the final usage chunk */
  includeUsage: boolean;
  inputTokenEstimate: number;
  /**
   * The request makes the provider add input that is not in its body (a document or image by URL
   * or file id, a previous response or conversation, a stored prompt, server-side tools such as web
   * or file search, MCP servers): the body-based estimate cannot see it.
   */
  providerSideInput: boolean;
  /**
   * Server-side web searches to reserve (Anthropic `web_search` tools: their `max_uses`, else
   * DEFAULT_WEB_SEARCHES each); 0 without such a tool or for other APIs (their searches are not priced).
   */
  webSearches: number;
  /** OpenAI `service_tier: "priority"`: billed at the priority-processing rates */
  serviceTier: ServiceTier;
}

export type LlmRequestResult = { ok: true; request: LlmRequest } | { ok: false; message: string };

/** Tokens counted for one base64 image or document blob (Anthropic caps images near 1,600 tokens). */
export const BLOB_TOKENS = 1600;
/** Strings at least this long made only of base64 characters count as blobs, not text. */
const BLOB_MIN_CHARS = 1024;
const BASE64 = /^[A-Za-z0-9+/=\s_-]+$/;
const DATA_URL = /^data:[\w.+-]+\/[\w.+-]+;base64,/;

function isBlob(s: string): boolean {
  if (s.length < BLOB_MIN_CHARS) return false;
  if (DATA_URL.test(s.slice(0, 100))) return true;
  return BASE64.test(s.slice(0, 4096)) && BASE64.test(s.slice(-256));
}

/** Server-side tools whose results become input tokens (Anthropic and OpenAI type names, by prefix). */
const INPUT_ADDING_TOOLS = ['web_search', 'web_fetch', 'file_search', 'code_execution', 'code_interpreter', 'mcp'];
/** Top-level fields that pull stored input in (OpenAI Responses; Anthropic MCP connector and containers). */
const INPUT_ADDING_FIELDS = ['previous_response_id', 'conversation', 'prompt', 'mcp_servers', 'container'];
const isRemote = (v: unknown): boolean => typeof v === 'string' && /^https?:\/\//i.test(v);

/** Whether one object of the request body adds input on the provider's side (see LlmRequest.providerSideInput). */
function addsProviderSideInput(o: Record<string, unknown>): boolean {
  const type = o['type'];
  if (typeof type === 'string') {
    if (INPUT_ADDING_TOOLS.some((t) => type.startsWith(t))) return true;
    // OpenAI: a file by id or URL; an image by id or http(s) URL (a data: URL is in the body)
    if (type === 'input_file' && (o['file_id'] !== undefined || o['file_url'] !== undefined)) return true;
    if (type === 'input_image' && (o['file_id'] !== undefined || isRemote(o['image_url']))) return true;
    if (type === 'image_url' && isRemote((o['image_url'] as Record<string, unknown> | null | undefined)?.['url'])) return true;
    if (type === 'file' && (o['file'] as Record<string, unknown> | null | undefined)?.['file_id'] !== undefined) return true;
  }
  // Anthropic: a document or image block whose source is a URL or an uploaded file
  const source = o['source'];
  if (source !== null && typeof source === 'object') {
    const st = (source as Record<string, unknown>)['type'];
    if (st === 'url' || st === 'file') return true;
  }
  return false;
}

/** Whether the request (a parsed JSON object) adds input the body does not show. */
export function referencesProviderSideInput(value: Record<string, unknown>): boolean {
  for (const f of INPUT_ADDING_FIELDS) {
    const v = value[f];
    if (v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0)) return true;
  }
  const stack: unknown[] = [value];
  let steps = 0;
  while (stack.length > 0 && steps++ < 1_000_000) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v !== null && typeof v === 'object') {
      if (addsProviderSideInput(v as Record<string, unknown>)) return true;
      for (const x of Object.values(v)) stack.push(x);
    }
  }
  return false;
}

/**
 * Input estimate: one token per 3 bytes of the request's text (JSON keys and syntax included, so it
 * errs high) plus BLOB_TOKENS per base64 image/document. Used only to reserve; settlement uses the
 * provider's own count.
 */
export function estimateInputTokens(value: unknown, totalBytes: number): number {
  let blobBytes = 0;
  let blobs = 0;
  const stack: unknown[] = [value];
  let steps = 0;
  while (stack.length > 0 && steps++ < 1_000_000) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (isBlob(v)) {
        blobs++;
        blobBytes += v.length;
      }
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v !== null && typeof v === 'object') {
      for (const x of Object.values(v)) stack.push(x);
    }
  }
  return Math.ceil(Math.max(0, totalBytes - blobBytes) / 3) + blobs * BLOB_TOKENS;
}

/** Web searches reserved for an Anthropic web_search tool that sets no max_uses. */
export const DEFAULT_WEB_SEARCHES = 10;

/** Searches an Anthropic request may make: the max_uses of each web_search tool (DEFAULT_WEB_SEARCHES when unset). */
export function anthropicWebSearches(tools: unknown): number {
  if (!Array.isArray(tools)) return 0;
  let n = 0;
  for (const t of tools) {
    if (t === null || typeof t !== 'object') continue;
    const type = (t as Record<string, unknown>)['type'];
    if (typeof type !== 'string' || !type.startsWith('web_search')) continue;
    n += Math.min(positiveInt((t as Record<string, unknown>)['max_uses']) ?? DEFAULT_WEB_SEARCHES, 10_000);
  }
  return n;
}

/** Above any model's output limit; keeps the worst-case reservation a safe integer of micro-dollars. */
export const MAX_OUTPUT_TOKENS = 10_000_000;

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

export function parseLlmRequest(api: LlmApi, body: Uint8Array): LlmRequestResult {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { ok: false, message: 'The request body of a metered LLM endpoint must be JSON (UTF-8).' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, message: 'The request body of a metered LLM endpoint must be a JSON object.' };
  }
  const o = value as Record<string, unknown>;
  if (typeof o['model'] !== 'string' || o['model'].length === 0 || o['model'].length > 256) {
    return { ok: false, message: 'The request names no model ("model" must be a string): Tollgate prices every metered request by its model.' };
  }
  let maxOutputTokens: number | undefined;
  switch (api) {
    case 'anthropic_messages':
      maxOutputTokens = positiveInt(o['max_tokens']);
      break;
    case 'openai_chat':
      // max_completion_tokens supersedes the deprecated max_tokens; take the larger when both are sent.
      maxOutputTokens = Math.max(positiveInt(o['max_completion_tokens']) ?? 0, positiveInt(o['max_tokens']) ?? 0) || undefined;
      break;
    case 'openai_responses':
      maxOutputTokens = positiveInt(o['max_output_tokens']);
      break;
    case 'openai_completions':
      maxOutputTokens = positiveInt(o['max_tokens']) ?? 16; // the API's documented default
      break;
    case 'openai_embeddings':
      maxOutputTokens = 0;
      break;
  }
  if (maxOutputTokens !== undefined && maxOutputTokens > MAX_OUTPUT_TOKENS) {
    return { ok: false, message: `The output limit ${maxOutputTokens} is beyond what any model produces (at most ${MAX_OUTPUT_TOKENS} here): Tollgate reserves the worst case of every metered request.` };
  }
  if (api === 'openai_responses' && o['background'] === true) {
    // Its usage arrives only when the result is fetched later (GET /v1/responses/{id}), which is
    // not a metered request: charged at submission it would cost only the input estimate.
    return { ok: false, message: 'Background responses ("background": true) are not metered by Tollgate yet; send the request without it.' };
  }
  const n = positiveInt(o['n']) ?? 1;
  const bestOf = api === 'openai_completions' ? (positiveInt(o['best_of']) ?? 1) : 1;
  const streamOptions = o['stream_options'];
  const includeUsage = streamOptions !== null && typeof streamOptions === 'object' && (streamOptions as Record<string, unknown>)['include_usage'] === true;
  return {
    ok: true,
    request: {
      model: o['model'],
      maxOutputTokens,
      choices: api === 'anthropic_messages' || api === 'openai_responses' || api === 'openai_embeddings' ? 1 : Math.min(128, Math.max(n, bestOf)),
      stream: o['stream'] === true,
      includeUsage,
      inputTokenEstimate: estimateInputTokens(value, body.byteLength),
      providerSideInput: referencesProviderSideInput(o),
      webSearches: api === 'anthropic_messages' ? anthropicWebSearches(o['tools']) : 0,
      serviceTier: api !== 'anthropic_messages' && o['service_tier'] === 'priority' ? 'priority' : undefined,
    },
  };
}
