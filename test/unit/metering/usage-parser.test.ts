// The usage parser over fixtures written from the providers' documented formats, each fed whole
// and split at many chunk sizes (one byte at a time included) and with CRLF line ends.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { LlmApi } from '../../../src/metering/endpoints.ts';
import { createUsageParser, lastUsageObject, type TokenCounts, type UsageReading } from '../../../src/metering/usage-parser.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/llm');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name));

function tokens(input: number, output: number, cacheRead = 0, cacheWrite = 0, cacheWrite1h = 0): TokenCounts {
  return { inputTokens: input, outputTokens: output, cacheReadTokens: cacheRead, cacheWriteTokens: cacheWrite, cacheWrite1hTokens: cacheWrite1h };
}

function read(api: LlmApi, contentType: string, bytes: Buffer, chunk: number, opts = {}): UsageReading {
  const p = createUsageParser(api, contentType, opts);
  for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
  return p.finish();
}

const SSE = 'text/event-stream; charset=utf-8';
const JSON_CT = 'application/json';

interface Row {
  name: string;
  api: LlmApi;
  contentType: string;
  want: Partial<UsageReading>;
  minRelayed?: number;
}

const rows: Row[] = [
  { name: 'anthropic/message.json', api: 'anthropic_messages', contentType: JSON_CT,
    want: { model: 'claude-sonnet-4-5-20250929', usage: tokens(2095, 503, 10000, 3000, 1000), usageFinal: true, error: undefined, readable: true } },
  { name: 'anthropic/stream-basic.sse', api: 'anthropic_messages', contentType: SSE,
    want: { model: 'claude-sonnet-4-5-20250929', usage: tokens(25, 15), usageFinal: true, readable: true }, minRelayed: 2 },
  // 6.09: message_delta output_tokens are cumulative — 15, not 1 + 8 + 15; cache tokens kept apart
  { name: 'anthropic/stream-cache-cumulative.sse', api: 'anthropic_messages', contentType: SSE,
    want: { usage: tokens(100, 15, 1000, 200), usageFinal: true } },
  { name: 'anthropic/stream-cut.sse', api: 'anthropic_messages', contentType: SSE,
    want: { model: 'claude-haiku-4-5-20251001', usage: tokens(40, 1), usageFinal: false }, minRelayed: 20 },
  { name: 'anthropic/stream-error.sse', api: 'anthropic_messages', contentType: SSE,
    want: { usage: tokens(12, 1), usageFinal: false, error: 'overloaded_error' } },
  // server-side web searches: counted from usage.server_tool_use (cumulative in message_delta)
  { name: 'anthropic/stream-web-search.sse', api: 'anthropic_messages', contentType: SSE,
    want: { model: 'claude-sonnet-4-5-20250929', usage: { ...tokens(10682, 510), webSearches: 2 }, usageFinal: true }, minRelayed: 1 },
  { name: 'anthropic/message-web-search.json', api: 'anthropic_messages', contentType: JSON_CT,
    want: { model: 'claude-haiku-4-5-20251001', usage: { ...tokens(6039, 931), webSearches: 1 }, usageFinal: true } },
  { name: 'anthropic/error.json', api: 'anthropic_messages', contentType: JSON_CT,
    want: { usage: undefined, usageFinal: false, error: 'invalid_request_error', readable: true } },
  { name: 'openai/chat.json', api: 'openai_chat', contentType: JSON_CT,
    want: { model: 'gpt-4.1-2025-04-14', usage: tokens(19, 10, 1000), usageFinal: true } },
  { name: 'openai/chat-stream-usage.sse', api: 'openai_chat', contentType: SSE,
    want: { model: 'gpt-4o-mini-2024-07-18', usage: tokens(9, 2), usageFinal: true } },
  // 6.02: no stream_options.include_usage → no usage; what was relayed is counted for the estimate
  { name: 'openai/chat-stream-no-usage.sse', api: 'openai_chat', contentType: SSE,
    want: { model: 'gpt-4o-2024-08-06', usage: undefined, usageFinal: false, readable: true }, minRelayed: 4 },
  { name: 'openai/chat-zero-usage.json', api: 'openai_chat', contentType: JSON_CT,
    want: { usage: tokens(0, 0), usageFinal: true } },
  { name: 'openai/responses.json', api: 'openai_responses', contentType: JSON_CT,
    want: { model: 'gpt-4.1-2025-04-14', usage: tokens(36, 87), usageFinal: true } },
  { name: 'openai/responses-stream.sse', api: 'openai_responses', contentType: SSE,
    want: { model: 'o4-mini-2025-04-16', usage: tokens(32, 311, 5), usageFinal: true }, minRelayed: 2 },
  { name: 'openai/completions-stream.sse', api: 'openai_completions', contentType: SSE,
    want: { model: 'gpt-3.5-turbo-instruct', usage: tokens(5, 7), usageFinal: true } },
  { name: 'openai/embeddings.json', api: 'openai_embeddings', contentType: JSON_CT,
    want: { model: 'text-embedding-3-small', usage: tokens(8, 0), usageFinal: true } },
  { name: 'openai/error.json', api: 'openai_chat', contentType: JSON_CT,
    want: { usage: undefined, error: 'invalid_request_error' } },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const bytes = fixture(row.name);
    const variants: Array<[string, Buffer]> = [['LF', bytes], ['CRLF', Buffer.from(bytes.toString('utf8').replace(/\n/g, '\r\n'))]];
    for (const [ends, b] of variants) {
      // SSE is framed a batch at a time: batches smaller than, equal to and larger than the chunks
      for (const size of [1, 2, 7, 64, 1000, b.length]) {
        for (const batchBytes of [undefined, 1, 5, 64]) {
          const how = `${ends}, chunks of ${size}${batchBytes === undefined ? '' : `, batches of ${batchBytes}`}`;
          const got = read(row.api, row.contentType, b, size, batchBytes === undefined ? {} : { batchBytes });
          t.match(got, row.want, how);
          if (row.want.usage) t.same(got.usage, row.want.usage, `${how}: exact usage`);
          if (row.minRelayed !== undefined) t.ok(got.relayedOutputTokens >= row.minRelayed, `${how}: relayed ≥ ${row.minRelayed} (${got.relayedOutputTokens})`);
        }
      }
    }
  });
}

t.test('SSE chunks are copied when gathered: a caller may reuse its buffer after push', async (t) => {
  const bytes = fixture('anthropic/stream-basic.sse');
  const p = createUsageParser('anthropic_messages', SSE);
  const reused = Buffer.alloc(50);
  for (let i = 0; i < bytes.length; i += 50) {
    const n = bytes.copy(reused, 0, i, i + 50);
    p.push(reused.subarray(0, n));
    reused.fill(0x7b); // overwritten at once, as a pooled read buffer would be
  }
  p.push(new Uint8Array(0));
  t.same(p.finish().usage, tokens(25, 15));
  // a plain Uint8Array larger than a batch is framed as it is, after the gathered bytes
  const q = createUsageParser('anthropic_messages', SSE, { batchBytes: 64 });
  q.push(bytes.subarray(0, 10));
  q.push(new Uint8Array(bytes.buffer, bytes.byteOffset + 10, bytes.length - 10));
  t.same(q.finish().usage, tokens(25, 15));
});

t.test('multi-byte characters split across chunks are counted once, intact', async (t) => {
  const text = '日本語のテキスト'.repeat(10);
  const sse = `data: ${JSON.stringify({ choices: [{ delta: { content: text } }] })}\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":40}}\n\n`;
  const got = read('openai_chat', SSE, Buffer.from(sse), 1);
  t.same(got.usage, tokens(3, 40));
  t.equal(got.relayedOutputTokens, Math.ceil(Buffer.byteLength(text) / 3));
});

t.test('an over-long SSE line is skipped without buffering it, and parsing resumes', async (t) => {
  const huge = `data: {"type":"content_block_delta","delta":{"text":"${'x'.repeat(5000)}"}}\n\n`;
  const tail = 'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}\n\n';
  const start = 'data: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":4,"output_tokens":1}}}\n\n';
  const got = read('anthropic_messages', SSE, Buffer.from(start + huge + tail), 100, { maxLineBytes: 1024 });
  t.same(got.usage, tokens(4, 9));
  t.equal(got.usageFinal, true);
});

t.test('a large JSON body is read by head and tail only', async (t) => {
  const vectors = Array.from({ length: 5000 }, (_, i) => ({ object: 'embedding', index: i, embedding: [0.1, 0.2, 0.3, 0.4] }));
  const body = Buffer.from(JSON.stringify({ object: 'list', model: 'text-embedding-3-large', data: vectors, usage: { prompt_tokens: 777, total_tokens: 777 } }));
  t.ok(body.length > 64 * 1024);
  const got = read('openai_embeddings', JSON_CT, body, 4096, { maxJsonBytes: 16 * 1024 });
  t.equal(got.model, 'text-embedding-3-large');
  t.same(got.usage, tokens(777, 0));
  t.same(lastUsageObject('{"a":{"usage":{"x":1}},"usage":{"prompt_tokens":2,"s":"}\\"{"}}'), { prompt_tokens: 2, s: '}"{' });
});

t.test('a large JSON body yields no service tier (a nested metadata key could not be told from the real one)', async (t) => {
  const o = { id: 'r', model: 'o3', service_tier: 'priority', output: [{ content: 'x'.repeat(100 * 1024) }], usage: { input_tokens: 3, output_tokens: 4 }, metadata: { service_tier: 'default' } };
  const got = read('openai_responses', JSON_CT, Buffer.from(JSON.stringify(o)), 8192, { maxJsonBytes: 16 * 1024 });
  t.notOk('serviceTier' in got);
  t.same(got.usage, tokens(3, 4));
});

t.test('not JSON, not SSE: unreadable', async (t) => {
  const got = read('openai_chat', 'text/html', Buffer.from('<html>bad gateway</html>'), 5);
  t.equal(got.readable, false);
  t.equal(got.usage, undefined);
  const empty = read('anthropic_messages', SSE, Buffer.alloc(0), 1);
  t.equal(empty.readable, false);
});

t.test('an intermediate message_delta (no stop reason) is not the final usage', async (t) => {
  const text = [
    'data: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":10,"output_tokens":1}}}',
    'data: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":8}}',
    'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"more text after the delta"}}',
    '',
  ].join('\n\n');
  const got = read('anthropic_messages', SSE, Buffer.from(text), 9);
  t.equal(got.usageFinal, false);
  t.same(got.usage, tokens(10, 8));
  const ended = read('anthropic_messages', SSE, Buffer.from(`${text}data: {"type":"message_stop"}\n\n`), 9);
  t.equal(ended.usageFinal, true, 'message_stop closes the message');
});

t.test('the service tier an OpenAI response reports', async (t) => {
  const chatJson = Buffer.from(JSON.stringify({ id: 'c', object: 'chat.completion', model: 'gpt-4o-mini', service_tier: 'priority', choices: [], usage: { prompt_tokens: 5, completion_tokens: 1 } }));
  t.equal(read('openai_chat', JSON_CT, chatJson, 7).serviceTier, 'priority');
  const chunks = ['data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","service_tier":"priority","choices":[{"index":0,"delta":{"content":"Hi"}}]}', 'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","service_tier":"priority","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}', 'data: [DONE]', ''].join('\n\n');
  t.equal(read('openai_chat', SSE, Buffer.from(chunks), 5).serviceTier, 'priority');
  const responses = ['event: response.completed', 'data: {"type":"response.completed","response":{"id":"r","model":"o3","service_tier":"default","usage":{"input_tokens":3,"output_tokens":2}}}', '', ''].join('\n');
  t.equal(read('openai_responses', SSE, Buffer.from(responses), 9).serviceTier, 'default');
  t.equal(read('openai_chat', JSON_CT, Buffer.from(JSON.stringify({ model: 'x', service_tier: 'x'.repeat(40), usage: { prompt_tokens: 1 } })), 100).serviceTier, undefined, 'an absurd tier name is ignored');
  t.notOk('serviceTier' in read('anthropic_messages', SSE, fixture('anthropic/stream-basic.sse'), 64), 'absent when none is reported');
});
