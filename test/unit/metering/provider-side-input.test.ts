// Requests whose input the provider adds itself (not in the body): detected so that the reservation
// covers it. Table over both providers' documented request shapes, with the look-alikes that keep
// their input in the body (base64 sources, data: URLs, client tools) as negatives.
import t from 'tap';
import { anthropicWebSearches, DEFAULT_WEB_SEARCHES, parseLlmRequest, referencesProviderSideInput } from '../../../src/metering/llm-request.ts';

const cases: Array<[string, Record<string, unknown>, boolean]> = [
  ['plain text', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }, false],
  ['anthropic document by URL', { model: 'm', messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'url', url: 'https://x.test/a.pdf' } }] }] }, true],
  ['anthropic image by file id', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'file_1' } }] }] }, true],
  ['anthropic image in base64 (in the body)', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }] }, false],
  ['anthropic source that is not an object', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'x', source: 'url' }] }] }, false],
  ['anthropic web search tool', { model: 'm', tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [] }, true],
  ['anthropic web fetch tool', { model: 'm', tools: [{ type: 'web_fetch_20250910', name: 'web_fetch' }], messages: [] }, true],
  ['anthropic code execution tool', { model: 'm', tools: [{ type: 'code_execution_20250522', name: 'code_execution' }], messages: [] }, true],
  ['a client tool (its results come back in the next body)', { model: 'm', tools: [{ name: 'get_weather', input_schema: { type: 'object' } }], messages: [] }, false],
  ['anthropic MCP servers', { model: 'm', mcp_servers: [{ type: 'url', url: 'https://mcp.test', name: 'x' }], messages: [] }, true],
  ['anthropic empty MCP server list', { model: 'm', mcp_servers: [], messages: [] }, false],
  ['anthropic container', { model: 'm', container: 'container_1', messages: [] }, true],
  ['openai previous_response_id', { model: 'm', input: 'go on', previous_response_id: 'resp_1' }, true],
  ['openai previous_response_id null', { model: 'm', input: 'go on', previous_response_id: null }, false],
  ['openai conversation', { model: 'm', input: 'hi', conversation: 'conv_1' }, true],
  ['openai stored prompt', { model: 'm', prompt: { id: 'pmpt_1', version: '2' } }, true],
  ['openai file_search tool', { model: 'm', input: 'q', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }, true],
  ['openai web_search_preview tool', { model: 'm', input: 'q', tools: [{ type: 'web_search_preview' }] }, true],
  ['openai remote MCP tool', { model: 'm', input: 'q', tools: [{ type: 'mcp', server_url: 'https://mcp.test' }] }, true],
  ['openai function tool', { model: 'm', input: 'q', tools: [{ type: 'function', name: 'f', parameters: {} }] }, false],
  ['openai input_file by id', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file_1' }] }] }, true],
  ['openai input_file by URL', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', file_url: 'https://x.test/a.pdf' }] }] }, true],
  ['openai input_file inline', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', filename: 'a.pdf', file_data: 'data:application/pdf;base64,AAAA' }] }] }, false],
  ['openai input_image by URL', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x.test/a.png' }] }] }, true],
  ['openai input_image by file id', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_2' }] }] }, true],
  ['openai input_image as a data URL', { model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] }] }, false],
  ['chat image_url by http URL', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'HTTP://x.test/a.png' } }] }] }, true],
  ['chat image_url as a data URL', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }, false],
  ['chat image_url without an object', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: null }] }] }, false],
  ['chat file by id', { model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file_3' } }] }] }, true],
  ['chat file inline', { model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: { file_data: 'data:application/pdf;base64,AAAA' } }] }] }, false],
  ['chat file without an object', { model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: null }] }] }, false],
];
for (const [why, body, want] of cases) t.equal(referencesProviderSideInput(body), want, why);

t.test('parseLlmRequest carries the flag', async (t) => {
  const p = (body: unknown) => parseLlmRequest('openai_responses', Buffer.from(JSON.stringify(body)));
  t.match(p({ model: 'o3', input: 'hi', previous_response_id: 'resp_1' }), { ok: true, request: { providerSideInput: true } });
  t.match(p({ model: 'o3', input: 'hi' }), { ok: true, request: { providerSideInput: false } });
});

t.test('web searches to reserve: each Anthropic web_search tool\'s max_uses, else the default', async (t) => {
  const rows: Array<[string, unknown, number]> = [
    ['no tools', undefined, 0],
    ['tools is not a list', { type: 'web_search_20250305' }, 0],
    ['a client tool', [{ name: 'get_weather', input_schema: { type: 'object' } }], 0],
    ['web search with max_uses', [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }], 5],
    ['web search without max_uses', [{ type: 'web_search_20260209', name: 'web_search' }], DEFAULT_WEB_SEARCHES],
    ['a nonsense max_uses counts as none', [{ type: 'web_search_20250305', name: 'web_search', max_uses: -3 }], DEFAULT_WEB_SEARCHES],
    ['a huge max_uses is bounded', [{ type: 'web_search_20250305', name: 'web_search', max_uses: 1e9 }], 10_000],
    ['web fetch is not a search', [{ type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 5 }], 0],
    ['two search tools', [{ type: 'web_search_20250305', name: 'a', max_uses: 2 }, null, 'x', { type: 'web_search_20250305', name: 'b', max_uses: 3 }], 5],
  ];
  for (const [why, tools, want] of rows) t.equal(anthropicWebSearches(tools), want, why);
  const body = (api: 'anthropic_messages' | 'openai_responses') => parseLlmRequest(api, Buffer.from(JSON.stringify({ model: 'm', max_tokens: 10, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 4 }] })));
  t.match(body('anthropic_messages'), { ok: true, request: { webSearches: 4 } });
  t.match(body('openai_responses'), { ok: true, request: { webSearches: 0 } }, 'OpenAI searches are not priced');
});

t.test('service_tier priority is read from OpenAI requests only', async (t) => {
  const p = (api: 'anthropic_messages' | 'openai_chat' | 'openai_responses', extra: Record<string, unknown>) => parseLlmRequest(api, Buffer.from(JSON.stringify({ model: 'm', max_tokens: 10, ...extra })));
  t.match(p('openai_chat', { service_tier: 'priority' }), { ok: true, request: { serviceTier: 'priority' } });
  t.match(p('openai_responses', { service_tier: 'priority' }), { ok: true, request: { serviceTier: 'priority' } });
  t.match(p('openai_chat', { service_tier: 'flex' }), { ok: true, request: { serviceTier: undefined } });
  t.match(p('openai_chat', {}), { ok: true, request: { serviceTier: undefined } });
  t.match(p('anthropic_messages', { service_tier: 'priority' }), { ok: true, request: { serviceTier: undefined } }, 'Anthropic priority tier is a capacity commitment, not a per-token rate');
});
