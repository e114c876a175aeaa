// The usage parser on the shapes the recorded fixtures do not show: partial cache-write splits,
// error bodies and events without a type, Responses API failures, malformed chunks, SSE framing
// edge cases, and a large body's tail with broken usage objects. Each row feeds the body whole
// and one byte at a time, so chunk boundaries never change the reading.
import t from 'tap';
import type { LlmApi } from '../../../src/metering/endpoints.ts';
import { applyAnthropicUsage, createUsageParser, lastUsageObject, openAiUsage, ZERO_TOKENS, type TokenCounts, type UsageReading } from '../../../src/metering/usage-parser.ts';

const tokens = (input: number, output: number, cacheRead = 0, cacheWrite = 0, cacheWrite1h = 0): TokenCounts =>
  ({ inputTokens: input, outputTokens: output, cacheReadTokens: cacheRead, cacheWriteTokens: cacheWrite, cacheWrite1hTokens: cacheWrite1h });

function read(api: LlmApi, contentType: string | undefined, body: string, chunk: number, opts = {}): UsageReading {
  const bytes = Buffer.from(body);
  const p = createUsageParser(api, contentType, opts);
  for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
  return p.finish();
}
const sse = (...events: unknown[]) => events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('');
const SSE = 'text/event-stream';

t.test('applyAnthropicUsage: cache_creation split without a total', async (t) => {
  const cases: [string, Record<string, unknown>, TokenCounts][] = [
    ['5-minute part only', { input_tokens: 1, cache_creation: { ephemeral_5m_input_tokens: 30 } }, tokens(1, 0, 0, 30, 0)],
    ['1-hour part only', { cache_creation: { ephemeral_1h_input_tokens: 20 } }, tokens(0, 0, 0, 20, 20)],
    ['both parts', { cache_creation: { ephemeral_1h_input_tokens: 20, ephemeral_5m_input_tokens: 5 } }, tokens(0, 0, 0, 25, 20)],
    ['an empty split changes nothing', { output_tokens: 3, cache_creation: {} }, tokens(0, 3)],
    ['the total wins over the split', { cache_creation_input_tokens: 40, cache_creation: { ephemeral_5m_input_tokens: 1 } }, tokens(0, 0, 0, 40, 0)],
    ['a 1-hour part larger than the total is clamped', { cache_creation_input_tokens: 10, cache_creation: { ephemeral_1h_input_tokens: 25 } }, tokens(0, 0, 0, 10, 10)],
    ['negative and fractional counts', { input_tokens: -1, output_tokens: 2.9 }, tokens(0, 2)],
  ];
  for (const [why, usage, want] of cases) {
    const into = { ...ZERO_TOKENS };
    applyAnthropicUsage(into, usage);
    t.same(into, want, why);
  }
});

t.test('openAiUsage: no prompt count means no usage', async (t) => {
  const cases: [string, Record<string, unknown>, TokenCounts | undefined][] = [
    ['empty', {}, undefined],
    ['output only', { completion_tokens: 5 }, undefined],
    ['Responses names', { input_tokens: 10, output_tokens: 4, input_tokens_details: { cached_tokens: 3 } }, tokens(7, 4, 3)],
    ['cached beyond the prompt is capped', { prompt_tokens: 2, prompt_tokens_details: { cached_tokens: 9 } }, tokens(0, 0, 2)],
  ];
  for (const [why, usage, want] of cases) t.same(openAiUsage(usage), want, why);
});

interface Row { why: string; api: LlmApi; contentType?: string | undefined; body: string; want: Partial<UsageReading>; opts?: object }

const rows: Row[] = [
  // JSON bodies
  { why: 'anthropic error body without a type', api: 'anthropic_messages', contentType: 'application/json', body: '{"type":"error","error":{"message":"x"}}', want: { error: 'error', readable: true, usage: undefined } },
  { why: 'anthropic body with an error field but not an error type', api: 'anthropic_messages', contentType: 'application/json', body: '{"type":"message","error":{"type":"x"}}', want: { error: undefined, readable: true } },
  { why: 'openai error by code', api: 'openai_chat', contentType: 'application/json', body: '{"error":{"code":"rate_limit_exceeded"}}', want: { error: 'rate_limit_exceeded', readable: true } },
  { why: 'openai error with neither type nor code', api: 'openai_chat', contentType: 'application/json', body: '{"error":{"message":"boom"}}', want: { error: 'error' } },
  { why: 'openai usage without a prompt count', api: 'openai_chat', contentType: 'application/json', body: '{"model":"m","usage":{"completion_tokens":3}}', want: { model: 'm', usage: undefined, usageFinal: false, readable: true } },
  { why: 'JSON that is not an object', api: 'openai_chat', contentType: 'application/json', body: '[1,2]', want: { readable: false } },
  { why: 'no content type: read as JSON', api: 'openai_chat', contentType: undefined, body: '{"usage":{"prompt_tokens":1,"completion_tokens":2}}', want: { usage: tokens(1, 2), usageFinal: true } },
  { why: 'an empty JSON body', api: 'openai_chat', contentType: 'application/json', body: '', want: { readable: false, usage: undefined } },
  // Anthropic SSE
  {
    why: 'anthropic tool-argument and thinking deltas are relayed output',
    api: 'anthropic_messages', contentType: SSE,
    body: sse({ type: 'content_block_delta', delta: { partial_json: '{"a":1}' } }, { type: 'content_block_delta', delta: { thinking: 'hmm' } }, { type: 'content_block_delta', delta: { signature: 'sig' } }, { type: 'content_block_delta' }),
    want: { relayedOutputTokens: 4, readable: true }, // 10 bytes / 3, rounded up
  },
  { why: 'anthropic error event without a type', api: 'anthropic_messages', contentType: SSE, body: sse({ type: 'error', error: 'overloaded' }), want: { error: 'error' } },
  { why: 'message_start without a message, message_delta without usage, message_stop without usage', api: 'anthropic_messages', contentType: SSE, body: sse({ type: 'message_start' }, { type: 'message_delta', delta: { stop_reason: 'end_turn' } }, { type: 'message_stop' }, { type: 'ping' }), want: { usage: undefined, usageFinal: false, readable: true } },
  { why: 'message_start without usage', api: 'anthropic_messages', contentType: SSE, body: sse({ type: 'message_start', message: { id: 'x' } }), want: { model: undefined, usage: undefined } },
  { why: 'a JSON value that is not an object is no event', api: 'anthropic_messages', contentType: SSE, body: sse('[1]', '42', 'null', 'not json'), want: { readable: false } },
  { why: 'data: without a space', api: 'anthropic_messages', contentType: SSE, body: 'data:{"type":"message_start","message":{"model":"m"}}\n\n', want: { model: 'm', readable: true } },
  { why: 'a data field split over two lines', api: 'openai_chat', contentType: SSE, body: 'data: {"model":\ndata: "m2"}\n\n', want: { model: 'm2' } },
  { why: 'event, id and comment lines are ignored', api: 'openai_chat', contentType: SSE, body: 'event: x\nid: 1\n: comment\ndata: {"model":"m3"}\n\n', want: { model: 'm3' } },
  { why: 'the last event without a trailing newline', api: 'openai_chat', contentType: SSE, body: 'data: {"model":"m4","usage":{"prompt_tokens":1}}', want: { model: 'm4', usage: tokens(1, 0), usageFinal: true } },
  { why: '[DONE] alone is readable', api: 'openai_chat', contentType: SSE, body: sse('[DONE]'), want: { readable: true, usage: undefined } },
  { why: 'CR-only line ends', api: 'openai_chat', contentType: SSE, body: 'data: {"model":"m5"}\r\rdata: {"usage":{"prompt_tokens":2}}\r\r', want: { model: 'm5', usage: tokens(2, 0) } },
  {
    why: 'data lines that together exceed the line limit are dropped, and parsing resumes',
    api: 'openai_chat', contentType: SSE, opts: { maxLineBytes: 64 },
    body: `data: {"model":"${'a'.repeat(40)}",\ndata: "x":"${'b'.repeat(40)}"}\n\n${sse({ model: 'after' })}`,
    want: { model: 'after' },
  },
  // OpenAI Responses SSE
  { why: 'responses event without a type', api: 'openai_responses', contentType: SSE, body: sse({ response: { model: 'r1' } }), want: { model: 'r1', usage: undefined, readable: true } },
  { why: 'response.completed without usage', api: 'openai_responses', contentType: SSE, body: sse({ type: 'response.completed', response: { model: 'r2' } }), want: { model: 'r2', usage: undefined, usageFinal: false } },
  { why: 'response.completed without a response', api: 'openai_responses', contentType: SSE, body: sse({ type: 'response.completed' }), want: { usage: undefined } },
  {
    why: 'response.failed with a code, after usage',
    api: 'openai_responses', contentType: SSE,
    body: sse({ type: 'response.failed', response: { usage: { input_tokens: 5, output_tokens: 1 }, error: { code: 'server_error' } } }),
    want: { usage: tokens(5, 1), usageFinal: true, error: 'server_error' },
  },
  { why: 'response.failed without an error object', api: 'openai_responses', contentType: SSE, body: sse({ type: 'response.failed', response: {} }), want: { error: 'response_failed' } },
  { why: 'response.incomplete carries final usage', api: 'openai_responses', contentType: SSE, body: sse({ type: 'response.incomplete', response: { usage: { input_tokens: 3, output_tokens: 9 } } }), want: { usage: tokens(3, 9), usageFinal: true, error: undefined } },
  { why: 'error event with a code', api: 'openai_responses', contentType: SSE, body: sse({ type: 'error', code: 'rate_limit_exceeded' }), want: { error: 'rate_limit_exceeded' } },
  { why: 'error event without a code', api: 'openai_responses', contentType: SSE, body: sse({ type: 'error', message: 'x' }), want: { error: 'error' } },
  { why: 'other responses events are ignored', api: 'openai_responses', contentType: SSE, body: sse({ type: 'response.created', response: { model: 'r3' } }), want: { model: 'r3', usage: undefined, error: undefined } },
  // Chat Completions SSE
  {
    why: 'choices that are not objects are skipped; refusal, reasoning and tool arguments are relayed',
    api: 'openai_chat', contentType: SSE,
    body: sse({ choices: [null, 7, { index: 0 }, { delta: { refusal: 'no', reasoning_content: 'why', tool_calls: [{ function: { arguments: '{}' } }, null, {}] } }] }),
    want: { relayedOutputTokens: 3 },
  },
  { why: 'chat chunk error without a type', api: 'openai_chat', contentType: SSE, body: sse({ error: { message: 'x' } }), want: { error: 'error' } },
  { why: 'chat chunk error with a type', api: 'openai_chat', contentType: SSE, body: sse({ error: { type: 'server_error' } }), want: { error: 'server_error' } },
  { why: 'chat usage without a prompt count', api: 'openai_chat', contentType: SSE, body: sse({ usage: { completion_tokens: 2 } }), want: { usage: undefined, usageFinal: false } },
  { why: 'legacy completions text is relayed', api: 'openai_completions', contentType: SSE, body: sse({ choices: [{ text: 'hello there' }] }), want: { relayedOutputTokens: 4 } },
];

for (const row of rows) {
  t.test(row.why, async (t) => {
    const bytes = Buffer.byteLength(row.body);
    for (const size of [1, Math.max(1, bytes)]) t.match(read(row.api, row.contentType, row.body, size, row.opts), row.want, `chunks of ${size}`);
    if (row.want.usage !== undefined) t.same(read(row.api, row.contentType, row.body, bytes || 1, row.opts).usage, row.want.usage, 'exact usage');
  });
}

t.test('chunks as Uint8Array views (not Buffers) read the same', async (t) => {
  const body = Buffer.from(`data: ${JSON.stringify({ type: 'message_start', message: { model: 'u8', usage: { input_tokens: 3, output_tokens: 1 } } })}\n\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abcdef"}}\n\n`);
  const p = createUsageParser('anthropic_messages', SSE);
  const ab = new ArrayBuffer(body.length + 8);
  const view = new Uint8Array(ab, 4, body.length);
  view.set(body);
  p.push(view.subarray(0, 10));
  p.push(view.subarray(10));
  t.match(p.finish(), { model: 'u8', usage: tokens(3, 1), relayedOutputTokens: 2, readable: true });
});

t.test('finish is idempotent and a push after it is ignored', async (t) => {
  for (const contentType of [SSE, 'application/json']) {
    const p = createUsageParser('openai_chat', contentType);
    p.push(Buffer.from(contentType === SSE ? sse({ model: 'first' }) : '{"model":"first"}'));
    const once = p.finish();
    p.push(Buffer.from(sse({ model: 'late' })));
    t.equal(p.finish(), once, `${contentType}: the same reading`);
    t.equal(once.model, 'first', contentType);
  }
});

t.test('lastUsageObject: falls back to an earlier occurrence', async (t) => {
  const cases: [string, string, Record<string, unknown> | undefined][] = [
    ['the last "usage" is not an object', '{"usage":{"prompt_tokens":1},"meta":{"usage":null}}', { prompt_tokens: 1 }],
    ['the last "usage" object does not parse', '{"usage":{"prompt_tokens":2},"x":{"usage":{"a":1,}}}', { prompt_tokens: 2 }],
    ['the object is cut off', '{"id":1,"usage":{"prompt_tokens":3', undefined],
    ['"usage" as a value, not a key', '["usage"]', undefined],
    ['no usage at all', '{"model":"m"}', undefined],
    ['usage is an array', '{"usage":[1]}', undefined],
    // A tail that starts with "usage" (the rolling tail of a large body): once looped for ever.
    ['"usage" at index 0, not an object', '"usage":[1]', undefined],
    ['"usage" at index 0, cut off', '"usage":{"prompt_tokens":3', undefined],
    ['"usage" at index 0, whole', '"usage":{"prompt_tokens":4}', { prompt_tokens: 4 }],
  ];
  for (const [why, text, want] of cases) t.same(lastUsageObject(text), want, why);
});
