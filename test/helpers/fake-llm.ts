// Test-only: handlers for local fake Anthropic and OpenAI upstreams that answer in the providers'
// documented formats (JSON and SSE), with switchable behaviour: slow streams, delays before the
// head, gzip bodies, streams cut without usage.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { sleep } from './cli-process.ts';
import type { UpstreamHandler } from './upstream-server.ts';

export interface FakeLlmControl {
  /**
   * 'normal' | 'slow' (200 chunks, 5 ms apart) | 'delay' (300 ms before the head) | 'gzip' | 'cut' (no usage, closes mid-stream)
   * | 'search' (Anthropic: the final usage reports SEARCHES server-side web searches)
   */
  mode: 'normal' | 'slow' | 'delay' | 'gzip' | 'cut' | 'search';
  /** In 'delay' mode: hold the response until this settles (instead of 300 ms), so a test controls overlap. */
  hold?: Promise<void>;
  /** chunks sent so far by the current slow stream (the abort test watches it) */
  sent: number;
  /** set when a stream finished (all chunks and the final usage written) */
  finished: number;
}

/** Web searches the fake Anthropic reports in 'search' mode. */
export const SEARCHES = 2;

/** Anthropic usage the fake reports: 100 input, 1000 cache reads, 200 cache writes, 15 output (cumulative 1 → 8 → 15). */
export const ANTHROPIC_USAGE = { input_tokens: 100, cache_read_input_tokens: 1000, cache_creation_input_tokens: 200 };

function sse(res: ServerResponse, event: string | undefined, data: unknown): void {
  res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

export function fakeAnthropic(ctl: FakeLlmControl): UpstreamHandler {
  return async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    if (req.method !== 'POST' || !req.url?.startsWith('/v1/messages')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: [], ok: true, path: req.url }));
      return;
    }
    if (req.url.startsWith('/v1/messages/count_tokens')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: 42 }));
      return;
    }
    const j = JSON.parse(body.toString('utf8')) as { model: string; stream?: boolean };
    const model = `${j.model}-20251001`;
    if (ctl.mode === 'delay') await (ctl.hold ?? sleep(300));
    if (!j.stream) {
      const text = JSON.stringify({
        id: 'msg_fake', type: 'message', role: 'assistant', model, content: [{ type: 'text', text: 'Hello!' }],
        stop_reason: 'end_turn', stop_sequence: null, usage: { ...ANTHROPIC_USAGE, output_tokens: 15 },
      });
      if (ctl.mode === 'gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(text));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(text);
      }
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    sse(res, 'message_start', { type: 'message_start', message: { id: 'msg_fake', type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { ...ANTHROPIC_USAGE, output_tokens: 1 } } });
    sse(res, 'content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    const chunks = ctl.mode === 'slow' || ctl.mode === 'cut' ? 200 : 3;
    ctl.sent = 0;
    for (let i = 0; i < chunks; i++) {
      if (res.destroyed) return;
      sse(res, 'content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `word${i} ` } });
      ctl.sent++;
      if (ctl.mode === 'cut' && i === 50) {
        await sleep(100); // let the head and the 50 events reach the gateway before the reset
        res.destroy();
        return;
      }
      if (ctl.mode === 'slow') await sleep(5);
      if (i === 1) sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: null, stop_sequence: null }, usage: { output_tokens: 8 } });
    }
    sse(res, 'content_block_stop', { type: 'content_block_stop', index: 0 });
    const searched = ctl.mode === 'search' ? { server_tool_use: { web_search_requests: SEARCHES } } : {};
    sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 15, ...searched } });
    sse(res, 'message_stop', { type: 'message_stop' });
    res.end();
    ctl.finished++;
  };
}

/** OpenAI usage the fake reports: 100,000 prompt tokens (10,000 cached), 20,000 completion tokens. */
export const OPENAI_USAGE = { prompt_tokens: 100_000, completion_tokens: 20_000, total_tokens: 120_000, prompt_tokens_details: { cached_tokens: 10_000 } };

export function fakeOpenAi(ctl: FakeLlmControl): UpstreamHandler {
  return async (req, res, body) => {
    if (req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
      return;
    }
    const j = JSON.parse(body.toString('utf8')) as { model: string; stream?: boolean; stream_options?: { include_usage?: boolean }; service_tier?: string };
    const model = `${j.model}-2024-07-18`;
    // the tier that served the request, as OpenAI reports it (the default tier unless priority or flex was asked for)
    const tier = { service_tier: j.service_tier === 'priority' || j.service_tier === 'flex' ? j.service_tier : 'default' };
    if (ctl.mode === 'delay') await (ctl.hold ?? sleep(300));
    if (req.url === '/v1/responses') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'resp_fake', object: 'response', status: 'completed', model, ...tier, output: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hi', annotations: [] }] }],
        usage: { input_tokens: 100_000, input_tokens_details: { cached_tokens: 10_000 }, output_tokens: 20_000, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 120_000 },
      }));
      return;
    }
    if (!j.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion', created: 1, model, ...tier, choices: [{ index: 0, message: { role: 'assistant', content: 'Hi', refusal: null }, finish_reason: 'stop', logprobs: null }], usage: OPENAI_USAGE }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const chunk = (delta: unknown, finish: string | null) => ({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model, ...tier, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    sse(res, undefined, chunk({ role: 'assistant', content: '' }, null));
    for (const w of ['One', ' two', ' three']) sse(res, undefined, chunk({ content: w }, null));
    sse(res, undefined, chunk({}, 'stop'));
    if (j.stream_options?.include_usage) sse(res, undefined, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model, ...tier, choices: [], usage: OPENAI_USAGE });
    sse(res, undefined, '[DONE]');
    res.end();
    ctl.finished++;
  };
}

/**
 * Gateway options for team alpha reaching fake Anthropic and OpenAI upstreams (ports `ant`, `oai`)
 * as api.anthropic.com and api.openai.com, with the two keys injected (secrets anthropic-key,
 * openai-key). `files` and `extraYaml` are passed on.
 */
export function llmGatewayOptions(o: { ant: number; oai: number; caPem: string; antKey: string; oaiKey: string; files?: Record<string, string>; extraYaml?: string }) {
  return {
    upstreams: { 'api.anthropic.com': o.ant, 'api.openai.com': o.oai },
    upstreamCaPem: o.caPem,
    alphaRules: `
  - { host: api.anthropic.com, action: allow }
  - { host: api.openai.com, action: allow }`,
    alphaCredentials: `
  - { host: api.anthropic.com, header: { name: x-api-key, secret: anthropic-key } }
  - { host: api.openai.com, bearer: { secret: openai-key } }`,
    files: { ...o.files, 'secrets/anthropic-key': o.antKey, 'secrets/openai-key': o.oaiKey },
    ...(o.extraYaml === undefined ? {} : { extraYaml: o.extraYaml }),
  };
}
