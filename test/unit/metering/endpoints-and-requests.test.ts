import t from 'tap';
import { detectEndpoint, type OpenAiCompatibleBase } from '../../../src/metering/endpoints.ts';
import { BLOB_TOKENS, MAX_OUTPUT_TOKENS, parseLlmRequest } from '../../../src/metering/llm-request.ts';

const compat: OpenAiCompatibleBase[] = [{ name: 'together', host: 'api.together.xyz', port: 443, pathPrefix: '/v1', priceTable: 'together' }];

t.test('only model endpoints are metered', async (t) => {
  const rows: Array<[string, string, string, string | undefined]> = [
    ['api.anthropic.com', 'POST', '/v1/messages', 'anthropic_messages'],
    ['api.anthropic.com', 'POST', '/v1/messages/', 'anthropic_messages'],
    ['api.anthropic.com', 'POST', '/v1/messages/count_tokens', undefined],
    ['api.anthropic.com', 'POST', '/v1/messages/batches', undefined],
    ['api.anthropic.com', 'GET', '/v1/messages', undefined],
    ['api.anthropic.com', 'GET', '/api/claude_code/settings', undefined],
    ['api.anthropic.com', 'POST', '/api/event_logging/batch', undefined],
    ['api.openai.com', 'POST', '/v1/chat/completions', 'openai_chat'],
    ['api.openai.com', 'POST', '/v1/responses', 'openai_responses'],
    ['api.openai.com', 'POST', '/v1/completions', 'openai_completions'],
    ['api.openai.com', 'POST', '/v1/embeddings', 'openai_embeddings'],
    ['api.openai.com', 'GET', '/v1/models', undefined],
    ['api.openai.com', 'POST', '/v1/files', undefined],
    ['api.together.xyz', 'POST', '/v1/chat/completions', 'openai_chat'],
    ['api.together.xyz', 'POST', '/chat/completions', undefined],
    ['evil.example', 'POST', '/v1/messages', undefined],
  ];
  for (const [host, method, path, api] of rows) {
    t.equal(detectEndpoint({ host, port: 443, method, path }, compat)?.api, api, `${method} ${host}${path}`);
  }
  t.match(detectEndpoint({ host: 'api.together.xyz', port: 443, method: 'POST', path: '/v1/responses' }, compat), { provider: 'together', shape: 'openai', priceTable: 'together' });
  t.equal(detectEndpoint({ host: 'api.together.xyz', port: 8443, method: 'POST', path: '/v1/responses' }, compat), undefined, 'another port is another base');
});

t.test('request parsing: model, output cap, n, stream, include_usage', async (t) => {
  const p = (api: Parameters<typeof parseLlmRequest>[0], body: unknown) => parseLlmRequest(api, Buffer.from(JSON.stringify(body)));
  t.match(p('anthropic_messages', { model: 'claude-sonnet-4-5', max_tokens: 1024, stream: true, messages: [] }), { ok: true, request: { model: 'claude-sonnet-4-5', maxOutputTokens: 1024, choices: 1, stream: true } });
  t.match(p('openai_chat', { model: 'gpt-4o', messages: [], n: 4 }), { ok: true, request: { maxOutputTokens: undefined, choices: 4, stream: false, includeUsage: false } });
  t.match(p('openai_chat', { model: 'gpt-4o', max_tokens: 10, max_completion_tokens: 50, stream: true, stream_options: { include_usage: true } }), { ok: true, request: { maxOutputTokens: 50, stream: true, includeUsage: true } });
  t.match(p('openai_responses', { model: 'o3', input: 'hi', max_output_tokens: 300 }), { ok: true, request: { maxOutputTokens: 300 } });
  t.match(p('openai_completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'x', best_of: 3, n: 2 }), { ok: true, request: { maxOutputTokens: 16, choices: 3 } });
  t.match(p('openai_embeddings', { model: 'text-embedding-3-small', input: 'x' }), { ok: true, request: { maxOutputTokens: 0 } });
  t.match(p('anthropic_messages', { model: 'm', max_tokens: -5 }), { ok: true, request: { maxOutputTokens: undefined } }, 'a nonsense cap counts as none (the model maximum is reserved)');
  t.match(p('anthropic_messages', { max_tokens: 5 }), { ok: false, message: /names no model/ });
  t.match(p('anthropic_messages', [1, 2]), { ok: false, message: /JSON object/ });
  t.match(parseLlmRequest('openai_chat', Buffer.from('not json')), { ok: false, message: /must be JSON/ });
  t.match(parseLlmRequest('openai_chat', Buffer.from([0x7b, 0xff, 0x7d])), { ok: false }, 'invalid UTF-8 is refused');
  t.match(p('openai_responses', { model: 'o3', input: 'hi', background: true }), { ok: false, message: /Background responses/ }, 'background: its usage would arrive with an unmetered GET');
  t.match(p('openai_responses', { model: 'o3', input: 'hi', background: false }), { ok: true });
  t.match(p('openai_chat', { model: 'gpt-4o', messages: [], background: true }), { ok: true }, 'only the Responses API has background mode');
  t.match(p('anthropic_messages', { model: 'm', max_tokens: MAX_OUTPUT_TOKENS }), { ok: true, request: { maxOutputTokens: MAX_OUTPUT_TOKENS } });
  t.match(p('anthropic_messages', { model: 'm', max_tokens: MAX_OUTPUT_TOKENS + 1 }), { ok: false, message: /beyond what any model produces/ });
  t.match(p('openai_chat', { model: 'm', max_completion_tokens: 2 ** 53 - 1 }), { ok: false }, 'near 2^53: refused, not an unsafe reservation');
});

t.test('input estimate errs high for text and counts base64 blobs as images, not text', async (t) => {
  const text = { model: 'm', messages: [{ role: 'user', content: 'hello world '.repeat(100) }] };
  const r = parseLlmRequest('anthropic_messages', Buffer.from(JSON.stringify(text)));
  t.ok(r.ok && r.request.inputTokenEstimate >= 1200 / 4, 'at least a token per 4 bytes of text');
  const image = 'A'.repeat(1_000_000);
  const withImage = { model: 'm', messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: image } }, { type: 'text', text: 'what is this?' }] }] };
  const r2 = parseLlmRequest('anthropic_messages', Buffer.from(JSON.stringify(withImage)));
  t.ok(r2.ok && r2.request.inputTokenEstimate < BLOB_TOKENS + 200, `a 1 MB image is not 333k tokens (${r2.ok ? r2.request.inputTokenEstimate : '-'})`);
  const dataUrl = { model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${image}` } }] }] };
  const r3 = parseLlmRequest('openai_chat', Buffer.from(JSON.stringify(dataUrl)));
  t.ok(r3.ok && r3.request.inputTokenEstimate < BLOB_TOKENS + 200);
});
