// Owns: reading token usage from an LLM response as it streams past, chunk by chunk — SSE
// (Anthropic message_start / cumulative message_delta, OpenAI usage chunks, Responses API
// response.completed) and JSON bodies — without ever holding the response whole: SSE keeps one
// bounded line (framing in sse-frames.ts), JSON keeps a bounded head and tail. PURE (bytes in, a
// reading out).
import type { LlmApi } from './endpoints.ts';
import { anthropicDeltaBytes, createSseFramer, isQuietAnthropicEvent, type SseFramer } from './sse-frames.ts';

export interface TokenCounts {
  /** input tokens billed at the base input rate (excludes cache reads and writes) */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  /** every cache-write token (5-minute and 1-hour) */
  cacheWriteTokens: number;
  /** the part of cacheWriteTokens written with the 1-hour TTL (Anthropic) */
  cacheWrite1hTokens: number;
  /** server-side web searches the provider billed (Anthropic usage.server_tool_use.web_search_requests); absent when not reported */
  webSearches?: number;
}

export const ZERO_TOKENS: Readonly<TokenCounts> = Object.freeze({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheWrite1hTokens: 0 });

export interface UsageReading {
  /** the model the response names (a dated snapshot, usually) */
  model: string | undefined;
  /** provider-reported usage so far; undefined when none was seen */
  usage: TokenCounts | undefined;
  /** the provider's final usage was seen (JSON body, message_delta, usage chunk, response.completed) */
  usageFinal: boolean;
  /** estimate of the output tokens relayed to the client (content, tool-argument and thinking deltas) */
  relayedOutputTokens: number;
  /** an error event or error body, by its type */
  error: string | undefined;
  /** false when nothing in the body could be read (not JSON, not SSE, cut before any event) */
  readable: boolean;
  /** the processing tier an OpenAI response reports (`service_tier`: default, priority, flex …); absent when none */
  serviceTier?: string;
}

export interface UsageParser {
  push(chunk: Uint8Array): void;
  finish(): UsageReading;
}

export interface UsageParserOptions {
  /** longest SSE line kept (longer lines are skipped: usage lines are small). Default 1 MiB. */
  maxLineBytes?: number;
  /** JSON bodies up to this size are parsed whole; larger ones by head and tail. Default 4 MiB. */
  maxJsonBytes?: number;
  /**
   * SSE bytes gathered before they are framed and read. Default 16 KiB. Nothing reads the usage
   * before the stream ends, and reading a run of small chunks at once costs a fraction of reading
   * each as it passes (measured in the gateway: ~3.5 µs per chunk read alone, between socket
   * reads, against ~0.9 µs in a run); the copy bounds what a stream holds to this many bytes.
   */
  batchBytes?: number;
}

const HEAD_BYTES = 64 * 1024;
const TAIL_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
// SSE batch buffers of finished parsers, used again (a 16 KiB allocation per stream otherwise)
const BATCH_BYTES = 16 * 1024;
const MAX_SPARE_BATCHES = 64;
const spareBatches: Buffer[] = [];

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Anthropic usage object → counts, overwriting only the fields it carries (they are cumulative). */
export function applyAnthropicUsage(into: TokenCounts, u: Record<string, unknown>): void {
  const input = num(u['input_tokens']);
  const output = num(u['output_tokens']);
  const read = num(u['cache_read_input_tokens']);
  const write = num(u['cache_creation_input_tokens']);
  if (input !== undefined) into.inputTokens = input;
  if (output !== undefined) into.outputTokens = output;
  if (read !== undefined) into.cacheReadTokens = read;
  if (write !== undefined) into.cacheWriteTokens = write;
  const split = obj(u['cache_creation']);
  if (split) {
    const h1 = num(split['ephemeral_1h_input_tokens']);
    const m5 = num(split['ephemeral_5m_input_tokens']);
    if (h1 !== undefined) into.cacheWrite1hTokens = h1;
    if (write === undefined && (h1 !== undefined || m5 !== undefined)) into.cacheWriteTokens = (h1 ?? 0) + (m5 ?? 0);
  }
  if (into.cacheWrite1hTokens > into.cacheWriteTokens) into.cacheWrite1hTokens = into.cacheWriteTokens;
  const searches = num(obj(u['server_tool_use'])?.['web_search_requests']);
  if (searches !== undefined) into.webSearches = searches;
}

/** OpenAI usage (Chat Completions, legacy Completions, Embeddings, Responses) → counts. */
export function openAiUsage(u: Record<string, unknown>): TokenCounts | undefined {
  const prompt = num(u['prompt_tokens']) ?? num(u['input_tokens']);
  if (prompt === undefined) return undefined;
  const details = obj(u['prompt_tokens_details']) ?? obj(u['input_tokens_details']);
  const cached = Math.min(prompt, num(details?.['cached_tokens']) ?? 0);
  const output = num(u['completion_tokens']) ?? num(u['output_tokens']) ?? 0;
  return { inputTokens: prompt - cached, outputTokens: output, cacheReadTokens: cached, cacheWriteTokens: 0, cacheWrite1hTokens: 0 };
}

function anthropicFromBody(b: Record<string, unknown>, r: MutableReading): void {
  if (typeof b['model'] === 'string') r.model = b['model'];
  const u = obj(b['usage']);
  if (u) {
    r.usage ??= { ...ZERO_TOKENS };
    applyAnthropicUsage(r.usage, u);
    r.usageFinal = true;
  }
  const err = obj(b['error']);
  if (b['type'] === 'error' && err) r.error = typeof err['type'] === 'string' ? err['type'] : 'error';
}

function openAiFromBody(b: Record<string, unknown>, r: MutableReading): void {
  if (typeof b['model'] === 'string') r.model = b['model'];
  tierOf(b, r);
  const u = obj(b['usage']);
  const counts = u ? openAiUsage(u) : undefined;
  if (counts) {
    r.usage = counts;
    r.usageFinal = true;
  }
  const err = obj(b['error']);
  if (err) r.error = typeof err['type'] === 'string' ? err['type'] : typeof err['code'] === 'string' ? err['code'] : 'error';
}

/** Keeps the `service_tier` an OpenAI response or chunk names. */
function tierOf(o: Record<string, unknown> | undefined, r: MutableReading): void {
  const t = o?.['service_tier'];
  if (typeof t === 'string' && t.length > 0 && t.length <= 32) r.serviceTier = t;
}

interface MutableReading {
  serviceTier?: string;
  model: string | undefined;
  usage: TokenCounts | undefined;
  usageFinal: boolean;
  error: string | undefined;
  readable: boolean;
  relayedBytes: number;
  relayedChunks: number;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Counts one relayed text delta (a module-level function: no closure made per event). */
function relay(r: MutableReading, s: unknown): void {
  if (typeof s === 'string' && s.length > 0) {
    r.relayedBytes += utf8Length(s);
    r.relayedChunks++;
  }
}

/** One SSE event's data, by API. */
function onSseData(api: LlmApi, data: string, r: MutableReading): void {
  if (data === '[DONE]') {
    r.readable = true;
    return;
  }
  let ev: Record<string, unknown> | undefined;
  try {
    ev = obj(JSON.parse(data));
  } catch {
    return;
  }
  if (!ev) return;
  r.readable = true;
  if (api === 'anthropic_messages') {
    switch (ev['type']) {
      case 'message_start': {
        const m = obj(ev['message']);
        if (m) {
          if (typeof m['model'] === 'string') r.model = m['model'];
          const u = obj(m['usage']);
          if (u) {
            r.usage ??= { ...ZERO_TOKENS };
            applyAnthropicUsage(r.usage, u);
          }
        }
        break;
      }
      case 'message_delta': {
        // Usage here is cumulative. Only the delta that carries the stop reason is final: an
        // intermediate message_delta (stop_reason null) may be followed by more output.
        const u = obj(ev['usage']);
        if (u) {
          r.usage ??= { ...ZERO_TOKENS };
          applyAnthropicUsage(r.usage, u);
          const stop = obj(ev['delta'])?.['stop_reason'];
          if (typeof stop === 'string') r.usageFinal = true;
        }
        break;
      }
      case 'message_stop':
        if (r.usage) r.usageFinal = true;
        break;
      case 'content_block_delta': {
        const d = obj(ev['delta']);
        if (d) relay(r, d['text'] ?? d['partial_json'] ?? d['thinking']);
        break;
      }
      case 'error': {
        const e = obj(ev['error']);
        r.error = typeof e?.['type'] === 'string' ? e['type'] : 'error';
        break;
      }
      default:
        break;
    }
    return;
  }
  if (api === 'openai_responses') {
    const type = typeof ev['type'] === 'string' ? ev['type'] : '';
    if (type.endsWith('.delta')) {
      relay(r, ev['delta']);
      return;
    }
    const resp = obj(ev['response']);
    if (resp && typeof resp['model'] === 'string') r.model = resp['model'];
    tierOf(resp, r);
    if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
      const u = obj(resp?.['usage']);
      const counts = u ? openAiUsage(u) : undefined;
      if (counts) {
        r.usage = counts;
        r.usageFinal = true;
      }
      if (type === 'response.failed') {
        const e = obj(resp?.['error']);
        r.error = typeof e?.['code'] === 'string' ? e['code'] : 'response_failed';
      }
    } else if (type === 'error') {
      r.error = typeof ev['code'] === 'string' ? ev['code'] : 'error';
    }
    return;
  }
  // Chat Completions and legacy Completions chunks
  if (typeof ev['model'] === 'string') r.model = ev['model'];
  tierOf(ev, r);
  const choices = ev['choices'];
  if (Array.isArray(choices)) {
    for (const c of choices) {
      const co = obj(c);
      if (!co) continue;
      relay(r, co['text']);
      const d = obj(co['delta']);
      if (!d) continue;
      relay(r, d['content']);
      relay(r, d['refusal']);
      relay(r, d['reasoning_content']);
      const calls = d['tool_calls'];
      if (Array.isArray(calls)) for (const tc of calls) relay(r, obj(obj(tc)?.['function'])?.['arguments']);
    }
  }
  const u = obj(ev['usage']);
  const counts = u ? openAiUsage(u) : undefined;
  if (counts) {
    r.usage = counts;
    r.usageFinal = true;
  }
  const err = obj(ev['error']);
  if (err) r.error = typeof err['type'] === 'string' ? err['type'] : 'error';
}

/** Position just after the JSON object starting at `start` (which must be "{"), or -1. */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */) depth++;
    else if (ch === 125 /* } */) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** The last `"usage": {...}` object in a text fragment (a large body's tail). */
export function lastUsageObject(text: string): Record<string, unknown> | undefined {
  let at = text.lastIndexOf('"usage"');
  while (at >= 0) {
    const m = /^"usage"\s*:\s*\{/.exec(text.slice(at, at + 64));
    if (m) {
      const start = at + m[0].length - 1;
      const end = objectEnd(text, start);
      if (end > 0) {
        try {
          return obj(JSON.parse(text.slice(start, end)));
        } catch {
          // fall through to an earlier occurrence
        }
      }
    }
    // lastIndexOf with a negative position searches from 0 again: stop after the first character.
    at = at === 0 ? -1 : text.lastIndexOf('"usage"', at - 1);
  }
  return undefined;
}

export function createUsageParser(api: LlmApi, contentType: string | undefined, opts: UsageParserOptions = {}): UsageParser {
  return new Parser(api, /^\s*text\/event-stream/i.test(contentType ?? ''), opts);
}

/** SSE event data, by API (module level: the framer's one-line callback is the only closure a parser makes). */
function onFrame(api: LlmApi, r: MutableReading, buf: Buffer, start: number, end: number): void {
  if (api === 'anthropic_messages') {
    // Text deltas, nearly every event of an Anthropic stream, are counted without a JSON parse;
    // the events metering does not read are not parsed once the stream is known to be readable.
    const relayed = anthropicDeltaBytes(buf, start, end);
    if (relayed !== undefined) {
      r.readable = true;
      if (relayed > 0) {
        r.relayedBytes += relayed;
        r.relayedChunks++;
      }
      return;
    }
    if (r.readable && isQuietAnthropicEvent(buf, start, end)) return;
  }
  onSseData(api, buf.toString('utf8', start, end), r);
}

/**
 * One response's reading. A class, not closures: the gateway runs TypeScript through tsx, whose
 * esbuild keepNames names every closure with Object.defineProperty when it is made, per stream.
 */
class Parser implements UsageParser {
  private readonly r: MutableReading = { model: undefined, usage: undefined, usageFinal: false, error: undefined, readable: false, relayedBytes: 0, relayedChunks: 0 };
  private readonly frames: SseFramer | undefined;
  private readonly maxJson: number;
  // --- JSON state: the whole body while small, then a head and a rolling tail
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private head: Buffer | undefined = undefined;
  private tail: Buffer = EMPTY;
  // --- SSE state: small chunks gathered (copied) and framed a batch at a time
  private readonly batchBytes: number;
  private batch: Buffer | undefined = undefined;
  private batched = 0;
  private finished: UsageReading | undefined = undefined;

  constructor(private readonly api: LlmApi, sse: boolean, opts: UsageParserOptions) {
    this.maxJson = opts.maxJsonBytes ?? 4 * 1024 * 1024;
    this.batchBytes = opts.batchBytes ?? BATCH_BYTES;
    const r = this.r;
    this.frames = sse ? createSseFramer({
      maxLineBytes: opts.maxLineBytes ?? 1024 * 1024,
      onEvent(buf, start, end) {
        onFrame(api, r, buf, start, end);
      },
    }) : undefined;
  }

  push(chunk: Uint8Array): void {
    if (this.finished) return;
    if (this.frames) this.pushSse(this.frames, chunk);
    else this.pushJson(chunk);
  }

  finish(): UsageReading {
    if (this.finished) return this.finished;
    const r = this.r;
    if (this.frames) {
      this.frameBatch(this.frames);
      this.frames.end();
      // nothing reads the batch after this (pushes are ignored, the framer copied what it kept)
      if (this.batch?.length === BATCH_BYTES && spareBatches.length < MAX_SPARE_BATCHES) spareBatches.push(this.batch);
      this.batch = undefined;
    } else this.finishJson();
    this.finished = {
      model: r.model,
      usage: r.usage ? { ...r.usage } : undefined,
      usageFinal: r.usageFinal,
      relayedOutputTokens: Math.max(r.relayedChunks, Math.ceil(r.relayedBytes / 3)),
      error: r.error,
      readable: r.readable,
      ...(r.serviceTier === undefined ? {} : { serviceTier: r.serviceTier }),
    };
    return this.finished;
  }

  private pushJson(chunk: Uint8Array): void {
    const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.size += b.length;
    if (this.head === undefined) {
      this.chunks.push(Buffer.from(b));
      if (this.size > this.maxJson) {
        const all = Buffer.concat(this.chunks);
        this.chunks.length = 0;
        this.head = all.subarray(0, HEAD_BYTES);
        this.tail = Buffer.from(all.subarray(Math.max(0, all.length - TAIL_BYTES)));
      }
      return;
    }
    this.tail = Buffer.concat([this.tail, b]);
    if (this.tail.length > TAIL_BYTES * 2) this.tail = Buffer.from(this.tail.subarray(this.tail.length - TAIL_BYTES));
  }

  private finishJson(): void {
    const r = this.r;
    const fromBody = this.api === 'anthropic_messages' ? anthropicFromBody : openAiFromBody;
    if (this.head === undefined) {
      if (this.size === 0) return;
      let body: Record<string, unknown> | undefined;
      try {
        body = obj(JSON.parse(Buffer.concat(this.chunks).toString('utf8')));
      } catch {
        body = undefined;
      }
      if (body) {
        r.readable = true;
        fromBody(body, r);
      }
      return;
    }
    const headText = this.head.toString('utf8');
    const model = /"model"\s*:\s*"([^"\\]{1,256})"/.exec(headText);
    if (model?.[1]) r.model = model[1];
    // No service tier from a head and a tail: a nested key (the caller's metadata) cannot be told
    // from the top-level one there, so settlement prices such a body at the tier the request named.
    const u = lastUsageObject(this.tail.toString('utf8'));
    if (u) {
      r.readable = true;
      fromBody({ usage: u }, r);
    }
  }

  private frameBatch(f: SseFramer): void {
    if (this.batch === undefined || this.batched === 0) return;
    // the framer copies what it keeps across pushes, so the buffer is filled again from the start
    f.push(this.batch.subarray(0, this.batched));
    this.batched = 0;
  }

  private pushSse(f: SseFramer, chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    if (chunk.byteLength >= this.batchBytes) {
      this.frameBatch(f);
      f.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      return;
    }
    if (this.batched + chunk.byteLength > this.batchBytes) this.frameBatch(f);
    this.batch ??= (this.batchBytes === BATCH_BYTES ? spareBatches.pop() : undefined) ?? Buffer.allocUnsafe(this.batchBytes);
    this.batch.set(chunk, this.batched);
    this.batched += chunk.byteLength;
  }
}
